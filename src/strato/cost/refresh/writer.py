"""Reading the catalog a refresh starts from, and replacing it atomically.

A catalog directory holds ``offers*.csv``, ``commitments*.csv``, ``dbu_rates*.csv`` and ``egress*.csv``
(strato.cost.catalog). A refresh writes all offers to one ``offers.csv`` in a temporary directory beside
the target, copies the other tables from the catalog it started from, reads the result back with the
catalog's own reader, and only then swaps it in with two renames. Any failure before the swap leaves the
target as it was, byte for byte; the temporary directory is removed.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from strato.cost.catalog import read_catalog_dir, shipped_data_dir
from strato.cost.offers import Offer, RowError, columns, offer_from_row, record_to_row
from strato.errors import InvalidArgument, Unavailable

OFFERS_FILE = "offers.csv"
CATALOG_PREFIXES = ("offers", "commitments", "dbu_rates", "egress")


def source_dir(target: Path) -> Path:
    """The catalog a refresh of ``target`` starts from: ``target`` once it holds offers, else the shipped one."""
    if target.exists() and not target.is_dir():
        raise InvalidArgument(f"{target} is a file; the price catalog must be a directory")
    if target.is_dir():
        strangers = sorted(p.name for p in target.iterdir() if p.suffix not in (".csv", ".md") or not p.is_file())
        if strangers:
            # Replacing the directory would delete these: refuse rather than guess they are disposable.
            raise InvalidArgument(
                f"{target} is not a price catalog directory (it holds {', '.join(strangers[:3])}); "
                "give an empty directory or one that strato cost catalog update wrote"
            )
        if any(target.glob("offers*.csv")):
            return target
    return shipped_data_dir()


def load_current(target: Path) -> list[Offer]:
    return read_catalog_dir(source_dir(target)).offers


def valid_offers(offers: Iterable[Offer]) -> tuple[list[Offer], Counter[tuple[str, str]]]:
    """The rows the catalog reader will accept (each goes through its own row checks), and the others
    counted by (cloud, reason)."""
    kept: list[Offer] = []
    dropped: Counter[tuple[str, str]] = Counter()
    seen: set[tuple[object, ...]] = set()
    for offer in offers:
        try:
            offer_from_row(record_to_row(offer))
        except RowError as exc:
            dropped[(offer.cloud, str(exc))] += 1
            continue
        if offer.key in seen:
            dropped[(offer.cloud, "duplicate offer")] += 1
            continue
        seen.add(offer.key)
        kept.append(offer)
    return kept, dropped


def replace_catalog(target: Path, offers: list[Offer]) -> int:
    """Write ``offers`` (already valid) with the other tables of the current catalog as the new ``target``."""
    base = source_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        _write_offers(staging / OFFERS_FILE, offers)
        for table in sorted(base.glob("*.csv")):
            if table.name.startswith(CATALOG_PREFIXES[1:]):
                shutil.copyfile(table, staging / table.name)
        written = read_catalog_dir(staging)
        if len(written.offers) != len(offers):
            raise Unavailable(
                f"the new catalog read back {len(written.offers)} of {len(offers)} offers "
                f"({'; '.join(written.warnings[:3])}); the catalog in use was kept"
            )
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(offers)


def _write_offers(path: Path, offers: Iterable[Offer]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns(Offer), lineterminator="\n")
        writer.writeheader()
        for offer in sorted(offers, key=lambda o: tuple(str(part) for part in o.key)):
            writer.writerow(record_to_row(offer))
        fh.flush()
        os.fsync(fh.fileno())


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` where ``target`` is: rename the old one aside, rename the new one in, drop the old."""
    if not target.exists():
        os.rename(staging, target)
        return
    retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
