"""The FOCUS export checked by the FinOps Foundation's own focus-validator (2.2.1, FOCUS
1.2, the newest it supports), and against the published column definitions in
tests/data/focus-1.2 (CC-BY-4.0).

The validator sees spot pools and on-demand pools in separate files, because its
allowed-value rules pass a column when ANY row holds an allowed value: a mixed file would
hide on-demand rows with a wrong PricingCategory behind the spot rows (the row-by-row
checks below see every row anyway). scripts/setup-focus-validator.sh installs the
validator into .venv-focus (it needs Python 3.12; scripts/setup.sh calls it).
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from czarina_fleet.cost.focus import ESTIMATE_NOTE, FOCUS_COLUMNS, render_focus_csv
from czarina_fleet.cost.ledger import accrue_tick
from czarina_fleet.cost.resource_ids import resource_ids
from czarina_fleet.model.cost import LedgerEntry
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "data" / "focus-1.2" / "columns"
VALIDATOR = ROOT / ".venv-focus" / "bin" / "focus-validator"
# What a fleet's data supports, in the validator's terms (--show-applicability-criteria).
# Not claimed: capacity reservations, commitment discounts, negotiated prices, several
# account types, other currencies: the export has none of them.
CRITERIA = ",".join([
    "ACCOUNT_NAMING_SUPPORTED", "AVAILABILITY_ZONE_SUPPORTED",
    "MULTIPLE_PRICING_CATEGORIES_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED",
    "USAGE_MEASUREMENT_SUPPORTED", "UNIT_PRICING_SUPPORTED", "SUB_ACCOUNT_SUPPORTED",
    "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
    "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED", "REGION_SUPPORTED", "TAGGING_SUPPORTED",
])
T0 = 1_711_922_400.0  # 2024-03-31 22:00 UTC: the export crosses a month boundary
OPTIONS = {
    "aws": {"account_id": "123456789012"},
    "gcp": {"project": "acme-fleet"},
    "azure": {"subscription_id": "00000000-0000-0000-0000-000000000001",
              "resource_group": "czarina"},
}
CLOUD = {  # provider -> (shape, location, instance id as the driver stores it)
    "aws": ("t3.large", "us-east-1a", "i-0abc1234def567890"),
    "gcp": ("e2-standard-2", "us-central1-a", "us-central1-a/czarina-acme-spot-1"),
    "azure": ("Standard_B2ms", "eastus", "czarina-acme-spot-1"),
}
QUALIFIED = {
    "aws": r"^arn:aws:ec2:us-east-1:123456789012:instance/i-[0-9a-f]+$",
    "gcp": r"^//compute\.googleapis\.com/projects/acme-fleet/zones/us-central1-a/instances/",
    "azure": r"^/subscriptions/[0-9a-f-]+/resourceGroups/czarina/providers/"
             r"Microsoft\.Compute/virtualMachines/",
    "local": r"^czarina-fleet/acme/hosts/",
}


def pool_export(provider: str, spot: bool) -> str:
    """A FOCUS CSV of one cloud pool: one 2-slot host, 3 h, one worker joining late."""
    shape, where, iid = CLOUD[provider]
    host = HostRecord("h-1", provider, HostState.READY, T0, 2, pool=provider, shape=shape,
                      region=where, spot=spot, price_per_hour=0.05 if spot else 0.0832,
                      launched_at=T0, instance_id=iid)
    workers = [WorkerRecord("backend", WorkerState.RUNNING, T0, "h-1", started_at=T0),
               WorkerRecord("docs", WorkerState.RUNNING, T0, "h-1", started_at=T0 + 4000)]
    return _export([host], workers)


def self_hosted_export() -> str:
    """Local and static hosts: free, with a priced static host so money shows too."""
    hosts = [HostRecord("local", "local", HostState.READY, T0, 2),
             HostRecord("box", "static", HostState.READY, T0, 1, address="192.0.2.7",
                        price_per_hour=0.01, launched_at=T0)]
    workers = [WorkerRecord("a", WorkerState.RUNNING, T0, "local", started_at=T0),
               WorkerRecord("b", WorkerState.RUNNING, T0, "box", started_at=T0)]
    return _export(hosts, workers)


def _export(hosts: list[HostRecord], workers: list[WorkerRecord]) -> str:
    entries: list[LedgerEntry] = []
    mark = T0
    for i in range(1, 3 * 60 + 1):  # 60 s ticks over 3 h
        tick = accrue_tick(hosts, workers, mark, T0 + i * 60)
        entries += tick.entries
        mark = tick.accrued_until
    pools = {h.pool: OPTIONS.get(h.provider, {}) for h in hosts if h.pool}
    ids = resource_ids(hosts, "acme", pools, env={})
    sources = {h.host_id: f"{h.provider} price source, fetched 2024-03-31T21:00:00Z"
               for h in hosts}
    return render_focus_csv(entries, fleet="acme", resource_ids=ids, price_sources=sources)


EXPORTS = {f"{p}-{'spot' if s else 'on-demand'}": (lambda p=p, s=s: pool_export(p, s))
           for p in CLOUD for s in (True, False)}
EXPORTS["local-static"] = self_hosted_export


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- against the published column definitions ------------------------------------------

def spec_column_ids() -> set[str]:
    ids = set()
    for md in SPEC.glob("*.md"):
        m = re.search(r"^## Column ID\s+(\w+)", md.read_text(), re.M)
        if m:
            ids.add(m.group(1))
    return ids


def allowed_values(column_file: str) -> set[str]:
    text = (SPEC / column_file).read_text().split("Allowed values:", 1)[1]
    return set(re.findall(r"^\| (\w+)\s+\|", text, re.M)) - {"Value"}


def test_export_has_every_focus_1_2_column_and_only_x_extras() -> None:
    spec = spec_column_ids()
    assert len(spec) == 57
    assert spec <= set(FOCUS_COLUMNS)
    assert all(c.startswith("x_") for c in set(FOCUS_COLUMNS) - spec)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_every_row_uses_allowed_values_and_says_it_is_an_estimate(name: str) -> None:
    rows = rows_of(EXPORTS[name]())
    assert rows
    categories = allowed_values("pricingcategory.md")
    assert categories == {"Standard", "Dynamic", "Committed", "Other"}
    provider = name.split("-")[0]
    for r in rows:
        assert r["PricingCategory"] in categories, r["PricingCategory"]
        assert r["PricingCategory"] == ("Dynamic" if name.endswith("-spot") else "Standard")
        assert r["ChargeCategory"] in allowed_values("chargecategory.md")
        assert re.match(QUALIFIED["local" if provider == "local" else provider], r["ResourceId"])
        assert r["x_CostSource"] == ESTIMATE_NOTE and "not invoice data" in ESTIMATE_NOTE
        assert r["InvoiceId"] == ""  # on no invoice: FOCUS requires null
        assert r["InvoiceIssuerName"] not in {r["ProviderName"], "AWS", "Microsoft",
                                              "Google Cloud"}
        assert r["BillingAccountId"] == "czarina-fleet:acme"


# --- the FinOps Foundation's validator -----------------------------------------------

def run_validator(csv_path: Path) -> tuple[int, str]:
    # It reads its currency list by a path relative to its site-packages directory.
    site = subprocess.run(
        [str(VALIDATOR.parent / "python"), "-c",
         "import focus_validator, os; print(os.path.dirname(os.path.dirname("
         "focus_validator.__file__)))"], capture_output=True, text=True, check=True,
    ).stdout.strip()
    done = subprocess.run(
        [str(VALIDATOR), "--data-file", str(csv_path), "--validate-version", "1.2.0.1",
         "--block-download", "--output-type", "console", "--show-violations",
         "--applicability-criteria", CRITERIA],
        cwd=site, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def summary(output: str) -> dict[str, int]:
    m = re.search(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)", output)
    assert m, output[-2000:]
    return dict(zip(("total", "pass", "fail", "skipped"), map(int, m.groups()), strict=True))


def failed_rules(output: str) -> list[str]:
    return re.findall(r"^❌ (\S+): FAIL", output, re.M)


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    require_tool(VALIDATOR.exists(), "focus-validator is not installed: run "
                 "scripts/setup-focus-validator.sh (scripts/setup.sh does)")
    folder = tmp_path_factory.mktemp("focus")
    texts = {kind: "".join(_body(EXPORTS[f"{p}-{kind}"](), first=i == 0)
                           for i, p in enumerate(CLOUD))
             for kind in VALIDATED_KINDS if kind != "local-static"}
    texts["local-static"] = EXPORTS["local-static"]()
    # The pre-fix on-demand value, as a control: the validator must catch it.
    texts["old-on-demand"] = texts["on-demand"].replace(",Standard,", ",On-Demand,")
    paths = {}
    for name, text in texts.items():
        paths[name] = folder / f"{name}.csv"
        paths[name].write_text(text)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(paths, pool.map(run_validator, paths.values()), strict=True))
    return results


def _body(text: str, first: bool) -> str:
    """A CSV without its header line unless it is the first of a concatenation."""
    return text if first else text.split("\n", 1)[1]


VALIDATED_KINDS = ("spot", "on-demand", "local-static")
# The one rule the export cannot pass, and should not: the validator checks both
# "InvoiceId MUST be null when the charge is on no invoice" (C-004, passes) and "MUST NOT
# be null when it is on one" (C-005) on every row, as it cannot tell which applies. Our
# rows are on no invoice. A conditional rule, not a mandatory one.
KNOWN_CONDITIONAL = {"InvoiceId-C-005-C"}


@pytest.mark.parametrize("name", VALIDATED_KINDS)
def test_focus_validator_passes_every_mandatory_rule(validated: dict, name: str) -> None:
    code, output = validated[name]
    counts = summary(output)
    failed = failed_rules(output)
    assert not [r for r in failed if r.endswith("-M")], output[-4000:]
    assert set(failed) <= KNOWN_CONDITIONAL, output[-4000:]
    assert code == 0 and counts["fail"] == len(failed)
    assert counts["pass"] >= 250  # the rules really ran (not all skipped)


def test_focus_validator_rejects_the_old_on_demand_category(validated: dict) -> None:
    _, output = validated["old-on-demand"]
    assert "PricingCategory-C-007-M" in failed_rules(output)
