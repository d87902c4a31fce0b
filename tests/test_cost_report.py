"""Cost reports: grouping, day splits, CSV/JSON, FOCUS columns that parse back."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from czarina_fleet.cost.focus import FOCUS_COLUMNS, focus_rows, render_focus_csv
from czarina_fleet.cost.ledger import accrue_tick
from czarina_fleet.cost.report import (
    IDLE_LABEL,
    group_totals,
    rebucket,
    render_csv,
    render_table,
    report_json,
    total_usd,
    write_text,
)
from czarina_fleet.model.cost import LedgerEntry
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState

# 2024-03-31 22:00 UTC: two hours before both a day and a month boundary.
T0 = datetime(2024, 3, 31, 22, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0

REQUIRED_FOCUS = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeDescription",
    "ResourceId", "ResourceName", "ResourceType", "ServiceName", "ServiceCategory",
    "ProviderName", "PublisherName", "InvoiceIssuerName", "RegionId", "RegionName", "SkuId",
    "PricingUnit", "PricingQuantity", "ConsumedQuantity", "ConsumedUnit", "PricingCategory",
    "CommitmentDiscountId", "CommitmentDiscountType", "BillingPeriodStart", "Tags",
]


def fleet_ledger(hours: float = 5.0, tick: float = 15.0) -> list[LedgerEntry]:
    """A realistic ledger: 15 s ticks over `hours`, an AWS spot host with two workers
    (one joining late), a GCP on-demand host that is terminated half way, a free local
    host."""
    hosts = [
        HostRecord("spot-1", "aws", HostState.READY, T0, 2, pool="spot", shape="t3.large",
                   region="us-east-1a", spot=True, price_per_hour=0.0312, launched_at=T0,
                   instance_id="i-0abc"),
        HostRecord("gpu-1", "gcp", HostState.TERMINATED, T0 + hours * HOUR / 2, 1,
                   pool="gpu", shape="g2-standard-4", region="us-central1-a", spot=False,
                   price_per_hour=0.7068, launched_at=T0 - 600, instance_id="8812345"),
        HostRecord("local", "local", HostState.READY, T0, 4),
    ]
    workers = [
        WorkerRecord("backend", WorkerState.RUNNING, T0, "spot-1", started_at=T0),
        WorkerRecord("frontend", WorkerState.RUNNING, T0, "spot-1", started_at=T0 + 1000),
        WorkerRecord("ml", WorkerState.RUNNING, T0, "gpu-1", started_at=T0 - 300),
        WorkerRecord("docs", WorkerState.RUNNING, T0, "local"),
    ]
    mark, entries = T0, []
    for i in range(1, int(hours * HOUR / tick) + 1):
        r = accrue_tick(hosts, workers, mark, T0 + i * tick)
        entries.extend(r.entries)
        mark = r.accrued_until
    return entries


# What `czarina cost report` passes: fully qualified ids from the pools' options.
IDS = {"gpu-1": "//compute.googleapis.com/projects/acme-ml/zones/us-central1-a/instances/gpu-1-vm"}


@pytest.fixture(scope="module")
def ledger() -> list[LedgerEntry]:
    return fleet_ledger()


def test_group_totals_sum_to_ledger_total_for_every_grouping(ledger: list) -> None:
    whole = total_usd(ledger)
    expect = 0.0312 * 5 + 0.7068 * 2.5  # spot host 5 h; gpu host till half way
    assert whole == pytest.approx(expect, rel=1e-9)
    for by in ("worker", "host", "pool", "provider", "day"):
        totals = group_totals(ledger, by)
        assert math.fsum(t.usd for t in totals) == pytest.approx(whole, rel=1e-9), by


def test_group_by_worker_attributes_slot_shares_and_idle(ledger: list) -> None:
    per = {t.key: t.usd for t in group_totals(ledger, "worker")}
    assert per["ml"] == pytest.approx(0.7068 * 2.5)
    assert per["backend"] == pytest.approx(0.0312 * 5 / 2)
    assert per["frontend"] == pytest.approx(0.0312 * (5 * HOUR - 1000) / HOUR / 2)
    assert per[IDLE_LABEL] == pytest.approx(0.0312 * 1000 / HOUR / 2)
    assert "docs" not in per  # the local host is free


def test_group_by_day_splits_at_utc_midnight(ledger: list) -> None:
    days = {t.key: t for t in group_totals(ledger, "day")}
    assert set(days) == {"2024-03-31", "2024-04-01"}
    # 2 h before midnight: spot 2 h, gpu 2 h; the rest after.
    assert days["2024-03-31"].usd == pytest.approx(0.0312 * 2 + 0.7068 * 2)
    assert days["2024-04-01"].usd == pytest.approx(0.0312 * 3 + 0.7068 * 0.5)


def test_rebucket_keeps_money_and_aligns_to_hours(ledger: list) -> None:
    hourly = rebucket(ledger, HOUR)
    assert total_usd(hourly) == pytest.approx(total_usd(ledger), rel=1e-12)
    assert all(math.floor(e.ts / HOUR) == math.floor((e.ts + e.seconds - 1e-6) / HOUR)
               for e in hourly)
    assert len(hourly) < len(ledger) / 50


def test_ledger_csv_and_json_round_trip(ledger: list, tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    write_text(render_csv(ledger), path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(ledger)
    assert math.fsum(float(r["usd"]) for r in rows) == pytest.approx(total_usd(ledger))
    doc = json.loads(report_json(ledger, by="pool"))
    assert doc["total_usd"] == pytest.approx(total_usd(ledger))
    assert {g["key"] for g in doc["groups"]} == {"spot", "gpu"}
    assert doc["period"]["start"] == "2024-03-31T22:00:00Z"  # the watermark started at T0


def test_focus_csv_has_the_spec_columns_and_parses_back(ledger: list) -> None:
    text = render_focus_csv(ledger, fleet="acme", resource_ids=IDS)
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == FOCUS_COLUMNS
    assert set(REQUIRED_FOCUS) <= set(reader.fieldnames)
    rows = list(reader)
    for col in ("EffectiveCost", "ListCost", "ContractedCost"):
        assert math.fsum(float(r[col]) for r in rows) == pytest.approx(total_usd(ledger),
                                                                       rel=1e-12)
    for r in rows:
        assert "e" not in r["EffectiveCost"].lower()  # plain decimals, no exponent
        assert float(r["BilledCost"]) == 0  # an estimate, on no invoice
        assert float(r["ListCost"]) == pytest.approx(
            float(r["ListUnitPrice"]) * float(r["PricingQuantity"]), rel=1e-9)
        start = datetime.strptime(r["ChargePeriodStart"], "%Y-%m-%dT%H:%M:%SZ")
        end = datetime.strptime(r["ChargePeriodEnd"], "%Y-%m-%dT%H:%M:%SZ")
        assert start < end and (end - start).total_seconds() <= HOUR
        assert r["ChargeCategory"] == "Usage" and r["BillingCurrency"] == "USD"
        assert r["CommitmentDiscountId"] == ""
        tags = json.loads(r["Tags"])
        assert tags["czarina-fleet"] == "acme" and tags["czarina-host"] == r["ResourceName"]


def test_focus_rows_map_providers_regions_and_pricing(ledger: list) -> None:
    rows = focus_rows(ledger, fleet="acme", resource_ids=IDS)
    gpu = next(r for r in rows if r["ResourceName"] == "gpu-1")
    assert (gpu["ProviderName"], gpu["ServiceName"]) == ("Google Cloud", "Compute Engine")
    assert (gpu["RegionId"], gpu["AvailabilityZone"]) == ("us-central1", "us-central1-a")
    # FOCUS allows Standard, Dynamic, Committed, Other: on-demand is Standard.
    assert gpu["PricingCategory"] == "Standard"
    assert gpu["ResourceId"] == (
        "//compute.googleapis.com/projects/acme-ml/zones/us-central1-a/instances/gpu-1-vm")
    # A host the caller has no id for is still named uniquely.
    assert next(r for r in rows if r["ResourceName"] == "spot-1")["ResourceId"] == (
        "czarina-fleet/acme/hosts/spot-1")
    spot = [r for r in rows if r["ResourceName"] == "spot-1"]
    assert {r["PricingCategory"] for r in spot} == {"Dynamic"}
    assert spot[0]["RegionId"] == "us-east-1" and spot[0]["SkuId"] == "aws:t3.large:spot"
    idle = [r for r in spot if json.loads(r["Tags"])["czarina-idle-capacity"] == "true"]
    assert idle and all("czarina-worker" not in json.loads(r["Tags"]) for r in idle)
    # The April rows belong to April's billing period.
    april = [r for r in rows if r["ChargePeriodStart"].startswith("2024-04")]
    assert april and {r["BillingPeriodStart"] for r in april} == {"2024-04-01T00:00:00Z"}
    assert {r["BillingPeriodEnd"] for r in april} == {"2024-05-01T00:00:00Z"}


def test_render_table_shows_groups_and_total(ledger: list) -> None:
    console = Console(record=True, width=120)
    console.print(render_table(ledger, "worker"))
    out = console.export_text()
    for word in ("Worker", "backend", "frontend", "ml", IDLE_LABEL, "Total"):
        assert word in out
    assert f"${total_usd(ledger):,.2f}" in out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 3 * 86400), st.floats(0, 86400),
                          st.floats(0.001, 10.0)), min_size=1, max_size=20))
@example([(0.0, 4.029250258655863e-08, 1.0)])  # a span that rounds to nothing at epoch scale
def test_focus_sums_equal_ledger_for_arbitrary_entries(spans: list) -> None:
    entries = [
        LedgerEntry(T0 + s, f"h{i % 3}", None if i % 2 else "w", "p", "aws", "m5.large",
                    "eu-west-1", False, rate * d / HOUR, rate, d)
        for i, (s, d, rate) in enumerate(spans)
    ]
    rows = focus_rows(entries, fleet="f")
    assert math.fsum(float(r["EffectiveCost"]) for r in rows) == pytest.approx(
        total_usd(entries), rel=1e-9, abs=1e-12)


def test_export_report_writes_every_format(ledger: list, tmp_path: Path) -> None:
    from czarina_fleet.cost.export import REPORT_FORMATS, export_report

    for fmt in REPORT_FORMATS:
        path = tmp_path / f"report.{fmt}"
        export_report(ledger, fmt, path, by="host", fleet="acme")
        text = path.read_text()
        assert text, fmt
    assert "spot-1" in (tmp_path / "report.table").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["group_by"] == "host"
    focus = list(csv.DictReader((tmp_path / "report.focus").open()))
    assert math.fsum(float(r["EffectiveCost"]) for r in focus) == pytest.approx(
        total_usd(ledger))
    stream = io.StringIO()
    export_report(ledger, "csv", stream)
    assert stream.getvalue().startswith("start,end,seconds,host_id")
    with pytest.raises(ValueError, match="unknown report format 'xml'"):
        export_report(ledger, "xml", stream)  # type: ignore[arg-type]


def test_resource_ids_are_fully_qualified_where_the_pool_says_where() -> None:
    from czarina_fleet.cost.resource_ids import resource_ids

    def host(hid: str, provider: str, iid: str | None, region: str) -> HostRecord:
        return HostRecord(hid, provider, HostState.READY, T0, 1, pool=provider,
                          region=region, instance_id=iid)

    hosts = [host("a", "aws", "i-01", "cn-north-1a"), host("g", "gcp", "europe-west1-b/vm", ""),
             host("z", "azure", "vm-z", "westeurope"), host("s", "static", None, ""),
             host("n", "aws", None, "us-east-1")]  # launch not finished: no cloud id yet
    opts = {"aws": {"account_id": "210987654321"}, "azure": {"resource_group": "rg"}}
    env = {"GOOGLE_CLOUD_PROJECT": "p1", "AZURE_SUBSCRIPTION_ID": "sub-1"}
    assert resource_ids(hosts, "f", opts, env) == {
        "a": "arn:aws-cn:ec2:cn-north-1:210987654321:instance/i-01",
        "g": "//compute.googleapis.com/projects/p1/zones/europe-west1-b/instances/vm",
        "z": "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/"
             "virtualMachines/vm-z",
        "s": "czarina-fleet/f/hosts/s", "n": "czarina-fleet/f/hosts/n"}
    # Without the account, project or subscription the short id stays (still unique).
    bare = resource_ids(hosts[:3], "f", {}, {})
    assert bare == {"a": "i-01", "g": "europe-west1-b/vm", "z": "vm-z"}


def test_cli_focus_export_names_resources_from_the_pools_options(tmp_path: Path) -> None:
    """`czarina cost report --format focus` through the real parser, config and store."""
    from czarina_fleet.cli.main import main
    from czarina_fleet.clock import FakeClock
    from czarina_fleet.controller.state.store import Store

    config = tmp_path / ".czarina" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"fleet": {"name": "acme", "pools": [
        {"name": "east", "provider": "aws", "instance_types": ["t3.large"],
         "regions": ["us-east-1"], "options": {"account_id": "123456789012"}}]},
        "workers": [{"id": "w", "branch": "b", "location": "pool:east"}]}))
    host = HostRecord("east-1", "aws", HostState.READY, T0, 1, pool="east", shape="t3.large",
                      region="us-east-1b", price_per_hour=0.0832, launched_at=T0,
                      instance_id="i-0123456789abcdef0",
                      price_source="AWS Price List API, fetched 2024-03-31T19:00:00Z")
    store = Store(config.parent / "fleet.db", FakeClock(T0))
    try:
        store.upsert_host(host)
        r = accrue_tick([host], [], T0, T0 + HOUR)
        store.add_ledger_entries(r.entries, accrued_until=r.accrued_until)
    finally:
        store.close()
    out = tmp_path / "focus.csv"
    assert main(["--config", str(config), "cost", "report", "--format", "focus",
                 "-o", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open()))
    assert row["ResourceId"] == "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
    assert row["PricingCategory"] == "Standard" and float(row["EffectiveCost"]) == 0.0832
    assert row["x_PriceSource"] == "AWS Price List API, fetched 2024-03-31T19:00:00Z"
    # The table and the JSON name each price's source and its age at launch (3 h).
    assert main(["--config", str(config), "cost", "report", "--format", "json",
                 "-o", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["prices"]["east-1"] == {
        "usd_per_hour": 0.0832, "age_at_launch_s": 10800.0,
        "source": "AWS Price List API, fetched 2024-03-31T19:00:00Z"}
    assert main(["--config", str(config), "cost", "report", "-o", str(out)]) == 0
    assert ("east-1: $0.0832/h from AWS Price List API, fetched 2024-03-31T19:00:00Z "
            "(3.0 h old at launch)") in out.read_text()
