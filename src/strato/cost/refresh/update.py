"""``update_catalog``: fetch each provider's prices, merge them into the current catalog, write it atomically.

All or nothing: when any provider fails or returns no rows, nothing is written and the catalog in use stays
as it was (byte for byte). Rows of providers that were not asked for, and of regions that were not fetched,
are carried over unchanged. A provider that is skipped (GCP without an API key) is not an error.

What each provider replaces: ``aws`` the AWS ``vm`` and ``sagemaker`` rows of its regions; ``azure`` and
``gcp`` their ``vm`` rows, and re-price their managed rows (``azureml``, ``vertex``) keeping each row's
premium over its VM from the previous catalog; ``spot_advisor`` sets the bucket and estimated spot price of
AWS VM rows. Without ``spot_advisor``, fresh AWS rows keep the previous spot discount and bucket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from strato.cost.offers import Offer
from strato.cost.refresh import aws, azure, gcp, spot_advisor, writer
from strato.cost.refresh.common import Fetch, Parsed, http_fetch
from strato.errors import InvalidArgument, StratoError, Unavailable

PROVIDERS = ("aws", "azure", "gcp", "spot_advisor")
CLOUD = {"aws": "aws", "azure": "azure", "gcp": "gcp"}
REPLACED_SERVICES = {"aws": ("vm", "sagemaker"), "azure": ("vm",), "gcp": ("vm",)}
MANAGED_AT_VM_PRICE = {"azure": "azureml", "gcp": "vertex"}  # managed rows priced off the VM row
GCP_KEY_HELP = (
    "the Cloud Billing Catalog API needs an API key: create one in the Google Cloud console (APIs & Services >"
    " Credentials, with the Cloud Billing API enabled) and pass it as gcp_key (strato cost catalog update --gcp-key)"
)


@dataclass
class ProviderReport:
    provider: str
    status: str = "not asked"  # refreshed | skipped | failed | empty | not asked
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # source rows dropped, by reason
    message: str = ""

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def line(self) -> str:
        text = f"{self.provider}: {self.status}"
        if self.status in ("refreshed", "empty"):
            text += f", {self.rows} rows kept, {self.skipped_total} skipped"
            if self.skipped:
                text += " (" + ", ".join(f"{reason}: {n}" for reason, n in Counter(self.skipped).most_common()) + ")"
        return text + (f"; {self.message}" if self.message else "")


@dataclass
class RefreshReport:
    target_dir: str
    providers: dict[str, ProviderReport]
    written: bool = False
    offers: int = 0  # rows in the catalog written
    errors: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # lines(), for callers that only see the fields

    @property
    def ok(self) -> bool:
        return self.written and not self.errors

    def lines(self) -> list[str]:
        out = [report.line() for report in self.providers.values()]
        if self.written:
            out.append(f"wrote {self.offers} offers to {self.target_dir}")
        else:
            out.append(f"the catalog in {self.target_dir} was not changed: " + "; ".join(self.errors))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def update_catalog(
    target_dir: str | Path,
    providers: Sequence[str] = PROVIDERS,
    fetch: Fetch | None = None,
    gcp_key: str | None = None,
    regions: Mapping[str, Sequence[str]] | None = None,
    today: date | None = None,
) -> RefreshReport:
    """Refresh the catalog in ``target_dir`` (started from the shipped catalog while it holds none).

    ``regions`` maps a cloud to the regions to fetch; by default, the regions the current catalog has.
    Problems with the sources are reported (``report.errors``, nothing written), not raised.
    """
    unknown = sorted(set(providers) - set(PROVIDERS))
    if unknown or not providers:
        raise InvalidArgument(f"unknown price provider(s) {', '.join(unknown)}; choose from {', '.join(PROVIDERS)}")
    target = Path(target_dir)
    current = writer.load_current(target)
    as_of = (today or date.today()).isoformat()
    report = RefreshReport(str(target), {name: ProviderReport(name) for name in PROVIDERS})
    fresh: dict[str, tuple[list[Offer], list[str]]] = {}
    advice: spot_advisor.SpotAdvice | None = None
    for name in (p for p in PROVIDERS if p in providers):
        entry = report.providers[name]
        if name == "gcp" and not gcp_key:
            entry.status, entry.message = "skipped", GCP_KEY_HELP
            continue
        try:
            if name == "spot_advisor":
                advice = spot_advisor.fetch_spot_advisor(fetch or http_fetch)
                entry.rows, entry.skipped = len(advice.advice), dict(advice.skipped)
            else:
                chosen = _regions(current, CLOUD[name], regions)
                parsed = _fetch_provider(name, fetch or http_fetch, chosen, _templates(current, name), gcp_key, as_of)
                entry.rows, entry.skipped = len(parsed.offers), dict(parsed.skipped)
                fresh[name] = (parsed.offers, chosen)
                missing = _missing(current, parsed.offers, name, chosen)
                if parsed.offers and missing:
                    raise Unavailable(f"no usable rows for {', '.join(missing)}; those rows would be lost")
        except StratoError as exc:
            entry.status, entry.message = "failed", exc.message
        except Exception as exc:  # one source's bad day must not lose the other sources' report
            entry.status, entry.message = "failed", f"{type(exc).__name__}: {exc}"
        else:
            entry.status = "refreshed" if entry.rows else "empty"
            if not entry.rows:
                entry.message = "the source returned no usable rows; a catalog without them would be wrong"
        if entry.status in ("failed", "empty"):
            report.errors.append(f"{name} {entry.status}: {entry.message}")
    if not report.errors and not fresh and advice is None:
        report.errors.append("no provider was refreshed")
    if not report.errors:
        offers, dropped = writer.valid_offers(merge(current, fresh, advice, as_of, report))
        for (cloud, reason), count in dropped.items():
            report.providers[cloud].skipped[f"invalid row: {reason}"] = count
        try:
            report.offers = writer.replace_catalog(target, offers)
            report.written = True
        except StratoError as exc:
            report.errors.append(exc.message)
        except OSError as exc:
            report.errors.append(f"writing the new catalog failed: {exc}")
    report.summary = report.lines()
    return report


def _regions(current: list[Offer], cloud: str, regions: Mapping[str, Sequence[str]] | None) -> list[str]:
    chosen = list((regions or {}).get(cloud) or sorted({o.region for o in current if o.cloud == cloud}))
    if not chosen:
        raise InvalidArgument(
            f"no {cloud} regions to fetch: the current catalog has none; pass regions={{{cloud!r}: [...]}}"
        )
    return chosen


def _missing(current: list[Offer], fresh: list[Offer], provider: str, regions: list[str]) -> list[str]:
    """'vm in eu-west-1' for each region and replaced service that the fresh rows leave empty (a VM list
    is always expected; a managed list where the current catalog has one)."""
    have = {(o.region, o.service) for o in fresh}
    had = {(o.region, o.service) for o in current if o.cloud == CLOUD[provider]}
    return [
        f"{service} in {region}"
        for region in regions
        for service in REPLACED_SERVICES[provider]
        if (region, service) not in have and (service == "vm" or (region, service) in had)
    ]


def _templates(current: list[Offer], provider: str) -> list[Offer]:
    """The cloud's VM rows: the sizes (vCPUs, memory, GPUs) for the APIs that give prices only."""
    return [o for o in current if o.cloud == CLOUD[provider] and o.service == "vm"]


def _fetch_provider(
    name: str, fetch: Fetch, regions: list[str], templates: list[Offer], gcp_key: str | None, as_of: str
) -> Parsed:
    if name == "aws":
        return aws.fetch_aws(fetch, regions, as_of)
    if name == "azure":
        return azure.fetch_azure(fetch, regions, templates, as_of)
    return gcp.fetch_gcp(fetch, gcp_key or "", regions, templates, as_of)


def merge(
    current: Iterable[Offer],
    fresh: Mapping[str, tuple[list[Offer], list[str]]],
    advice: spot_advisor.SpotAdvice | None,
    as_of: str,
    report: RefreshReport,
) -> list[Offer]:
    """The new catalog rows: fresh rows where a provider was refreshed, the current rows elsewhere."""
    old = list(current)
    old_by_key = {o.key: o for o in old}
    out: list[Offer] = []
    managed: list[tuple[str, Offer]] = []
    for offer in old:
        provider = _refreshed_by(offer, fresh)
        if provider is None:
            out.append(offer)
        elif offer.service == MANAGED_AT_VM_PRICE.get(provider):
            managed.append((provider, offer))
    for provider, (rows, _regions) in fresh.items():
        if provider == "aws" and advice is None:
            rows = [_keep_spot_discount(row, old_by_key.get(row.key)) for row in rows]
        out.extend(rows)
    new_vm = {_vm_key(o): o for o in out if o.service == "vm"}
    repriced: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    for provider, offer in managed:
        vm, old_vm = new_vm.get(_vm_key(offer)), old_by_key.get(_vm_key(offer))
        if vm is None and old_vm is not None:
            dropped[provider] += 1  # its VM is no longer priced there: neither is the managed service
            continue
        updated = _reprice_managed(offer, vm, old_vm, as_of)
        out.append(updated)
        repriced[provider] += updated is not offer
    for provider in repriced.keys() | dropped.keys():
        service = MANAGED_AT_VM_PRICE[provider]
        message = f"re-priced {repriced[provider]} {service} rows from their VMs"
        if dropped[provider]:
            message += f", dropped {dropped[provider]} whose VM is no longer priced"
        report.providers[provider].message = message
    if advice is not None:
        out, changed = spot_advisor.apply_advice(out, advice.advice)
        report.providers["spot_advisor"].message = f"set the interruption bucket and spot price of {changed} offers"
    return out


def _vm_key(offer: Offer) -> tuple[str, str, str, str, str, str | None, int]:
    return offer.cloud, offer.region, offer.instance_type, "vm", "any", offer.gpu_model, offer.gpu_count


def _refreshed_by(offer: Offer, fresh: Mapping[str, tuple[list[Offer], list[str]]]) -> str | None:
    for provider, (_rows, regions) in fresh.items():
        services = (*REPLACED_SERVICES[provider], MANAGED_AT_VM_PRICE.get(provider))
        if offer.cloud == CLOUD[provider] and offer.region in regions and offer.service in services:
            return provider
    return None


def _keep_spot_discount(row: Offer, previous: Offer | None) -> Offer:
    """A fresh AWS row (the price list has no spot prices) with the previous row's spot discount and bucket."""
    if row.spot is not None or row.on_demand is None or previous is None:
        return row
    if previous.spot is None or not previous.on_demand:
        return row
    spot = round(row.on_demand * previous.spot / previous.on_demand, 6)
    return replace(row, spot=spot, interruption_bucket=previous.interruption_bucket)


def _reprice_managed(offer: Offer, vm: Offer | None, old_vm: Offer | None, as_of: str) -> Offer:
    """A managed row at its new VM's price times the premium it had over the old VM; unchanged without both."""
    if vm is None or old_vm is None or not old_vm.on_demand or vm.on_demand is None or offer.on_demand is None:
        return offer
    premium = offer.on_demand / old_vm.on_demand
    spot = None
    if offer.spot is not None and vm.spot is not None:
        spot = round(vm.spot * premium, 6)
    return replace(
        offer,
        on_demand=round(vm.on_demand * premium, 6),
        spot=spot,
        source=f"{vm.source}; {offer.service} premium from the previous catalog",
        as_of=as_of,
    )
