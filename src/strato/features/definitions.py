"""Feature definitions as stored resources: applied, checked against each other and against their lake
tables, versioned (every change is a new revision), and protected: a breaking change to a view that is
in use (by a feature service, an on-demand view, or the online store) is refused with the reason.
"""

from __future__ import annotations

import builtins
from typing import Any

import pyarrow as pa

from strato.errors import Conflict, InvalidArgument, NotFound
from strato.features.catalog import FeatureCatalog
from strato.lake.tables import LakeTables, parse_uri
from strato.specs.base import ResourceSpec
from strato.specs.expressions import expression_names
from strato.specs.features import Entity, FeatureService, FeatureView, OnDemandFeatureView, parse_ref
from strato.store.metadata import MetadataStore, ResourceRecord

ACTIVE = "Active"
KINDS: dict[str, type[ResourceSpec]] = {
    cls.KIND: cls for cls in (Entity, FeatureView, FeatureService, OnDemandFeatureView)
}


def _arrow_fits(dtype: str, arrow_type: pa.DataType) -> bool:
    if dtype in ("int32", "int64"):
        return pa.types.is_integer(arrow_type)
    if dtype in ("float32", "float64"):
        return pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type) or pa.types.is_decimal(arrow_type)
    if dtype == "string":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if dtype == "bool":
        return pa.types.is_boolean(arrow_type)
    return pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)


class FeatureDefinitions:
    def __init__(self, store: MetadataStore, lake: LakeTables):
        self.store = store
        self.lake = lake

    # Reading -----------------------------------------------------------------------------------------
    def catalog(self) -> FeatureCatalog:
        def specs(kind: type[ResourceSpec]) -> dict[str, Any]:
            return {record.name: kind.model_validate(record.spec) for record in self.store.list(kind.KIND)}

        return FeatureCatalog(
            entities=specs(Entity),
            views=specs(FeatureView),
            services=specs(FeatureService),
            on_demand=specs(OnDemandFeatureView),
        )

    def get(self, kind: str, name: str) -> ResourceRecord:
        return self.store.get(kind, name)

    def list(self, kind: str) -> builtins.list[ResourceRecord]:
        return self.store.list(kind)

    def revisions(self, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        self.store.get(kind, name)
        return self.store.revisions(kind, name)

    # Writing -----------------------------------------------------------------------------------------
    def apply(self, spec: ResourceSpec) -> tuple[ResourceRecord, bool]:
        """Store a new definition (True), keep an identical one (False), or replace a changed one."""
        kind = spec.KIND
        data = spec.model_dump(mode="json")
        try:
            existing: ResourceRecord | None = self.store.get(kind, spec.name)
        except NotFound:
            existing = None
        if existing is not None and KINDS[kind].model_validate(existing.spec).model_dump(mode="json") == data:
            return existing, False
        catalog = self.catalog()
        self._check(spec, catalog)
        if existing is not None:
            self._check_compatible(KINDS[kind].model_validate(existing.spec), spec, catalog, existing)
        scheduled = isinstance(spec, FeatureView) and spec.online and spec.materialize_every is not None
        if existing is None:
            revision = self.store.add_revision(kind, spec.name, data, "created")
            record = self.store.create(
                kind,
                spec.name,
                data,
                state=ACTIVE,
                reason="Created",
                message=f"{kind} revision {revision}",
                status={"revision": revision},
                active=scheduled,
            )
            return record, True
        revision = self.store.add_revision(kind, spec.name, data, "changed")
        record = self.store.replace_spec(existing.uid, data, {**existing.status, "revision": revision})
        if scheduled != existing.active:
            self.store.update_status(record.uid, record.status, active=scheduled)
        return self.store.get_by_uid(record.uid), False

    def delete(self, kind: str, name: str) -> None:
        record = self.store.get(kind, name)
        users = self._users(kind, name, self.catalog())
        if users:
            raise Conflict(f"{kind} {name!r} is used by {', '.join(users)}; delete or change those first")
        self.store.delete(record.uid)

    # Checks ------------------------------------------------------------------------------------------
    def _check(self, spec: ResourceSpec, catalog: FeatureCatalog) -> None:
        if isinstance(spec, FeatureView):
            missing = [e for e in spec.entities if e not in catalog.entities]
            if missing:
                raise InvalidArgument(
                    f"feature view {spec.name!r} uses entity {missing[0]!r}, which does not exist; apply it first "
                    f"(entities: {', '.join(catalog.entities) or 'none'})"
                )
            catalog.views[spec.name] = spec
            self._check_source(spec, catalog.join_keys(spec))
        elif isinstance(spec, FeatureService):
            catalog.services[spec.name] = spec
            for ref in spec.features:
                catalog.expand(ref)
        elif isinstance(spec, OnDemandFeatureView):
            for source in spec.sources:
                catalog.view(source)
            catalog.on_demand[spec.name] = spec
            catalog.plan([f"{spec.name}:{f.name}" for f in spec.features])
            request = {f.name for f in spec.request}
            for feature in spec.features:
                known = request | {f.name for s in spec.sources for f in catalog.views[s].features}
                unknown = sorted(expression_names(feature.expression) - known)
                if unknown:
                    raise InvalidArgument(f"on-demand feature {feature.name!r} reads unknown {unknown[0]!r}")

    def _check_source(self, view: FeatureView, join_keys: tuple[str, ...]) -> None:
        ref = parse_uri(view.source)
        schema = self.lake.arrow_schema(ref.name, ref.version)
        columns = {f.name: f.type for f in schema}
        needed = [view.timestamp_field, *([view.created_timestamp_field] if view.created_timestamp_field else [])]
        needed += [*join_keys, *(f.name for f in view.features)]
        missing = [c for c in needed if c not in columns]
        if missing:
            raise InvalidArgument(
                f"feature view {view.name!r}: lake table {ref.name!r} has no column "
                f"{', '.join(repr(c) for c in missing)} (it has: {', '.join(columns)})"
            )
        if not pa.types.is_timestamp(columns[view.timestamp_field]):
            raise InvalidArgument(
                f"feature view {view.name!r}: timestamp_field {view.timestamp_field!r} is "
                f"{columns[view.timestamp_field]}, not a timestamp"
            )
        for feature in view.features:
            if not _arrow_fits(feature.dtype, columns[feature.name]):
                raise InvalidArgument(
                    f"feature view {view.name!r}: feature {feature.name!r} is declared {feature.dtype} but lake "
                    f"table {ref.name!r} holds {columns[feature.name]}"
                )

    def _users(self, kind: str, name: str, catalog: FeatureCatalog) -> builtins.list[str]:
        """Who depends on a definition (for breaking changes and deletes)."""
        users: list[str] = []
        if kind == Entity.KIND:
            users += [f"FeatureView {v.name!r}" for v in catalog.views.values() if name in v.entities]
        elif kind in (FeatureView.KIND, OnDemandFeatureView.KIND):
            users += [
                f"FeatureService {s.name!r}"
                for s in catalog.services.values()
                if any(parse_ref(r)[0] == name for r in s.features)
            ]
            users += [f"OnDemandFeatureView {o.name!r}" for o in catalog.on_demand.values() if name in o.sources]
        return users

    def _check_compatible(
        self, old: ResourceSpec, new: ResourceSpec, catalog: FeatureCatalog, record: ResourceRecord
    ) -> None:
        """Refuse a change that would break what uses the definition, saying what and why."""
        breaks: list[str] = []
        if isinstance(old, Entity) and isinstance(new, Entity) and old.join_keys != new.join_keys:
            breaks.append(f"join keys change from {old.join_keys} to {new.join_keys}")
        if isinstance(old, FeatureView) and isinstance(new, FeatureView):
            if old.entities != new.entities:
                breaks.append(f"entities change from {old.entities} to {new.entities}")
            if old.timestamp_field != new.timestamp_field:
                breaks.append(f"timestamp_field changes from {old.timestamp_field!r} to {new.timestamp_field!r}")
            for feature in old.features:
                now = new.feature(feature.name)
                if now is None:
                    breaks.append(f"feature {feature.name!r} is removed")
                elif now.dtype != feature.dtype:
                    breaks.append(f"feature {feature.name!r} changes type from {feature.dtype} to {now.dtype}")
        if isinstance(old, OnDemandFeatureView) and isinstance(new, OnDemandFeatureView):
            for feature in old.features:
                if feature.name not in {f.name for f in new.features}:
                    breaks.append(f"feature {feature.name!r} is removed")
        if not breaks:
            return
        users = self._users(old.KIND, old.name, catalog)
        if record.status.get("materialized"):
            users.append("the online store (it was materialized)")
        if users:
            raise Conflict(
                f"{old.KIND} {old.name!r} is in use by {', '.join(users)} and this change breaks it: "
                f"{'; '.join(breaks)}. Add new features instead, or create a new view (e.g. {old.name}-v2) "
                "and move its users over"
            )
