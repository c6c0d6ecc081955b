"""The price catalog: a directory of CSVs (offers*, commitments*, dbu_rates*, egress*) read on first
use and kept per directory until its files change.

The shipped catalog lives in ``strato/cost/data`` (see the README there). ``read_skypilot_csv`` turns
the public SkyPilot-format catalogs (AWS, GCP, Azure) into the same ``Offer`` rows through the same row
checks, so the optimizer can be tested against catalogs of tens of thousands of rows.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from strato._registry import Registry
from strato.cost.gpus import canonical_gpu, resolve_gpu
from strato.cost.offers import (
    CLOUDS,
    RECORD_TYPES,
    SERVICES,
    Commitment,
    DbuRate,
    EgressPrice,
    Offer,
    RowError,
    columns,
    offer_from_row,
    skypilot_to_offer_row,
)
from strato.errors import InvalidArgument, NotFound

logger = logging.getLogger(__name__)

STALE_AFTER_DAYS = 90


def _check_choice(what: str, value: str, known: Iterable[str]) -> None:
    names = sorted(set(known))
    if value not in names:
        registry: Registry[None] = Registry(what)
        for name in names:
            registry.add(name, None)
        raise InvalidArgument(registry.unknown_message(value))


@dataclass
class Catalog:
    offers: list[Offer] = field(default_factory=list)
    commitments: list[Commitment] = field(default_factory=list)
    dbu_rates: list[DbuRate] = field(default_factory=list)
    egress: list[EgressPrice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # rows skipped (missing price, bad field) and why

    def regions(self, cloud: str | None = None) -> list[str]:
        return sorted({o.region for o in self.offers if cloud is None or o.cloud == cloud})

    def search(
        self,
        *,
        cloud: str | None = None,
        region: str | None = None,
        gpu: str | None = None,
        service: str | None = None,
        min_vcpus: float | None = None,
        min_memory_gib: float | None = None,
        min_gpus: int | None = None,
    ) -> list[Offer]:
        """Offers that match every given filter, cheapest on-demand first. ``gpu`` takes any spelling
        (resolve_gpu); plain "A100" is the 40 GB part, "A100-80GB" the larger one."""
        if cloud is not None:
            _check_choice("cloud", cloud, CLOUDS)
        if service is not None:
            _check_choice("service", service, SERVICES)
        for name, value in (("min_vcpus", min_vcpus), ("min_memory_gib", min_memory_gib), ("min_gpus", min_gpus)):
            if value is not None and value < 0:
                raise InvalidArgument(f"{name} must be >= 0, got {value}")
        model = resolve_gpu(gpu) if gpu is not None else None
        found = [
            o
            for o in self.offers
            if (cloud is None or o.cloud == cloud)
            and (region is None or o.region == region)
            and (service is None or o.service == service)
            and (model is None or o.gpu_model == model)
            and (min_vcpus is None or o.vcpus >= min_vcpus)
            and (min_memory_gib is None or o.memory_gib >= min_memory_gib)
            and (min_gpus is None or o.gpu_count >= min_gpus)
        ]
        if region is not None and not found:  # a typo, or a region this catalog does not price?
            _check_choice("region" if cloud is None else f"{cloud} region", region, self.regions(cloud))
        return sorted(found, key=lambda o: (o.on_demand or 0.0, o.cloud, o.region, o.instance_type, o.service))

    def commitment(self, cloud: str, service: str, family: str, term_years: int) -> Commitment | None:
        """The discount for committing ``term_years`` to ``family`` (its own row, else the "*" row)."""
        if term_years not in (1, 3):
            raise InvalidArgument(f"term_years must be 1 or 3, got {term_years}")
        matches = [c for c in self.commitments if (c.cloud, c.service, c.term_years) == (cloud, service, term_years)]
        exact = [c for c in matches if c.family.lower() == family.lower()]
        return next(iter(exact or [c for c in matches if c.family == "*"]), None)

    def dbu_rate(self, cloud: str, workload: str, tier: str = "premium") -> DbuRate | None:
        return next((r for r in self.dbu_rates if (r.cloud, r.workload, r.tier) == (cloud, workload, tier)), None)

    def egress_price(self, cloud: str, kind: str = "internet") -> EgressPrice | None:
        return next((e for e in self.egress if (e.cloud, e.kind) == (cloud, kind)), None)

    def oldest_as_of(self) -> date:
        records: list[Any] = [*self.offers, *self.commitments, *self.dbu_rates, *self.egress]
        if not records:
            raise NotFound("the price catalog has no rows; run strato cost catalog update")
        return min(date.fromisoformat(r.as_of) for r in records)

    def age_days(self, today: date) -> float:
        return float((today - self.oldest_as_of()).days)

    def stale_warning(self, today: date, max_age_days: float = STALE_AFTER_DAYS) -> str | None:
        age = self.age_days(today)
        if age <= max_age_days:
            return None
        return (
            f"the price catalog is {age:.0f} days old (as of {self.oldest_as_of().isoformat()}); "
            "run strato cost catalog update"
        )


# --- reading Strato's own CSVs -------------------------------------------------------------------


def _report(warnings: list[str] | None, message: str) -> None:
    if warnings is None:
        logger.warning("%s", message)
    else:
        warnings.append(message)


def _read_records(path: Path, kind: str, warnings: list[str] | None) -> list[Any]:
    record_type, parse = RECORD_TYPES[kind]
    expected = columns(record_type)
    records: list[Any] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in expected if c not in (reader.fieldnames or [])]
        if missing:
            header = ",".join(expected)
            raise InvalidArgument(f"{path} lacks the column(s) {', '.join(missing)}; its header must be {header}")
        for row in reader:
            try:
                records.append(parse(row))
            except RowError as exc:
                what = " ".join(row.get(c) or "?" for c in expected[:4])
                _report(warnings, f"{path.name} line {reader.line_num} ({what}): {exc}; row skipped")
    return records


def read_offers_csv(path: str | Path, *, warnings: list[str] | None = None) -> list[Offer]:
    """Offers from one CSV in Strato's format; bad rows (a missing price, ...) are skipped and reported
    to ``warnings`` (or the log)."""
    return _read_records(Path(path), "offers", warnings)


def shipped_data_dir() -> Path:
    return Path(str(resources.files("strato.cost").joinpath("data")))


def read_catalog_dir(directory: str | Path) -> Catalog:
    """Every CSV in ``directory``, by file-name prefix; duplicate offers keep their first row."""
    path = Path(directory)
    catalog = Catalog()
    tables: dict[str, list[Any]] = {
        "offers": catalog.offers,
        "commitments": catalog.commitments,
        "dbu_rates": catalog.dbu_rates,
        "egress": catalog.egress,
    }
    for csv_path in sorted(path.glob("*.csv")):
        kind = next((k for k in tables if csv_path.name.startswith(k)), None)
        if kind is None:
            catalog.warnings.append(f"{csv_path.name}: not a catalog file ({', '.join(tables)}*.csv); ignored")
            continue
        tables[kind].extend(_read_records(csv_path, kind, catalog.warnings))
    if not catalog.offers:
        raise NotFound(f"no offers in {path}: expected offers*.csv files there; run strato cost catalog update")
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for offer in catalog.offers:
        if offer.key in seen:
            catalog.warnings.append(f"duplicate offer {' '.join(map(str, offer.key))}; later row skipped")
        else:
            seen.add(offer.key)
            unique.append(offer)
    catalog.offers[:] = unique
    return catalog


_CACHE: dict[str, tuple[tuple[Any, ...], Catalog]] = {}


def load_catalog(directory: str | Path | None = None) -> Catalog:
    """The catalog in ``directory`` (None: the shipped one), read on first use and again only when its
    files change (a refresh replaces them)."""
    path = Path(directory) if directory is not None else shipped_data_dir()
    if not path.is_dir():
        raise NotFound(f"no price catalog at {path}: the directory does not exist")
    key = str(path.resolve())
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(path.glob("*.csv")))
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    catalog = read_catalog_dir(path)
    _CACHE[key] = (stamp, catalog)
    return catalog


# --- reading the SkyPilot-format reference catalogs ----------------------------------------------

# GCP machines that come with their GPUs: the accelerator row of the same zone is added to the VM row.
_GCP_BUILT_IN_GPU = {"a2-highgpu": "A100", "a2-megagpu": "A100", "a2-ultragpu": "A100-80GB", "a3-highgpu": "H100",
                     "a3-edgegpu": "H100", "a3-megagpu": "H100-MEGA", "a3-ultragpu": "H200",
                     "a4-highgpu": "B200"}  # fmt: skip
_GCP_BUILT_IN = re.compile(rf"^({'|'.join(_GCP_BUILT_IN_GPU)})-(\d+)g")
_G2_L4_COUNT = {24: 2, 48: 4, 96: 8}  # g2-standard-N: one L4 unless listed
# GPUs attachable to N1 machines: GPU count -> the most vCPUs the machine may have (GCP GPU docs).
_N1_ATTACH = {"T4": {1: 48, 2: 48, 4: 96}, "V100": {1: 12, 2: 24, 4: 48, 8: 96},
              "P100": {1: 16, 2: 32, 4: 64}, "P4": {1: 24, 2: 48, 4: 96}}  # fmt: skip


def _skypilot_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return [dict(zip(header, _fit(row, len(header)), strict=True)) for row in reader if any(row)]


def _fit(row: list[str], n: int) -> list[str]:
    # Azure's last column (Generation) holds unquoted "V1,V2": fold the extra cells back into it.
    padded = [*row, *([""] * (n - len(row)))]
    return [*padded[: n - 1], ",".join(padded[n - 1 :])]


def _float(value: str | None) -> float | None:
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if number == number else None


def _gcp_with_gpus(rows: list[dict[str, str]], skipped: Counter[str]) -> list[dict[str, str]]:
    """GCP lists a GPU VM as a VM row plus an accelerator row (empty InstanceType) per zone; join them."""
    accelerators: dict[tuple[str, str, int], dict[str, str]] = {}
    for row in rows:
        count = int(_float(row["AcceleratorCount"]) or 0)
        if not row["InstanceType"] and count:
            accelerators[(row["AvailabilityZone"], row["AcceleratorName"], count)] = row
    out = []
    for row in rows:
        name, zone, vcpus = row["InstanceType"], row["AvailabilityZone"], _float(row["vCPUs"]) or 0
        if not name:
            continue
        built_in = _GCP_BUILT_IN.match(name)
        if built_in:
            wanted = [(_GCP_BUILT_IN_GPU[built_in.group(1)], int(built_in.group(2)))]
        elif name.startswith("g2-"):
            wanted = [("L4", _G2_L4_COUNT.get(int(vcpus), 1))]
        else:
            out.append(row)  # a VM without GPUs
            wanted = [(gpu, n) for gpu, limits in _N1_ATTACH.items() for n, most in limits.items() if most >= vcpus]
            wanted = wanted if name.startswith("n1-") else []
        for gpu, count in wanted:
            accelerator = accelerators.get((zone, gpu, count))
            if accelerator is None:
                if built_in or name.startswith("g2-"):
                    skipped[f"GPU machine with no {gpu} x{count} accelerator row in its zone"] += 1
                continue
            vm_spot, gpu_spot = _float(row["SpotPrice"]), _float(accelerator["SpotPrice"])
            out.append(
                row
                | {
                    "AcceleratorName": gpu,
                    "AcceleratorCount": str(count),
                    "GpuInfo": accelerator["GpuInfo"],
                    "Price": str(round((_float(row["Price"]) or 0) + (_float(accelerator["Price"]) or 0), 6)),
                    "SpotPrice": "" if vm_spot is None or gpu_spot is None else str(round(vm_spot + gpu_spot, 6)),
                }
            )
    return out


def read_skypilot_csv(path: str | Path, cloud: str, as_of: str, *, warnings: list[str] | None = None) -> list[Offer]:
    """Offers from a SkyPilot-format catalog (one row per zone or region): the zones of a region collapse
    to its cheapest price; rows Strato cannot use (TPUs, fractional GPUs, no price) are counted in
    ``warnings``, one line per reason."""
    _check_choice("cloud", cloud, CLOUDS)
    try:
        date.fromisoformat(as_of)
    except ValueError:
        raise InvalidArgument(f"as_of {as_of!r} is not an ISO date (YYYY-MM-DD)") from None
    path = Path(path)
    rows = _skypilot_rows(path)
    skipped: Counter[str] = Counter()
    if cloud == "gcp":
        skipped["accelerator rows that are not GPUs (TPUs)"] = sum(
            1 for r in rows if not r["InstanceType"] and canonical_gpu(r["AcceleratorName"]) is None
        )
        rows = _gcp_with_gpus(rows, skipped)
    cheapest: dict[tuple[Any, ...], Offer] = {}
    source = f"{path.name} (SkyPilot catalog format)"
    for row in rows:
        try:
            offer = offer_from_row(skypilot_to_offer_row(row, cloud, source, as_of))
        except RowError as exc:
            skipped[str(exc)] += 1
            continue
        best = cheapest.get(offer.key)
        if best is None:
            cheapest[offer.key] = offer
        else:  # another zone of the same region: keep the lowest prices
            spots = [s for s in (best.spot, offer.spot) if s is not None]
            lowest = min(best.on_demand or 0.0, offer.on_demand or 0.0)
            cheapest[offer.key] = replace(best, on_demand=lowest, spot=min(spots) if spots else None)
    for reason, count in sorted(skipped.items()):
        if count:
            _report(warnings, f"{path.name}: {count} row(s) skipped: {reason}")
    return [cheapest[k] for k in sorted(cheapest, key=lambda k: tuple(str(part) for part in k))]
