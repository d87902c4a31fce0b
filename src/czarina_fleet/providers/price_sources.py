"""Hourly prices from the providers' own published sources, cached on disk with their age.

- AWS on-demand: the Price List Query API (`pricing:GetProducts`, boto3 "pricing"),
  paging with NextToken. Each PriceList entry is a JSON document; the price is
  terms.OnDemand.*.priceDimensions.*.pricePerUnit.USD for unit "Hrs".
  (AWS spot prices come from EC2 DescribeSpotPriceHistory in the AWS driver.)
- Azure: the Retail Prices API (public, no credentials), `GET {base}/api/retail/prices?
  $filter=...`, paging with NextPageLink. Linux consumption meters; the spot meter's
  skuName ends in " Spot".
- GCP: the Cloud Billing Catalog API (`GET .../services/6F81-5844-456A/skus?key=...`,
  paging with nextPageToken): a predefined type's price is vCPUs x its family's core SKU
  + GiB x its RAM SKU (usageType OnDemand, or Preemptible for spot), in the region.

Every endpoint is a parameter, so tests point them at local fakes. `PriceCache` keeps
each answer in a JSON file with the time it was fetched, and callers fall back to the
built-in tables only when the source cannot be reached and nothing is cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from czarina_fleet.clock import Clock

log = logging.getLogger(__name__)

AZURE_RETAIL_URL = "https://prices.azure.com/api/retail/prices"
AWS_PRICING_REGION = "us-east-1"  # the Price List API's own endpoint region
FALLBACK_SOURCE = "built-in table (offline fallback)"
MAX_AGE_S = 24 * 3600.0  # list prices change a few times a year; a day-old one is fresh
HttpGet = Callable[[str], dict[str, Any]]


class PriceSourceError(Exception):
    """The source answered nothing usable (unreachable, malformed, or no such SKU)."""


@dataclass(frozen=True, slots=True)
class SourcedPrice:
    usd_per_hour: float
    source: str        # e.g. "AWS Price List API", "Azure Retail Prices API"
    fetched_at: float  # when it was fetched (clock time)

    def describe(self, now: float) -> str:
        """The source and how old the price is."""
        return f"{self.source}, fetched {max(0.0, now - self.fetched_at):.0f}s ago"

    def label(self) -> str:
        """The source and when it was fetched (UTC): what a quote's `source` says, so
        the cost report can tell each price's age later."""
        when = datetime.fromtimestamp(self.fetched_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.source}, fetched {when}"


class PriceCache:
    """Prices keyed by provider/shape/region/market, in one JSON file (or only in
    memory when `path` is None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, dict[str, Any]] = {}

    def get(self, key: str, now: float, max_age_s: float) -> SourcedPrice | None:
        hit = self._load().get(key)
        if hit is None or now - float(hit["fetched_at"]) > max_age_s:
            return None
        return SourcedPrice(float(hit["usd_per_hour"]), str(hit["source"]),
                            float(hit["fetched_at"]))

    def put(self, key: str, price: SourcedPrice) -> None:
        data = self._load()
        data[key] = {"usd_per_hour": price.usd_per_hour, "source": price.source,
                     "fetched_at": price.fetched_at}
        if self.path is None:
            self._memory = data
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a crash never leaves half a cache behind.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".prices-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.path is None:
            return dict(self._memory)
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def cached(cache: PriceCache | None, key: str, now: float, max_age_s: float,
           fetch: Callable[[], float], source: str) -> SourcedPrice:
    """The cached price if younger than `max_age_s`, else a fresh one (then cached)."""
    hit = cache.get(key, now, max_age_s) if cache else None
    if hit is not None:
        return hit
    price = SourcedPrice(fetch(), source, now)
    if cache:
        cache.put(key, price)
    return price


class PriceBook:
    """One driver's published prices: a fresh cached price, else the source (cached
    then), else a stale cached price, else None: the caller's built-in table."""

    def __init__(self, cache: PriceCache, clock: Clock, max_age_s: float = MAX_AGE_S) -> None:
        self.cache, self.clock, self.max_age_s = cache, clock, max_age_s

    async def lookup(self, key: str, source: str,
                     fetch: Callable[[], float] | None) -> SourcedPrice | None:
        now = self.clock.now()
        hit = self.cache.get(key, now, self.max_age_s)
        if hit is not None or fetch is None:
            return hit or self.cache.get(key, now, float("inf"))
        try:
            price = SourcedPrice(await asyncio.to_thread(fetch), source, now)
        except Exception as exc:  # any failure of a price source means: use what we have
            log.warning("%s: %s", source, exc)
            return self.cache.get(key, now, float("inf"))
        self.cache.put(key, price)
        return price


def cache_for(context: dict[str, Any]) -> PriceCache:
    """The drivers' price cache: `price_cache` from the context (a path; the controller
    passes one beside its state), else in memory only."""
    path = context.get("price_cache")
    return PriceCache(Path(path) if path else None)


# --- AWS Price List Query API ------------------------------------------------------------

def aws_on_demand(pricing_client: Any, shape: str, region: str) -> float:
    """Linux, shared tenancy, no pre-installed software, on-demand USD/hour of `shape`
    in `region` (a region, not a zone), from `pricing_client.get_products`."""
    filters = [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in (
        ("instanceType", shape), ("regionCode", region), ("operatingSystem", "Linux"),
        ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"))]
    prices = [p for doc in _aws_pages(pricing_client, filters) for p in _aws_hourly(doc)]
    if not prices:
        raise PriceSourceError(f"AWS Price List API: no Linux on-demand price for {shape} "
                               f"in {region}")
    return min(prices)


def _aws_pages(client: Any, filters: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        params: dict[str, Any] = {"ServiceCode": "AmazonEC2", "Filters": filters,
                                  "FormatVersion": "aws_v1", "MaxResults": 100}
        if token:
            params["NextToken"] = token
        page = client.get_products(**params)
        for item in page.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item
        token = page.get("NextToken")
        if not token:
            return


def _aws_hourly(doc: dict[str, Any]) -> Iterator[float]:
    for term in doc.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = dim.get("pricePerUnit", {}).get("USD")
            if dim.get("unit") == "Hrs" and usd is not None and float(usd) > 0:
                yield float(usd)


# --- Azure Retail Prices API ------------------------------------------------------------

def azure_retail(get: HttpGet, shape: str, region: str, spot: bool,
                 base_url: str = AZURE_RETAIL_URL) -> float:
    """Linux pay-as-you-go (or spot) USD/hour of VM size `shape` in `region`."""
    flt = (f"serviceName eq 'Virtual Machines' and armSkuName eq '{shape}' and "
           f"armRegionName eq '{region}' and priceType eq 'Consumption'")
    url: str | None = f"{base_url}?{urllib.parse.urlencode({'$filter': flt})}"
    prices: list[float] = []
    while url:
        page = get(url)
        prices += [float(i["retailPrice"]) for i in page.get("Items", [])
                   if _azure_linux_meter(i, spot)]
        url = page.get("NextPageLink") or None
    if not prices:
        raise PriceSourceError(f"Azure Retail Prices API: no Linux "
                               f"{'spot' if spot else 'pay-as-you-go'} price for {shape} "
                               f"in {region}")
    return min(prices)


def _azure_linux_meter(item: dict[str, Any], spot: bool) -> bool:
    sku = str(item.get("skuName", ""))
    return (item.get("unitOfMeasure") == "1 Hour" and item.get("type") == "Consumption"
            and "Windows" not in str(item.get("productName", ""))
            and "Low Priority" not in sku and sku.endswith(" Spot") == spot)


def http_get_json(timeout_s: float = 20.0) -> HttpGet:
    """A GET that returns the JSON body (the Retail Prices API needs no credentials)."""
    def get(url: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                return dict(json.loads(resp.read()))
        except (OSError, ValueError) as exc:
            raise PriceSourceError(f"{url.split('?')[0]}: {exc}") from exc
    return get


# --- GCP Cloud Billing Catalog API ------------------------------------------------------

GCP_CATALOG_URL = "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus"
# machine family -> (SKU description prefix, GiB of memory per vCPU by type class)
_GCP_FAMILIES = {"e2": "E2 Instance", "n2": "N2 Instance", "n2d": "N2D AMD Instance",
                 "n1": "N1 Predefined Instance"}
_GCP_MEMORY = {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0}


def gcp_machine(shape: str) -> tuple[str, int, float]:
    """(family, vCPUs, GiB) of a predefined type such as n2-standard-4 (n1-standard: 3.75
    GiB per vCPU); raises PriceSourceError for types priced otherwise (shared-core,
    custom, GPU, C2...), which the built-in table then answers."""
    parts = shape.split("-")
    if (len(parts) != 3 or parts[0] not in _GCP_FAMILIES or parts[1] not in _GCP_MEMORY
            or not parts[2].isdigit()):
        raise PriceSourceError(f"Cloud Billing Catalog: {shape} is not a predefined "
                               f"{'/'.join(_GCP_FAMILIES)} type this client prices")
    per = 3.75 if (parts[0], parts[1]) == ("n1", "standard") else _GCP_MEMORY[parts[1]]
    return parts[0], int(parts[2]), per * int(parts[2])


def gcp_catalog(get: HttpGet, shape: str, region: str, spot: bool, api_key: str,
                base_url: str = GCP_CATALOG_URL) -> float:
    """vCPUs x the core SKU's price + GiB x the RAM SKU's price, from Compute Engine's SKUs
    (paging with nextPageToken), for `region` (a region or a zone)."""
    family, cpus, gib = gcp_machine(shape)
    region = region if region.count("-") < 2 else region.rsplit("-", 1)[0]  # a zone
    prefix = ("Spot Preemptible " if spot else "") + _GCP_FAMILIES[family]
    usage = "Preemptible" if spot else "OnDemand"
    found: dict[str, float] = {}
    token = ""
    while True:
        query = {"currencyCode": "USD", "key": api_key} | ({"pageToken": token} if token else {})
        page = get(f"{base_url}?{urllib.parse.urlencode(query)}")
        for sku in page.get("skus", []):
            desc, cat = str(sku.get("description", "")), sku.get("category", {})
            if (region in sku.get("serviceRegions", []) and cat.get("usageType") == usage
                    and desc.startswith(prefix + " ")):
                kind = "core" if desc.startswith(prefix + " Core") else (
                    "ram" if desc.startswith(prefix + " Ram") else "")
                if kind:
                    found[kind] = _unit_price(sku)
        token = page.get("nextPageToken") or ""
        if not token:
            break
    if set(found) != {"core", "ram"}:
        raise PriceSourceError(f"Cloud Billing Catalog: no {prefix} core and RAM SKUs in "
                               f"{region}")
    return cpus * found["core"] + gib * found["ram"]


def _unit_price(sku: dict[str, Any]) -> float:
    """The hourly unit price (units + nanos) of the last tier (the rate past any free
    tier) of the current pricing info."""
    expr = sku["pricingInfo"][0]["pricingExpression"]
    if expr.get("usageUnit") not in ("h", "GiBy.h"):
        raise PriceSourceError(f"Cloud Billing Catalog: unexpected unit {expr.get('usageUnit')}")
    price = expr["tieredRates"][-1]["unitPrice"]
    return int(price.get("units") or 0) + int(price.get("nanos") or 0) / 1e9
