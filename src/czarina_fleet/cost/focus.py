"""FinOps FOCUS export of the cost ledger (FOCUS 1.2: every column of the 1.2 spec,
spelled as the spec spells it; https://focus.finops.org), checked in the test suite by
the FinOps Foundation's focus-validator.

THESE ROWS ARE THE CONTROLLER'S ESTIMATE, NOT INVOICE DATA. The provider's own bill for
the same instances is the authority; adding these rows to it would count them twice. So:

- every row says so in `x_CostSource` (a custom column; FOCUS custom columns start x_);
- BilledCost is 0: FOCUS defines it as the charge that is the basis for invoicing, and
  nothing here is invoiced (the validator demands 0 too when InvoiceIssuerName differs
  from ProviderName). The estimate is in EffectiveCost, ListCost and ContractedCost;
- InvoiceId is null (FOCUS: null when a charge is on no invoice), InvoiceIssuerName is
  "czarina-fleet estimate (not an invoice)", and the billing account is the fleet
  (`czarina-fleet:<fleet>`), never a cloud account; ProviderName and PublisherName stay
  the cloud, which did make and sell the machine.

One row per (host, worker, hour) by default (`granularity_s`): the ledger's per-tick
entries are merged into hourly charge periods, money split in proportion to time.
How our data maps onto the columns:

- EffectiveCost = ListCost = ContractedCost = the accrued cost (BilledCost is 0, above).
  The price is the one recorded at launch (for spot, the spot price then), with no
  commitment discount or negotiated rate known to us, so the three agree;
  CommitmentDiscount* and CapacityReservation* columns are null.
- PricingQuantity = ConsumedQuantity = the host-hours the row carries (slot share x
  time), in "Hours"; ListUnitPrice = ContractedUnitPrice = the host's hourly rate, so
  ListCost = ListUnitPrice x PricingQuantity as the spec requires.
- PricingCategory is "Dynamic" for spot (a price the provider changes without notice)
  and "Standard" otherwise (FOCUS allows only Standard, Dynamic, Committed, Other).
- ResourceId is the fully qualified id from `cost/resource_ids.py` when the caller
  passes `resource_ids` (ARN, GCP resource name, Azure resource id); PricingCurrency*
  repeat the USD prices (one currency). ChargeCategory "Usage", ChargeFrequency
  "Usage-Based".
- Fleet and worker attribution go in Tags (a JSON object): czarina-fleet, czarina-pool,
  czarina-host, czarina-worker (absent for idle capacity), czarina-idle-capacity.
- x_PriceSource (custom column) names where the host's hourly price came from and when
  it was fetched (the host's `price_source`), when the caller passes `price_sources`.
- The billing account is the fleet (BillingAccountType "czarina-fleet fleet"); its
  pools are the sub-accounts (SubAccountType "czarina-fleet pool").
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

FOCUS_VERSION = "1.2"
FOCUS_COLUMNS: list[str] = [
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName",
    "BillingAccountType", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingCurrency",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter",
    "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName", "SubAccountType",
    "Tags", "x_CostSource", "x_PriceSource",
]
# The custom column on every row (FOCUS: custom columns start with "x_").
ESTIMATE_NOTE = ("czarina-fleet estimate: price recorded at launch x run time; not invoice "
                 "data, never add to the provider's billing data")
INVOICE_ISSUER = "czarina-fleet estimate (not an invoice)"

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
    resource_ids: Mapping[str, str] | None = None,
    price_sources: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """FOCUS rows (column -> text; null is ""), one per (host, worker, period).
    `resource_ids` (host id -> fully qualified id, `cost/resource_ids.py`) fills
    ResourceId; where a host has none, `czarina-fleet/<fleet>/hosts/<host id>` does."""
    items = rebucket(entries, granularity_s) if granularity_s else list(entries)
    ids, sources = resource_ids or {}, price_sources or {}
    # Keep a row that carries money even when its span rounds to nothing at epoch scale
    # (a sub-microsecond entry): the export's total must equal the ledger's.
    return [_row(e, fleet, ids.get(e.host_id)) | {"x_PriceSource": sources.get(e.host_id, "")}
            for e in items if e.seconds > 0 or e.usd]


def write_focus_csv(
    entries: Iterable[LedgerEntry], out: TextIO, fleet: str,
    granularity_s: float | None = 3600.0, resource_ids: Mapping[str, str] | None = None,
    price_sources: Mapping[str, str] | None = None,
) -> int:
    """Write the FOCUS CSV (header + rows) to `out`; returns the number of rows."""
    rows = focus_rows(entries, fleet, granularity_s, resource_ids, price_sources)
    writer = csv.DictWriter(out, fieldnames=FOCUS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def render_focus_csv(entries: Iterable[LedgerEntry], fleet: str,
                     granularity_s: float | None = 3600.0,
                     resource_ids: Mapping[str, str] | None = None,
                     price_sources: Mapping[str, str] | None = None) -> str:
    buf = io.StringIO()
    write_focus_csv(entries, buf, fleet, granularity_s, resource_ids, price_sources)
    return buf.getvalue()


def _row(e: LedgerEntry, fleet: str, resource_id: str | None) -> dict[str, str]:
    provider_name, service = _PROVIDERS.get(e.provider, (e.provider, f"{e.provider} hosts"))
    region_id, zone = _region_and_zone(e.region)
    quantity = entry_host_hours(e)
    sku = f"{e.provider}:{e.shape or 'host'}:{'spot' if e.spot else 'on-demand'}"
    cost = _dec(e.usd)
    period_start, period_end = _billing_period(e.ts)
    who = f"worker {e.worker_id}" if e.worker_id else "idle capacity"
    row = dict.fromkeys(FOCUS_COLUMNS, "")
    rate = _dec(e.rate_per_hour)
    row.update({
        "AvailabilityZone": zone,
        "BilledCost": "0.0", "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
        "BillingAccountId": f"czarina-fleet:{fleet}", "BillingAccountName": fleet,
        "BillingAccountType": "czarina-fleet fleet",
        "BillingCurrency": "USD", "PricingCurrency": "USD",
        "PricingCurrencyEffectiveCost": cost, "PricingCurrencyListUnitPrice": rate,
        "PricingCurrencyContractedUnitPrice": rate,
        "BillingPeriodStart": period_start, "BillingPeriodEnd": period_end,
        "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
        "ChargeDescription": (
            f"Estimate: {e.shape or 'host'} {'spot' if e.spot else 'on-demand'} in "
            f"{e.region or 'n/a'} at ${e.rate_per_hour:g}/h (price at launch), "
            f"host {e.host_id}, {entry_share(e):.4g} of it for {who}"),
        "ChargePeriodStart": iso_utc(e.ts), "ChargePeriodEnd": iso_utc(entry_end(e)),
        "ConsumedQuantity": _dec(quantity), "ConsumedUnit": "Hours",
        "PricingQuantity": _dec(quantity), "PricingUnit": "Hours",
        "ListUnitPrice": rate, "ContractedUnitPrice": rate,
        "PricingCategory": "Dynamic" if e.spot else "Standard",
        "ProviderName": provider_name, "PublisherName": provider_name,
        "InvoiceIssuerName": INVOICE_ISSUER, "x_CostSource": ESTIMATE_NOTE,
        "RegionId": region_id, "RegionName": region_id,
        "ResourceId": resource_id or f"czarina-fleet/{fleet}/hosts/{e.host_id}",
        "ResourceName": e.host_id,
        "ResourceType": "Virtual Machine",
        "ServiceCategory": "Compute", "ServiceSubcategory": "Virtual Machines",
        "ServiceName": service,
        "SkuId": sku, "SkuMeter": "Compute Hours",
        "SkuPriceId": f"{sku}:{e.region or 'any'}:{e.rate_per_hour!r}",
        "SkuPriceDetails": json.dumps({"InstanceType": e.shape, "Spot": e.spot}),
        "SubAccountId": f"czarina-fleet:{fleet}:{e.pool or e.provider}",
        "SubAccountName": e.pool or e.provider, "SubAccountType": "czarina-fleet pool",
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
