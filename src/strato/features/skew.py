"""Training-serving skew, measured: the feature vectors endpoints served (the feature log) joined back, by
entity and request time, to the point-in-time values the offline store gives for the same moment. Per
feature: how often the two disagree (mismatch rate, nulls included) and how far apart their
distributions are (the Kolmogorov-Smirnov statistic for numbers, total variation for the rest).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from strato.errors import InvalidArgument, NotFound
from strato.features.catalog import FeatureCatalog
from strato.features.feature_log import TABLE
from strato.features.historical import historical_features
from strato.features.materialize import as_utc
from strato.lake.tables import LakeTables


def _refs(catalog: FeatureCatalog, name: str) -> list[str]:
    if name in catalog.services:
        return list(catalog.services[name].features)
    if name in catalog.views or name in catalog.on_demand:
        return [f"{name}:*"]
    known = [*catalog.services, *catalog.views, *catalog.on_demand]
    raise NotFound(f"no feature service or view {name!r} (known: {', '.join(known) or 'none'})")


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The largest gap between the two empirical distribution functions (0: same, 1: disjoint)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gap = np.abs(np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(b, points, side="right") / len(b))
    return float(gap.max())


def _total_variation(a: pd.Series, b: pd.Series) -> float:
    if a.empty or b.empty:
        return float("nan")
    pa_, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    return float(pa_.sub(pb, fill_value=0).abs().sum() / 2)


def _compare(served: pd.Series, offline: pd.Series) -> dict[str, Any]:
    served_null, offline_null = served.isna(), offline.isna()
    both = ~served_null & ~offline_null
    numeric = pd.api.types.is_numeric_dtype(served) and pd.api.types.is_numeric_dtype(offline)
    if numeric:
        s, o = served[both].to_numpy(dtype="float64"), offline[both].to_numpy(dtype="float64")
        differ = ~np.isclose(s, o, rtol=1e-6, atol=1e-9)
        distance = ks_statistic(served[~served_null].to_numpy("float64"), offline[~offline_null].to_numpy("float64"))
    else:
        differ = (served[both].astype(str) != offline[both].astype(str)).to_numpy()
        distance = _total_variation(served[~served_null].astype(str), offline[~offline_null].astype(str))
    mismatches = int(differ.sum()) + int((served_null != offline_null).sum())
    n = len(served)
    result: dict[str, Any] = {
        "rows": n,
        "mismatch_rate": mismatches / n if n else float("nan"),
        "distance": distance,
        "distance_kind": "ks" if numeric else "total_variation",
        "served_null_rate": float(served_null.mean()) if n else float("nan"),
        "offline_null_rate": float(offline_null.mean()) if n else float("nan"),
    }
    if numeric:
        result["served_mean"] = float(served.mean()) if (~served_null).any() else None
        result["offline_mean"] = float(offline.mean()) if (~offline_null).any() else None
    return result


def skew_report(
    catalog: FeatureCatalog,
    lake: LakeTables,
    name: str,
    *,
    endpoint: str | None = None,
    since: datetime | str | None = None,
    table: str = TABLE,
) -> dict[str, Any]:
    refs = _refs(catalog, name)
    if not lake.exists(table):
        raise NotFound("no served features are logged yet: give an endpoint features: {service: ..., log: true}")
    log = lake.read(table).to_pandas()
    if endpoint is not None:
        log = log[log["endpoint"] == endpoint]
    if since is not None:
        log = log[log["request_time"] >= pd.Timestamp(as_utc(since))]
    plan = catalog.plan(refs)
    logged = [f for f in plan.outputs if f in log.columns]
    needed = [*plan.join_keys, *plan.request_fields]
    log = log.dropna(subset=[k for k in needed if k in log.columns])
    if log.empty or not logged:
        raise NotFound(f"no logged requests served features of {name!r}" + (f" on {endpoint!r}" if endpoint else ""))
    missing = [k for k in needed if k not in log.columns]
    if missing:
        raise InvalidArgument(f"the feature log lacks {', '.join(missing)} for {name!r}")
    entity_rows = log[[*needed, "request_time"]].rename(columns={"request_time": "event_timestamp"})
    for key in plan.join_keys:  # a JSON request may have sent ints as floats; the lake keeps their type
        if pd.api.types.is_float_dtype(entity_rows[key]) and (entity_rows[key] % 1 == 0).all():
            entity_rows[key] = entity_rows[key].astype("int64")
    offline = historical_features(catalog, lake, entity_rows.reset_index(drop=True), refs).to_pandas()
    served = log.reset_index(drop=True)
    features = {f: _compare(served[f], offline[f]) for f in logged}
    return {"name": name, "endpoint": endpoint, "rows": len(served), "features": features}
