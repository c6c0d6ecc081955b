"""Online feature retrieval: the latest values of each entity from the online store, with each view's TTL
enforced at read time and on-demand features computed from request data, in one store round trip per
view. The SDK runs this in-process (straight to the store); ``POST /features/online`` runs the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from strato.errors import InvalidArgument
from strato.features.catalog import FeatureCatalog, RetrievalPlan
from strato.features.online import OnlineStore, entity_key
from strato.specs.expressions import evaluate

PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"


def columns_of(entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Entity rows as columns: a list of dicts, or Feast's ``{"driver_id": [1, 2]}``."""
    if isinstance(entity_rows, Mapping):
        columns = {name: list(values) for name, values in entity_rows.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise InvalidArgument("entity columns have different lengths; give one value per row in each")
        return columns
    rows = list(entity_rows)
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: [row.get(name) for row in rows] for name in names}


class OnlineFeatures:
    def __init__(
        self, store: OnlineStore, catalog: Callable[[], FeatureCatalog], *, clock: Callable[[], float] = time.time
    ):
        self.store = store
        self._catalog = catalog
        self.clock = clock
        self._plans: dict[tuple[Any, ...], tuple[FeatureCatalog, RetrievalPlan]] = {}

    def plan(self, features: list[str] | str, full_feature_names: bool) -> RetrievalPlan:
        catalog = self._catalog()
        key = (features if isinstance(features, str) else tuple(features), full_feature_names)
        cached = self._plans.get(key)
        if cached is None or cached[0] is not catalog:
            plan = catalog.plan(features, full_feature_names=full_feature_names)
            offline_only = [p.view.name for p in plan.views if not p.view.online]
            if offline_only:
                raise InvalidArgument(
                    f"feature view {offline_only[0]!r} is offline only (online: false); it has no online values"
                )
            cached = self._plans[key] = (catalog, plan)
        return cached[1]

    def get(
        self,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        features: list[str] | str,
        *,
        full_feature_names: bool = False,
        with_status: bool = False,
    ) -> dict[str, Any]:
        """``{column: [values]}``: the entity rows' columns, then each feature asked for, in order; with
        ``with_status`` also ``{"_status": {feature: [PRESENT | NOT_FOUND | OUTSIDE_MAX_AGE]}}``."""
        plan = self.plan(features, full_feature_names)
        columns = columns_of(entity_rows)
        n = len(next(iter(columns.values()))) if columns else 0
        missing = [k for k in plan.join_keys + plan.request_fields if k not in columns]
        if missing:
            raise InvalidArgument(
                f"entity rows lack {', '.join(repr(m) for m in missing)} (needed by the features asked for; "
                f"given: {', '.join(columns) or 'nothing'})"
            )
        values: dict[str, list[Any]] = {}
        status: dict[str, list[str]] = {}
        now = self.clock()
        for vp in plan.views:
            keys = [entity_key([columns[k][i] for k in vp.join_keys]) for i in range(n)]
            found = self.store.read(vp.view.name, keys, vp.features)
            ttl = vp.view.ttl
            states = [
                NOT_FOUND if hit is None else OUTSIDE_MAX_AGE if ttl is not None and now - hit[0] > ttl else PRESENT
                for hit in found
            ]
            empty = [None] * len(vp.features)
            rows = [
                hit[1] if hit is not None and state == PRESENT else empty
                for hit, state in zip(found, states, strict=True)
            ]
            by_feature = list(zip(*rows, strict=True)) if rows else [()] * len(vp.features)
            for name, column in zip(vp.output_names, by_feature, strict=True):
                values[name] = list(column)
                status[name] = states
        for od in plan.on_demand:
            inputs = {expr_name: _floats(values.get(col, columns.get(col))) for expr_name, col in od.inputs.items()}
            for feature, name in zip(od.features, od.output_names, strict=True):
                result = evaluate(feature.expression, inputs)
                values[name] = _plain(result, n)
                status[name] = [PRESENT if v is not None else NOT_FOUND for v in values[name]]
        out: dict[str, Any] = {k: columns[k] for k in columns}
        out.update({name: values[name] for name in plan.outputs})
        if with_status:
            out["_status"] = {name: status[name] for name in plan.outputs}
        return out


def _floats(column: list[Any] | None) -> Any:
    import numpy as np

    return np.array([np.nan if v is None else v for v in column or []], dtype="float64")


def _plain(result: Any, n: int) -> list[Any]:
    import numpy as np

    array = np.broadcast_to(np.asarray(result), (n,))
    out = array.tolist()
    if array.dtype.kind == "f":
        return [None if v != v else v for v in out]  # NaN (a missing input) is a missing value
    return out
