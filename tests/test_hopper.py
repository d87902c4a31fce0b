"""The hopper: reading realistic upstream items, and the AUTO_SCALE demand policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from czarina_fleet.hopper import parse_estimate, parse_item, read_hopper
from czarina_fleet.model.hopper import HopperItem
from czarina_fleet.policies.hopper import by_urgency, extra_workers_wanted

DASHBOARD = """# Enhancement #101: Fix Dashboard Refresh Bug

**Priority:** High
**Complexity:** Small
**Tags:** bugfix, ux
**Estimate:** 2-4 hours

## Description
The dashboard stops refreshing after the laptop sleeps.

```bash
# not a title: a comment in a code block
**Priority:** Low
```

## Acceptance Criteria
- [ ] Refresh resumes after sleep
- [ ] A test covers it
"""

EXPORT = """\ufeff# Feature: Export cost report as FOCUS CSV\r
\r
- **Priority**: Medium\r
- **Complexity:** Large\r
- **Tags:** `cost`, finops; reports\r
- **Estimate:** 1–2 days\r
- **Assigned To:** backend\r
\r
Export the ledger.\r
"""

SECURITY = """# Security: rotate the deploy key

**Priority:** Critical
**Estimate:** 30 min
**Status:** Open
"""


def write(root: Path, rel: str, text: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")


@pytest.fixture
def hopper(tmp_path: Path) -> Path:
    root = tmp_path / ".czarina" / "hopper"
    write(root, "101-dashboard-refresh.md", DASHBOARD)
    write(root, "export-focus.md", EXPORT)
    write(root, "phase-2/security-key.md", SECURITY)
    write(root, "archived/099-old-bug.md", "# Bug #99: fixed long ago\n**Priority:** High\n")
    write(root, "phase-2/archived/done.md", "# Done in phase 2\n")
    write(root, "README.md", "# The hopper\nDrop items here.\n")
    write(root, "notes.txt", "# not markdown\n")
    write(root, "broken.md", b"# Caf\xe9 menu\n")
    write(root, "untitled.md", "**Priority:** Low\nno title here\n")
    return root


def test_reads_realistic_items_and_skips_archived_and_readme(hopper: Path) -> None:
    scan = read_hopper(hopper)
    assert [i.path for i in scan.items] == [
        "101-dashboard-refresh.md", "export-focus.md", "phase-2/security-key.md"]
    dash = scan.items[0]
    assert dash.title == "Enhancement #101: Fix Dashboard Refresh Bug"
    assert (dash.priority, dash.complexity) == ("High", "Small")  # code block ignored
    assert dash.tags == ("bugfix", "ux")
    assert (dash.estimate, dash.estimate_hours) == ("2-4 hours", (2.0, 4.0))
    assert dash.waiting and dash.line == 1


def test_list_style_metadata_bom_crlf_and_assignment(hopper: Path) -> None:
    export = read_hopper(hopper).items[1]
    assert export.title == "Feature: Export cost report as FOCUS CSV"
    assert (export.priority, export.complexity) == ("Medium", "Large")
    assert export.tags == ("cost", "finops", "reports")
    assert export.estimate_hours == (8.0, 16.0)
    assert export.assigned_to == "backend" and not export.waiting


def test_unreadable_and_untitled_files_are_reported_not_raised(hopper: Path) -> None:
    problems = read_hopper(hopper).problems
    assert len(problems) == 2
    assert "broken.md" in problems[0] and "not UTF-8 at byte 5" in problems[0]
    assert "untitled.md" in problems[1] and '"# <title>"' in problems[1]


def test_missing_hopper_is_empty(tmp_path: Path) -> None:
    scan = read_hopper(tmp_path / "nope")
    assert scan.items == [] and scan.problems == []


def test_status_words_decide_waiting() -> None:
    def item(status: str | None) -> HopperItem:
        return HopperItem(path="x.md", title="x", status=status)

    assert item(None).waiting and item("Open").waiting and item("Todo").waiting
    assert not item("Done").waiting and not item("In Progress").waiting
    assert parse_item("no title", "x.md") is None


@pytest.mark.parametrize("text,hours", [
    ("2-4 hours", (2, 4)), ("3h", (3, 3)), ("30 min", (0.5, 0.5)), ("1 day", (8, 8)),
    ("1–2 weeks", (40, 80)), ("about 5", (5, 5)), ("4 to 2 hrs", (2, 4)),
    ("unknown", None), ("2 fortnights", None),
])
def test_estimates(text: str, hours: tuple[float, float] | None) -> None:
    assert parse_estimate(text) == hours


def test_urgency_order(hopper: Path) -> None:
    order = [i.path for i in by_urgency(read_hopper(hopper).items)]
    assert order == ["phase-2/security-key.md", "101-dashboard-refresh.md"]


# --- demand ---------------------------------------------------------------------------

def items(n: int) -> list[HopperItem]:
    return [HopperItem(path=f"{k}.md", title=f"item {k}") for k in range(n)]


def test_idle_workers_absorb_items_first() -> None:
    assert extra_workers_wanted(items(5), idle_workers=2, running=3, min_workers=0,
                                max_workers=12) == 3
    assert extra_workers_wanted(items(2), idle_workers=2, running=3, min_workers=0,
                                max_workers=12) == 0


def test_demand_is_capped_by_max_and_lifted_to_min() -> None:
    assert extra_workers_wanted(items(20), 0, 10, 3, 12) == 2
    assert extra_workers_wanted([], 0, 1, 3, 12) == 2
    assert extra_workers_wanted(items(9), 0, 15, 3, 12) == 0  # already over max
    taken = [HopperItem(path="t.md", title="t", assigned_to="qa")] * 4
    assert extra_workers_wanted(taken, 0, 3, 3, 12) == 0


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        extra_workers_wanted(items(1), -1, 0, 0, 1)


@given(waiting=st.integers(0, 200), idle=st.integers(0, 50), running=st.integers(0, 60),
       lo=st.integers(0, 30), span=st.integers(0, 30))
def test_demand_bounds(waiting: int, idle: int, running: int, lo: int, span: int) -> None:
    hi = lo + span
    extra = extra_workers_wanted(items(waiting), idle, running, lo, hi)
    assert extra >= 0
    assert running + extra <= max(hi, running)           # never beyond MAX_WORKERS
    assert extra <= max(waiting - idle, lo - running, 0)  # never more than asked for
    if running < hi:                                      # room left: demand is met
        assert running + extra >= min(hi, lo)
        assert extra >= min(hi - running, max(0, waiting - idle))
