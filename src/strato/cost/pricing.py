"""What an hour of a workload costs on the workspace's reference target: the cheapest instance of the
target cloud and region that fits its resources, at the target's purchase option (spot for spot jobs).

The reference target (``cost_target``, default ``aws:us-east-1:on_demand``) is how the ledger turns
measured run time into dollars: "what this would have cost on AWS in us-east-1, on demand".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from strato.cost.catalog import Catalog
from strato.cost.offers import Offer
from strato.errors import InvalidArgument

PURCHASES = ("on_demand", "spot", "commit_1y", "commit_3y")
GIB = 1024**3


@dataclass(frozen=True)
class CostTarget:
    cloud: str = "aws"
    region: str = "us-east-1"
    purchase: str = "on_demand"

    @classmethod
    def parse(cls, text: str) -> CostTarget:
        """``cloud:region:purchase`` (purchase optional), e.g. ``gcp:europe-west4:spot``."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidArgument(f"cost target {text!r}: write CLOUD:REGION[:PURCHASE], e.g. aws:us-east-1:on_demand")
        purchase = parts[2] if len(parts) == 3 else "on_demand"
        if purchase not in PURCHASES:
            raise InvalidArgument(f"cost target {text!r}: purchase must be one of {', '.join(PURCHASES)}")
        return cls(parts[0], parts[1], purchase)

    def __str__(self) -> str:
        return f"{self.cloud}:{self.region}:{self.purchase}"


@dataclass(frozen=True)
class Priced:
    offer: Offer
    purchase: str
    hourly: float  # one instance


class Pricer:
    def __init__(self, catalog: Catalog, target: CostTarget):
        self.catalog = catalog
        self.target = target
        if not catalog.search(cloud=target.cloud, region=target.region):
            raise InvalidArgument(f"cost target {target}: the price catalog has no instances in that cloud and region")
        self._price = lru_cache(maxsize=1024)(self._lookup)

    def price(self, cpus: float, memory_bytes: int, gpus: int = 0, *, spot: bool = False) -> Priced | None:
        """The cheapest fitting instance and its hourly price, or None when nothing in the target fits."""
        return self._price(round(cpus, 3), int(memory_bytes), int(gpus), spot)

    def _lookup(self, cpus: float, memory_bytes: int, gpus: int, spot: bool) -> Priced | None:
        purchase = "spot" if spot else self.target.purchase
        offers = self.catalog.search(
            cloud=self.target.cloud,
            region=self.target.region,
            service="vm",
            min_vcpus=cpus,
            min_memory_gib=memory_bytes / GIB,
            min_gpus=gpus or None,
        )
        best: Priced | None = None
        for offer in offers:
            if gpus == 0 and offer.gpu_count:
                continue  # a CPU workload is priced on a CPU instance
            hourly = self.hourly(offer, purchase)
            if hourly is not None and (best is None or hourly < best.hourly):
                best = Priced(offer, purchase, hourly)
        return best

    def hourly(self, offer: Offer, purchase: str) -> float | None:
        if purchase == "spot":
            return offer.spot if offer.spot is not None else offer.on_demand
        if purchase.startswith("commit_") and offer.on_demand is not None:
            commitment = self.catalog.commitment(offer.cloud, offer.service, offer.family, int(purchase[-2]))
            return offer.on_demand * (1 - commitment.discount) if commitment else offer.on_demand
        return offer.on_demand
