"""Catalog refresh: current prices from the public price APIs, written as a new catalog directory.

One small module per source (``aws``: Price List bulk offer files for EC2 and SageMaker; ``azure``: Retail
Prices API; ``gcp``: Cloud Billing Catalog API, with a key; ``spot_advisor``: AWS Spot Advisor data), each a
parser of the documented response shape into ``Offer`` rows; ``update`` merges them into the current catalog
and ``writer`` replaces the catalog directory atomically. All HTTP goes through an injected ``fetch``.
"""

from strato.cost.refresh.common import Fetch, http_fetch
from strato.cost.refresh.update import PROVIDERS, ProviderReport, RefreshReport, update_catalog

__all__ = ["PROVIDERS", "Fetch", "ProviderReport", "RefreshReport", "http_fetch", "update_catalog"]
