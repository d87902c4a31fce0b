"""Cost accrual: lifetimes, the price recorded at launch, slot shares, exactly-once."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from czarina_fleet.cost.ledger import (
    accrue,
    accrue_tick,
    entry_end,
    entry_share,
    spend_rate,
)
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.policies.budget import fits, hourly_spend
from czarina_fleet.providers.base import PriceQuote

T0 = 1_700_000_000.0
HOUR = 3600.0


def host(
    host_id: str = "spot-1",
    *,
    price: float = 0.36,
    launched_at: float | None = T0,
    state: HostState = HostState.READY,
    state_since: float = T0,
    slots: int = 2,
    provider: str = "aws",
) -> HostRecord:
    return HostRecord(
        host_id=host_id, provider=provider, state=state, state_since=state_since, slots=slots,
        pool="spot" if provider not in ("local", "static") else None, shape="t3.large",
        region="us-east-1", spot=True, price_per_hour=price, launched_at=launched_at,
        instance_id=f"i-{host_id}",
    )


def worker(
    worker_id: str, host_id: str | None, *, started_at: float | None = T0,
    state: WorkerState = WorkerState.RUNNING,
) -> WorkerRecord:
    return WorkerRecord(worker_id=worker_id, state=state, state_since=T0, host_id=host_id,
                        started_at=started_at)


def total(entries: list) -> float:
    return sum(e.usd for e in entries)


def test_full_hour_of_a_running_host_costs_its_rate() -> None:
    entries = accrue([host(price=0.36)], [], T0, T0 + HOUR)
    assert total(entries) == pytest.approx(0.36)
    assert [e.worker_id for e in entries] == [None]  # nobody on it: all idle capacity


def test_lifetime_starting_inside_the_interval_is_billed_from_launch() -> None:
    h = host(price=1.0, launched_at=T0 + 1800)
    assert total(accrue([h], [], T0, T0 + HOUR)) == pytest.approx(0.5)
    assert accrue([h], [], T0, T0 + 1800) == []


def test_lifetime_ending_inside_the_interval_stops_at_termination() -> None:
    h = host(price=2.0, launched_at=T0 - HOUR, state=HostState.TERMINATED,
             state_since=T0 + 900)
    entries = accrue([h], [], T0, T0 + HOUR)
    assert total(entries) == pytest.approx(0.5)
    assert entry_end(entries[0]) == T0 + 900
    assert accrue([h], [], T0 + 900, T0 + HOUR) == []


def test_interrupted_spot_host_stops_billing_and_terminating_host_still_bills() -> None:
    gone = host("a", price=1.0, state=HostState.INTERRUPTED, state_since=T0 + 600)
    closing = host("b", price=1.0, state=HostState.TERMINATING, state_since=T0 + 600)
    entries = accrue([gone, closing], [], T0, T0 + HOUR)
    by_host = defaultdict(float)
    for e in entries:
        by_host[e.host_id] += e.usd
    assert by_host["a"] == pytest.approx(1 / 6)
    assert by_host["b"] == pytest.approx(1.0)


def test_host_never_launched_costs_nothing() -> None:
    h = host(launched_at=None, state=HostState.LAUNCH_FAILED)
    assert accrue([h], [], T0, T0 + HOUR) == []


def test_local_and_static_hosts_cost_nothing_unless_a_price_is_configured() -> None:
    local = host("local", price=0.0, launched_at=None, provider="local")
    static_free = host("gpu-box", price=0.0, launched_at=None, provider="static")
    static_paid = host("rented", price=0.5, launched_at=None, provider="static")
    entries = accrue([local, static_free, static_paid], [worker("ml", "rented")],
                     T0, T0 + HOUR)
    assert {e.host_id for e in entries} == {"rented"}
    assert total(entries) == pytest.approx(0.5)


def test_price_recorded_at_launch_is_the_only_price_the_ledger_reads() -> None:
    launched = PriceQuote("t3.large", "us-east-1", True, 0.03, "DescribeSpotPriceHistory")
    h = host(price=launched.usd_per_hour, launched_at=T0)
    before = accrue([h], [], T0, T0 + HOUR)
    # The spot market triples after launch: the next quote says so, the host's bill does
    # not (the ledger has no price input but the host record).
    later = PriceQuote("t3.large", "us-east-1", True, 0.09, "DescribeSpotPriceHistory")
    assert later.usd_per_hour != h.price_per_hour
    assert accrue([h], [], T0, T0 + HOUR) == before
    assert total(accrue([h], [], T0 + HOUR, T0 + 2 * HOUR)) == pytest.approx(0.03)


def test_slot_share_attribution_sums_to_host_total() -> None:
    h = host(price=0.9, slots=3)
    ws = [worker("api", "spot-1"), worker("ui", "spot-1", started_at=T0 + 1200),
          worker("elsewhere", "other"), worker("gone", "spot-1", state=WorkerState.STOPPED)]
    entries = accrue([h], ws, T0, T0 + HOUR)
    per = {e.worker_id: e.usd for e in entries}
    assert set(per) == {"api", "ui", None}
    assert per["api"] == pytest.approx(0.3)
    assert per["ui"] == pytest.approx(0.3 * 2 / 3)
    assert total(entries) == pytest.approx(0.9)
    assert all(0 <= entry_share(e) <= 1 for e in entries)
    assert entry_share(entries[0]) == pytest.approx(1 / 3)
    assert entry_share(entries[1]) == pytest.approx(1 / 3)  # ui: 1/3 over its 40 min
    assert (entries[1].ts, entries[1].seconds) == (T0 + 1200, 2400)


def test_full_host_has_no_idle_entry_and_overcommit_splits_evenly() -> None:
    full = accrue([host(slots=2, price=1.0)],
                  [worker("a", "spot-1"), worker("b", "spot-1")], T0, T0 + HOUR)
    assert [e.worker_id for e in full] == ["a", "b"]
    over = accrue([host(slots=2, price=1.0)],
                  [worker(w, "spot-1") for w in ("a", "b", "c")], T0, T0 + HOUR)
    assert [e.usd for e in over] == pytest.approx([1 / 3] * 3)


def test_tick_watermark_starts_at_earliest_launch_and_never_goes_back() -> None:
    h = host(price=1.0, launched_at=T0 - HOUR)
    first = accrue_tick([h], [], None, T0)
    assert first.accrued_until == T0
    assert total(first.entries) == pytest.approx(1.0)
    back = accrue_tick([h], [], T0, T0 - 60)
    assert back.entries == [] and back.accrued_until == T0
    assert accrue_tick([], [], None, T0).accrued_until == T0


def test_interval_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        accrue([host()], [], T0 + 1, T0)


def test_spend_rate_counts_only_billed_hosts_as_the_budget_does() -> None:
    hosts = [host("a", price=0.5), host("b", price=0.25, state=HostState.TERMINATING),
             host("c", price=9.0, state=HostState.TERMINATED)]
    assert spend_rate(hosts) == pytest.approx(0.75)
    assert spend_rate(hosts) == pytest.approx(hourly_spend(hosts, with_instance=set()))
    assert fits(spend_rate(hosts), 0.25, 1.0)
    assert not fits(spend_rate(hosts), 0.26, 1.0)
    assert fits(spend_rate(hosts), 100.0, None)


# --- exactly once, whatever the tick boundaries -------------------------------------

host_strategy = st.builds(
    lambda i, price, launch, life, ended, slots: host(
        f"h{i}", price=price, launched_at=T0 + launch, slots=slots,
        state=HostState.TERMINATED if ended else HostState.READY,
        state_since=T0 + launch + life,
    ),
    st.integers(0, 5),
    st.floats(0.001, 40.0),
    st.floats(-5 * HOUR, 20 * HOUR),
    st.floats(0, 10 * HOUR),
    st.booleans(),
    st.integers(1, 4),
)


@settings(max_examples=150, deadline=None)
@given(
    hosts=st.lists(host_strategy, min_size=1, max_size=4, unique_by=lambda h: h.host_id),
    starts=st.lists(st.floats(-5 * HOUR, 24 * HOUR), max_size=8),
    cuts=st.lists(st.floats(0, 24 * HOUR), max_size=30),
)
def test_accrual_is_exactly_once_across_any_tick_split(
    hosts: list[HostRecord], starts: list[float], cuts: list[float]
) -> None:
    ws = [worker(f"w{i}", hosts[i % len(hosts)].host_id, started_at=T0 + s)
          for i, s in enumerate(starts)]
    end = T0 + 24 * HOUR
    whole = accrue(hosts, ws, T0, end)
    mark: float | None = T0
    pieces = []
    for now in sorted(T0 + c for c in cuts) + [end]:
        result = accrue_tick(hosts, ws, mark, now)
        assert result.accrued_until >= (mark or -math.inf)
        mark = result.accrued_until
        pieces.extend(result.entries)
    assert mark == end

    def by_key(entries: list) -> dict:
        out: dict = defaultdict(float)
        for e in entries:
            out[(e.host_id, e.worker_id)] += e.usd
        return out

    split, once = by_key(pieces), by_key(whole)
    # Timestamps near T0 are floats with a resolution of ~2.4e-7 s; up to 30 cuts move
    # a boundary by some ulps each: at $40/h that is under 1e-7 USD, never a real cent.
    for key in set(split) | set(once):
        assert split.get(key, 0.0) == pytest.approx(once.get(key, 0.0), rel=1e-9, abs=1e-7)
    # And the whole equals each host's rate x billed hours in [T0, end).
    for h in hosts:
        start, stop = max(T0, h.launched_at or T0), end
        if h.state == HostState.TERMINATED:
            stop = min(end, h.state_since)
        expect = h.price_per_hour * max(0.0, stop - start) / HOUR
        got = sum(v for (hid, _), v in once.items() if hid == h.host_id)
        assert got == pytest.approx(expect, rel=1e-9, abs=1e-9)
