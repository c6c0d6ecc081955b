"""Feature definitions (Feast's objects, SageMaker's and Vertex AI's feature groups), applied like any
resource (``strato features apply -f features.yaml`` or a Python file, or ``strato apply -f``).

kind: Entity
name: driver
join_keys: [driver_id]                  # default: [name]
---
kind: FeatureView
name: driver_stats
entities: [driver]
source: lake://driver_stats             # a lake table (lake://NAME@VERSION pins a version)
timestamp_field: event_timestamp
created_timestamp_field: created        # optional: breaks ties of equal event time
ttl: 1d                                 # optional: older values count as missing
features: {conv_rate: float64, trips: int64}   # or a list of {name, dtype, description}
online: true                            # materialized into the online store
materialize_every: 1h                   # optional: the control plane runs materialize-incremental
---
kind: FeatureService
name: driver_model
features: [driver_stats:conv_rate, driver_stats:trips, trip_features:*]
---
kind: OnDemandFeatureView
name: trip_features
sources: [driver_stats]                 # views whose features the expressions use
request: {distance_km: float64}         # values sent with the request
features:
  - {name: cost_per_trip, dtype: float64, expression: "distance_km * conv_rate / (trips + 1)"}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from strato.specs.base import Duration, ResourceSpec, StrictModel, check_name

DType = Literal["int32", "int64", "float32", "float64", "string", "bool", "timestamp"]
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
REF_RE = re.compile(r"^(?P<view>[A-Za-z0-9][A-Za-z0-9._-]{0,62}):(?P<feature>\*|[A-Za-z_][A-Za-z0-9_]{0,127})$")


def _column(value: str) -> str:
    if not isinstance(value, str) or not COLUMN_RE.match(value):
        raise ValueError(f"{value!r} is not a column name: use letters, digits and '_', not starting with a digit")
    return value


def _named_list(value: Any) -> Any:
    """``{name: dtype}`` is shorthand for ``[{name, dtype}]``."""
    if isinstance(value, dict):
        return [{"name": name, "dtype": dtype} for name, dtype in value.items()]
    return value


class Feature(StrictModel):
    name: Annotated[str, BeforeValidator(_column)]
    dtype: DType = "float64"
    description: str = ""


class Entity(ResourceSpec):
    KIND: ClassVar[str] = "Entity"
    PLURAL: ClassVar[str] = "entities"

    kind: str = "Entity"
    join_keys: list[Annotated[str, BeforeValidator(_column)]] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _default_key(self) -> Entity:
        if not self.join_keys:
            self.join_keys = [_column(self.name.replace("-", "_").replace(".", "_"))]
        if len(set(self.join_keys)) != len(self.join_keys):
            raise ValueError("join_keys lists a column twice")
        return self


def _unique(features: list[Any], what: str) -> None:
    seen: set[str] = set()
    for feature in features:
        if feature.name in seen:
            raise ValueError(f"{what} {feature.name!r} is defined twice")
        seen.add(feature.name)


class FeatureView(ResourceSpec):
    KIND: ClassVar[str] = "FeatureView"
    PLURAL: ClassVar[str] = "featureviews"

    kind: str = "FeatureView"
    entities: list[str] = Field(min_length=1, description="names of Entity resources")
    source: str = Field(description="lake://TABLE or lake://TABLE@VERSION")
    timestamp_field: Annotated[str, BeforeValidator(_column)] = "event_timestamp"
    created_timestamp_field: Annotated[str, BeforeValidator(_column)] | None = None
    ttl: Duration | None = Field(None, description="values older than this before the row's time count as missing")
    features: Annotated[list[Feature], BeforeValidator(_named_list)] = Field(min_length=1)
    online: bool = True
    materialize_every: Duration | None = Field(None, description="run materialize-incremental this often")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("entities")
    @classmethod
    def _entities(cls, value: list[str]) -> list[str]:
        for name in value:
            check_name(name)
        if len(set(value)) != len(value):
            raise ValueError("entities lists an entity twice")
        return value

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        negative = isinstance(value, int | float) and value <= 0
        if negative or (isinstance(value, str) and value.strip().startswith("-")):
            raise ValueError("ttl must be greater than zero; leave ttl out for no limit")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not re.match(r"^lake://[^@/]+(@\d+)?$", value):
            raise ValueError(f"source {value!r} is not a lake table: write lake://TABLE or lake://TABLE@VERSION")
        return value

    @model_validator(mode="after")
    def _columns(self) -> FeatureView:
        _unique(self.features, "feature")
        reserved = {self.timestamp_field, self.created_timestamp_field}
        clash = sorted(f.name for f in self.features if f.name in reserved)
        if clash:
            raise ValueError(f"feature {clash[0]!r} is the view's timestamp column; a feature must be another column")
        return self

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)


class FeatureService(ResourceSpec):
    KIND: ClassVar[str] = "FeatureService"
    PLURAL: ClassVar[str] = "featureservices"

    kind: str = "FeatureService"
    features: list[str] = Field(min_length=1, description="VIEW:FEATURE or VIEW:* references")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("features")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            parse_ref(ref)
        return value


class OnDemandFeature(Feature):
    expression: str = Field(min_length=1, description="arithmetic over request fields and source features")


class OnDemandFeatureView(ResourceSpec):
    KIND: ClassVar[str] = "OnDemandFeatureView"
    PLURAL: ClassVar[str] = "ondemandfeatureviews"

    kind: str = "OnDemandFeatureView"
    sources: list[str] = Field(default_factory=list, description="feature views whose features the expressions use")
    request: Annotated[list[Feature], BeforeValidator(_named_list)] = Field(default_factory=list)
    features: list[OnDemandFeature] = Field(min_length=1)
    description: str = ""

    @model_validator(mode="after")
    def _expressions(self) -> OnDemandFeatureView:
        from strato.specs.expressions import parse_expression

        _unique(self.features, "feature")
        for feature in self.features:
            try:
                parse_expression(feature.expression)
            except ValueError as exc:
                raise ValueError(f"feature {feature.name!r}: {exc}") from None
        return self


def parse_ref(ref: str) -> tuple[str, str]:
    """``view:feature`` (or ``view:*``) as (view, feature)."""
    match = REF_RE.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise ValueError(f"feature reference {ref!r} is not valid: write VIEW:FEATURE or VIEW:*")
    return match.group("view"), match.group("feature")


DEFINITION_KINDS: tuple[type[ResourceSpec], ...] = (Entity, FeatureView, FeatureService, OnDemandFeatureView)
