"""The catalog as columns: one numpy array per field, built once per catalog and cached, so a quote
filters tens of thousands of offers with a few vector masks instead of a Python loop."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from strato.cost.spot_model import bucket_rate
from strato.specs.spot import ADVISOR_BUCKETS

if TYPE_CHECKING:
    from strato.cost.catalog import Catalog, Commitment
    from strato.cost.offers import Offer

TERMS = (1, 3)
_CACHE_SIZE = 4


def _codes(values: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    names = tuple(sorted(set(values)))
    lookup = {name: code for code, name in enumerate(names)}
    return np.fromiter((lookup[v] for v in values), dtype=np.int32, count=len(values)), names


def _price(value: float | None) -> float:
    return math.nan if value is None or value < 0 else float(value)


@dataclass
class CatalogIndex:
    offers: list[Offer]  # position i of every array describes offers[i]
    cloud: np.ndarray
    clouds: tuple[str, ...]
    region: np.ndarray
    regions: tuple[str, ...]
    service: np.ndarray
    services: tuple[str, ...]
    workload: np.ndarray
    workloads: tuple[str, ...]
    gpu: np.ndarray  # code into gpu_models, -1 for none
    gpu_models: tuple[str, ...]
    vcpus: np.ndarray
    memory: np.ndarray
    gpu_count: np.ndarray
    on_demand: np.ndarray  # NaN: no price
    spot: np.ndarray  # NaN: no spot offering
    rate: np.ndarray  # interruptions per node-hour from the Spot Advisor bucket; NaN: none published
    discount: dict[int, np.ndarray]  # term years -> commitment discount (NaN: none)
    commitments: dict[int, list[Commitment | None]]
    region_clouds: dict[str, set[str]]
    service_clouds: dict[str, set[str]]

    def code(self, names: tuple[str, ...], value: str) -> int:
        return names.index(value) if value in names else -1

    def member(self, column: np.ndarray, names: tuple[str, ...], allowed: tuple[str, ...]) -> np.ndarray:
        codes = [names.index(v) for v in allowed if v in names]
        return np.isin(column, np.array(codes, dtype=np.int32))


def _build(catalog: Catalog) -> CatalogIndex:
    offers = list(catalog.offers)
    cloud, clouds = _codes([o.cloud for o in offers])
    region, regions = _codes([o.region for o in offers])
    service, services = _codes([o.service for o in offers])
    workload, workloads = _codes([o.workload for o in offers])
    gpu_models = tuple(sorted({o.gpu_model for o in offers if o.gpu_model and o.gpu_count}))
    gpu_lookup = {name: code for code, name in enumerate(gpu_models)}
    rates = {bucket: bucket_rate(bucket) for bucket in ADVISOR_BUCKETS}
    found: dict[tuple[str, str, str, int], Commitment | None] = {}
    discount: dict[int, np.ndarray] = {}
    commitments: dict[int, list[Commitment | None]] = {}
    families = [(o.cloud, o.service, o.family) for o in offers]
    for years in TERMS:
        rows: list[Commitment | None] = []
        for key in families:
            if (*key, years) not in found:
                found[(*key, years)] = catalog.commitment(*key, years)
            rows.append(found[(*key, years)])
        commitments[years] = rows
        discount[years] = np.array([math.nan if c is None else float(c.discount) for c in rows], dtype=float)
    region_clouds: dict[str, set[str]] = {}
    service_clouds: dict[str, set[str]] = {}
    for o in offers:
        region_clouds.setdefault(o.region, set()).add(o.cloud)
        service_clouds.setdefault(o.service, set()).add(o.cloud)
    return CatalogIndex(
        offers=offers,
        cloud=cloud,
        clouds=clouds,
        region=region,
        regions=regions,
        service=service,
        services=services,
        workload=workload,
        workloads=workloads,
        gpu=np.array([gpu_lookup.get(o.gpu_model or "", -1) if o.gpu_count else -1 for o in offers], dtype=np.int32),
        gpu_models=gpu_models,
        vcpus=np.array([o.vcpus for o in offers], dtype=float),
        memory=np.array([o.memory_gib for o in offers], dtype=float),
        gpu_count=np.array([o.gpu_count if o.gpu_model else 0 for o in offers], dtype=float),
        on_demand=np.array([_price(o.on_demand) for o in offers], dtype=float),
        spot=np.array([_price(o.spot) for o in offers], dtype=float),
        rate=np.array([rates.get(o.interruption_bucket or "", math.nan) for o in offers], dtype=float),
        discount=discount,
        commitments=commitments,
        region_clouds=region_clouds,
        service_clouds=service_clouds,
    )


_cache: dict[int, tuple[Catalog, int, CatalogIndex]] = {}


def index_for(catalog: Catalog) -> CatalogIndex:
    """The cached index of ``catalog`` (rebuilt if its offer list changed length)."""
    entry = _cache.get(id(catalog))
    if entry is not None and entry[0] is catalog and entry[1] == len(catalog.offers):
        return entry[2]
    index = _build(catalog)
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[id(catalog)] = (catalog, len(catalog.offers), index)  # holding the catalog keeps its id unique
    return index
