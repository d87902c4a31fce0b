"""FinOps FOCUS export of the cost ledger (FOCUS 1.1 column names, exactly as the spec
spells them; https://focus.finops.org).

One row per (host, worker, hour) by default (`granularity_s`): the ledger's per-tick
entries are merged into hourly charge periods, money split in proportion to time.
How our data maps onto the columns:

- BilledCost = EffectiveCost = ListCost = ContractedCost = the accrued cost. The price
  is the one recorded at launch (for spot, the spot price then), with no commitment
  discount or negotiated rate known to us, so the four agree; CommitmentDiscount* and
  CapacityReservation* columns are null.
- PricingQuantity = ConsumedQuantity = the host-hours the row carries (slot share x
  time), in "Hours"; ListUnitPrice = ContractedUnitPrice = the host's hourly rate, so
  ListCost = ListUnitPrice x PricingQuantity as the spec requires.
- PricingCategory is "Dynamic" for spot (a price the provider changes without notice)
  and "On-Demand" otherwise. ChargeCategory "Usage", ChargeFrequency "Usage-Based".
- Fleet and worker attribution go in Tags (a JSON object): czarina-fleet, czarina-pool,
  czarina-host, czarina-worker (absent for idle capacity), czarina-idle-capacity.
- The billing account is the fleet; its pools are the sub-accounts.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from czarina_fleet.cost.ledger import entry_end, entry_host_hours, entry_share
from czarina_fleet.cost.report import iso_utc, rebucket
from czarina_fleet.model.cost import LedgerEntry

FOCUS_VERSION = "1.1"
FOCUS_COLUMNS: list[str] = [
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName",
    "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId",
    "CapacityReservationStatus", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId",
    "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory",
    "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails",
    "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
]

# provider driver name -> (ProviderName, ServiceName)
_PROVIDERS: dict[str, tuple[str, str]] = {
    "aws": ("AWS", "Amazon Elastic Compute Cloud"),
    "gcp": ("Google Cloud", "Compute Engine"),
    "azure": ("Microsoft", "Virtual Machines"),
    "static": ("Self-hosted", "Static SSH hosts"),
    "local": ("Self-hosted", "Local machine"),
    "lab": ("czarina-fleet", "Lab hosts"),
}
_GCP_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
_AZ_SUFFIX = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)[a-z]$")


def focus_rows(
    entries: Iterable[LedgerEntry], fleet: str, granularity_s: float | None = 3600.0,
    instance_ids: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """FOCUS rows (column -> text; null is ""), one per (host, worker, period).
    `instance_ids` (host id -> cloud instance id, from the store's hosts) fills
    ResourceId with the cloud's own id; the host id stands in where it is unknown."""
    items = rebucket(entries, granularity_s) if granularity_s else list(entries)
    ids = instance_ids or {}
    # Keep a row that carries money even when its span rounds to nothing at epoch scale
    # (a sub-microsecond entry): the export's total must equal the ledger's.
    return [_row(e, fleet, ids.get(e.host_id)) for e in items if e.seconds > 0 or e.usd]


def write_focus_csv(
    entries: Iterable[LedgerEntry], out: TextIO, fleet: str,
    granularity_s: float | None = 3600.0, instance_ids: Mapping[str, str] | None = None,
) -> int:
    """Write the FOCUS CSV (header + rows) to `out`; returns the number of rows."""
    rows = focus_rows(entries, fleet, granularity_s, instance_ids)
    writer = csv.DictWriter(out, fieldnames=FOCUS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def render_focus_csv(entries: Iterable[LedgerEntry], fleet: str,
                     granularity_s: float | None = 3600.0,
                     instance_ids: Mapping[str, str] | None = None) -> str:
    buf = io.StringIO()
    write_focus_csv(entries, buf, fleet, granularity_s, instance_ids)
    return buf.getvalue()


def _row(e: LedgerEntry, fleet: str, instance_id: str | None) -> dict[str, str]:
    provider_name, service = _PROVIDERS.get(e.provider, (e.provider, f"{e.provider} hosts"))
    region_id, zone = _region_and_zone(e.region)
    quantity = entry_host_hours(e)
    sku = f"{e.provider}:{e.shape or 'host'}:{'spot' if e.spot else 'on-demand'}"
    cost = _dec(e.usd)
    period_start, period_end = _billing_period(e.ts)
    who = f"worker {e.worker_id}" if e.worker_id else "idle capacity"
    row = dict.fromkeys(FOCUS_COLUMNS, "")
    row.update({
        "AvailabilityZone": zone,
        "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
        "BillingAccountId": fleet, "BillingAccountName": fleet,
        "BillingCurrency": "USD",
        "BillingPeriodStart": period_start, "BillingPeriodEnd": period_end,
        "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
        "ChargeDescription": (
            f"{e.shape or 'host'} {'spot' if e.spot else 'on-demand'} in "
            f"{e.region or 'n/a'} at ${e.rate_per_hour:g}/h (price at launch), "
            f"host {e.host_id}, {entry_share(e):.4g} of it for {who}"),
        "ChargePeriodStart": iso_utc(e.ts), "ChargePeriodEnd": iso_utc(entry_end(e)),
        "ConsumedQuantity": _dec(quantity), "ConsumedUnit": "Hours",
        "PricingQuantity": _dec(quantity), "PricingUnit": "Hours",
        "ListUnitPrice": _dec(e.rate_per_hour), "ContractedUnitPrice": _dec(e.rate_per_hour),
        "PricingCategory": "Dynamic" if e.spot else "On-Demand",
        "ProviderName": provider_name, "PublisherName": provider_name,
        "InvoiceIssuerName": provider_name,
        "RegionId": region_id, "RegionName": region_id,
        "ResourceId": instance_id or e.host_id, "ResourceName": e.host_id,
        "ResourceType": "Virtual Machine",
        "ServiceCategory": "Compute", "ServiceSubcategory": "Virtual Machines",
        "ServiceName": service,
        "SkuId": sku, "SkuMeter": "Compute Hours",
        "SkuPriceId": f"{sku}:{e.region or 'any'}:{e.rate_per_hour!r}",
        "SkuPriceDetails": json.dumps({"InstanceType": e.shape, "Spot": e.spot}),
        "SubAccountId": e.pool or e.provider, "SubAccountName": e.pool or e.provider,
        "Tags": json.dumps(_tags(e, fleet), sort_keys=True),
    })
    return row


def _tags(e: LedgerEntry, fleet: str) -> dict[str, str]:
    tags = {"czarina-fleet": fleet, "czarina-host": e.host_id,
            "czarina-idle-capacity": "false" if e.worker_id else "true"}
    if e.pool:
        tags["czarina-pool"] = e.pool
    if e.worker_id:
        tags["czarina-worker"] = e.worker_id
    return tags


def _dec(x: float) -> str:
    """A float as plain decimal text (no exponent), exactly as repr rounds it, so the
    CSV parses back to the same float."""
    return format(Decimal(repr(x)), "f")


def _region_and_zone(region: str | None) -> tuple[str, str]:
    """GCP pools name zones (us-central1-a) and AWS ones may (us-east-1a): FOCUS wants the
    region in RegionId and the zone in AvailabilityZone."""
    if not region:
        return "", ""
    for pattern in (_GCP_ZONE, _AZ_SUFFIX):
        m = pattern.match(region)
        if m:
            return m.group(1), region
    return region, ""


def _billing_period(ts: float) -> tuple[str, str]:
    """The calendar month (UTC) a charge falls in: FOCUS's billing period."""
    d = datetime.fromtimestamp(ts, UTC)
    start = datetime(d.year, d.month, 1, tzinfo=UTC)
    end = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
    return (start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"))
