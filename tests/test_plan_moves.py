"""Rebalancing and consolidation in the pure planner, with the disruption budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from czarina_fleet.controller.core.desired import Desired, desired_from
from czarina_fleet.controller.core.observed import Observed
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.model.actions import MigrateWorker, NoteEvent, StartWorker
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    RebalanceSettings,
    ScalingLimits,
    StaticHost,
    WorkerSpec,
)
from czarina_fleet.model.fleet import (
    CommitInfo,
    Event,
    HostProbe,
    HostRecord,
    LoadSample,
    Overrides,
    SessionProbe,
    WorkerRecord,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.policies.consolidation import move_cost_usd, pays, saving_usd
from czarina_fleet.policies.load import overloaded
from czarina_fleet.providers.base import (
    ConnectInfo,
    Instance,
    InstanceState,
    InterruptionNotice,
    PriceQuote,
)

NOW = 100_000.0
H, W = HostState, WorkerState
HOT, COOL = 4.0, 0.2  # load_1m on 2 CPUs: 2.0 and 0.1 per CPU


def cfg(workers: dict[str, str], *, min_hosts: int = 0, statics: tuple[str, ...] = (),
        **moves: object) -> FleetConfig:
    pool = PoolSpec(name="p", provider="aws", instance_types=["t3.large"],
                    regions=["us-east-1"], max_hosts=8, slots_per_host=2, min_hosts=min_hosts)
    return FleetConfig(
        source=Path("config.json"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id=w, branch=f"feat/{w}", location=parse_location(loc))
                 for w, loc in workers.items()],
        fleet=FleetSettings(
            pools=[pool], hosts=[StaticHost(name=s, host=f"{s}.example") for s in statics],
            scaling=ScalingLimits(idle_timeout_s=600),
            rebalance=RebalanceSettings(**moves)),  # type: ignore[arg-type]
    )


def desired(workers: dict[str, str], **kw: object) -> Desired:
    return desired_from(cfg(workers, **kw), Overrides())  # type: ignore[arg-type]


def host(hid: str, price: float = 1.0, slots: int = 2) -> HostRecord:
    return HostRecord(hid, "fake", H.READY, NOW - 3000, slots, pool="p", instance_id="i-" + hid,
                      address="10.0.0.1", shape="t3.large", region="us-east-1", spot=True,
                      price_per_hour=price)


def static(hid: str) -> HostRecord:
    return HostRecord(hid, "static", H.READY, NOW - 3000, 2, address=f"{hid}.example")


def worker(wid: str, host_id: str | None, loc: str = "auto", state: WorkerState = W.RUNNING,
           started: float = NOW - 2000) -> WorkerRecord:
    return WorkerRecord(wid, state, NOW - 2000, host_id, loc, started_at=started)


def session(wid: str, commit_age: float = 900.0, dirty: int = 0) -> SessionProbe:
    return SessionProbe(wid, True, pane_activity=NOW - 5,
                        last_commit=CommitInfo("ab" * 20, NOW - commit_age, "work"),
                        dirty_files=dirty, unpushed_commits=0)


def samples(hid: str, *loads: float) -> list[LoadSample]:
    """Samples 15 s apart, the last one now, each `load_1m` on 2 CPUs."""
    n = len(loads)
    return [LoadSample(hid, NOW - 15 * (n - 1 - i), load, 2, 4096) for i, load in enumerate(loads)]


def observed(hosts: list[HostRecord], workers: list[WorkerRecord],
             loads: dict[str, list[float]], *, sessions: dict[str, SessionProbe] | None = None,
             **kw: object) -> Observed:
    sessions = sessions or {}
    probes = {}
    for h in hosts:
        on = {w.worker_id: sessions.get(w.worker_id, session(w.worker_id))
              for w in workers if w.host_id == h.host_id and w.state == W.RUNNING}
        load = loads.get(h.host_id, [COOL])[-1]
        probes[h.host_id] = HostProbe(h.host_id, True, NOW, load_1m=load, cpus=2,
                                      mem_free_mb=4096, sessions=on)
    inv = {"p": [Instance("i-" + h.host_id, h.host_id, "p", InstanceState.RUNNING, "t3.large",
                          "us-east-1", True, NOW - 3000, ConnectInfo("10.0.0.1"))
                 for h in hosts if h.pool == "p"]}
    return Observed.of(hosts, workers, inventories=inv, probes=probes,
                       quotes={"p": PriceQuote("t3.large", "us-east-1", True, 1.0, "test")},
                       samples={h.host_id: samples(h.host_id, *loads.get(h.host_id, [COOL] * 3))
                                for h in hosts}, **kw)


def moves(actions: list[object]) -> list[MigrateWorker]:
    return [a for a in actions if isinstance(a, MigrateWorker)]


def notes(actions: list[object]) -> list[NoteEvent]:
    return [a for a in actions if isinstance(a, NoteEvent)]


def moved(wid: str, ago: float) -> Event:
    return Event(NOW - ago, "worker", wid, "running", "checkpointing", "rebalance: earlier")


# --- overload with hysteresis ----------------------------------------------------------

def _over(*per_cpu: float) -> bool:
    return overloaded([LoadSample("h", i, x * 2, 2) for i, x in enumerate(per_cpu)],
                      RebalanceSettings())


def test_overload_needs_k_consecutive_probes_over_the_high_threshold() -> None:
    assert not _over(2.0, 2.0)
    assert _over(2.0, 2.0, 2.0)
    assert not _over(2.0, 2.0, 0.5, 2.0, 2.0)  # a dip under high restarts the count


def test_overload_clears_only_under_the_low_threshold() -> None:
    assert _over(2.0, 2.0, 2.0, 1.2, 1.2)       # between low and high: still overloaded
    assert not _over(2.0, 2.0, 2.0, 1.2, 0.9)   # under low: cleared
    assert not _over(1.2, 1.2, 1.2, 1.2)        # between the two never becomes overloaded


def test_low_free_memory_counts_as_overload() -> None:
    short = [LoadSample("h", i, 0.1, 2, 100) for i in range(3)]
    assert overloaded(short, RebalanceSettings())
    assert not overloaded(short, RebalanceSettings(mem_free_min_mb=0))


# --- rebalancing -------------------------------------------------------------------------

def test_host_overloaded_for_k_probes_gives_one_worker_to_a_host_with_room() -> None:
    d = desired({"a": "auto", "b": "auto", "c": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-1"), worker("c", "p-2")]
    acts = plan(d, observed([host("p-1"), host("p-2")], ws,
                            {"p-1": [HOT, HOT, HOT], "p-2": [COOL] * 3}), NOW)
    [m] = moves(acts)
    assert (m.from_host, m.to_host) == ("p-1", "p-2")
    assert m.reason.startswith("rebalance: host p-1 overloaded")
    assert not [a for a in acts if isinstance(a, StartWorker)]


def test_two_overloaded_probes_are_not_enough() -> None:
    d = desired({"a": "auto", "b": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-1")]
    acts = plan(d, observed([host("p-1"), host("p-2")], ws,
                            {"p-1": [COOL, HOT, HOT], "p-2": [COOL] * 3}), NOW)
    assert moves(acts) == []


def test_no_move_to_a_host_that_would_be_loaded_past_the_low_threshold() -> None:
    d = desired({"a": "auto", "b": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-1")]
    # p-2 at 0.8/CPU: with one more worker's load (at most one CPU) it passes 1.0
    acts = plan(d, observed([host("p-1"), host("p-2")], ws,
                            {"p-1": [HOT] * 3, "p-2": [1.6] * 3}), NOW)
    assert moves(acts) == []


def test_pinned_workers_never_move() -> None:
    d = desired({"a": "remote:s1", "b": "remote:s1"}, statics=("s1", "s2"))
    ws = [worker("a", "s1", "remote:s1"), worker("b", "s1", "remote:s1")]
    acts = plan(d, observed([static("s1"), static("s2")], ws,
                            {"s1": [HOT] * 5, "s2": [COOL] * 5}), NOW)
    assert moves(acts) == []


def test_pool_worker_moves_only_within_its_pool() -> None:
    d = desired({"a": "pool:p", "b": "pool:p"}, statics=("s1",))
    ws = [worker("a", "p-1", "pool:p"), worker("b", "p-1", "pool:p")]
    hosts = [host("p-1"), static("s1")]
    acts = plan(d, observed(hosts, ws, {"p-1": [HOT] * 3, "s1": [COOL] * 3}), NOW)
    assert moves(acts) == []  # s1 has room but is not in pool p
    acts = plan(d, observed([*hosts, host("p-2")], ws,
                            {"p-1": [HOT] * 3, "s1": [COOL] * 3, "p-2": [COOL] * 3}), NOW)
    assert [m.to_host for m in moves(acts)] == ["p-2"]


def test_a_cheaper_offering_is_preferred_as_target() -> None:
    d = desired({"a": "auto", "b": "auto", "c": "auto", "e": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-1"), worker("c", "p-2"), worker("e", "p-3")]
    hosts = [host("p-1"), host("p-2", price=0.9), host("p-3", price=0.2)]
    acts = plan(d, observed(hosts, ws, {"p-1": [HOT] * 3, "p-2": [COOL] * 3,
                                        "p-3": [0.6] * 3}), NOW)
    assert [m.to_host for m in moves(acts)] == ["p-3"]  # cheaper, though busier than p-2


def test_after_a_move_the_host_must_be_seen_overloaded_again() -> None:
    d = desired({"a": "auto", "b": "auto", "c": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-1"),
          worker("c", "p-2", started=NOW - 20)]  # c moved 60 s ago and runs again since 20 s
    acts = plan(d, observed([host("p-1"), host("p-2")], ws,
                            {"p-1": [HOT] * 6, "p-2": [COOL] * 6},
                            move_events=[moved("c", 60)]), NOW)
    assert moves(acts) == []  # only one probe of p-1 since c's move landed


# --- the disruption budget ---------------------------------------------------------------

def _hot_fleet(**kw: object) -> tuple[Desired, list[HostRecord], list[WorkerRecord]]:
    d = desired({"a": "auto", "b": "auto", "c": "auto"}, **kw)
    return d, [host("p-1"), host("p-2"), host("p-3")], [worker("a", "p-1"), worker("b", "p-1")]


def test_budget_caps_moves_per_worker_per_hour_and_notes_the_refusal_once() -> None:
    d, hosts, ws = _hot_fleet(max_moves_per_worker_per_hour=1)
    loads = {"p-1": [HOT] * 3, "p-2": [COOL] * 3}
    history = [moved("a", 3000), moved("b", 2900)]  # both moved once this hour
    acts = plan(d, observed(hosts, ws, loads, move_events=history), NOW)
    assert moves(acts) == []
    [note] = notes(acts)
    assert note.reason.startswith("move refused: moved 1 time(s) in the last hour")
    written = Event(NOW - 15, "worker", note.entity_id, None, None, note.reason)
    again = plan(d, observed(hosts, ws, loads, move_events=[*history, written]), NOW)
    assert moves(again) == [] and notes(again) == []  # not one event per step


def test_budget_caps_moves_in_flight_fleet_wide() -> None:
    d, hosts, ws = _hot_fleet()
    # c was checkpointed 30 s ago and waits to start on p-3: its move is under way
    ws = [*ws, WorkerRecord("c", W.PLACING, NOW - 20, "p-3", "auto", started_at=NOW - 2000)]
    acts = plan(d, observed(hosts, ws, {"p-1": [HOT] * 5, "p-2": [COOL] * 5},
                            move_events=[moved("c", 50)]), NOW)
    assert moves(acts) == []
    assert "already under way" in notes(acts)[0].reason


def test_a_worker_that_just_committed_is_not_moved_but_another_one_is() -> None:
    d, hosts, ws = _hot_fleet()
    fresh = {"a": session("a", commit_age=5), "b": session("b", commit_age=5)}
    acts = plan(d, observed(hosts, ws, {"p-1": [HOT] * 3, "p-2": [COOL] * 3},
                            sessions=fresh), NOW)
    assert moves(acts) == []
    assert "committed less than 60s ago" in notes(acts)[0].reason
    acts = plan(d, observed(hosts, ws, {"p-1": [HOT] * 3, "p-2": [COOL] * 3},
                            sessions={"a": session("a", commit_age=5)}), NOW)
    assert [m.worker_id for m in moves(acts)] == ["b"]  # the one not in the middle of work
    assert [m.worker_id for m in moves(plan(d, observed(
        hosts, ws, {"p-1": [HOT] * 3, "p-2": [COOL] * 3}), NOW))] == ["a"]


def test_no_move_from_or_to_a_host_with_a_pending_notice() -> None:
    d, hosts, ws = _hot_fleet()
    loads = {"p-1": [HOT] * 3, "p-2": [COOL] * 3}
    notice = InterruptionNotice("i-p-2", "p-2", "rebalance recommendation", kind="rebalance")
    acts = plan(d, observed(hosts, ws, loads, notices=[notice]), NOW)
    assert [m.to_host for m in moves(acts)] == ["p-3"]  # p-2 has room, but a notice
    notice = InterruptionNotice("i-p-1", "p-1", "rebalance recommendation", kind="rebalance")
    acts = plan(d, observed(hosts, ws, loads, notices=[notice]), NOW)
    assert {m.worker_id for m in moves(acts)} == {"a", "b"}  # forced: the notice drains p-1
    assert [m for m in moves(acts) if m.reason.startswith("rebalance:")] == []


def test_a_failed_checkpoint_of_a_voluntary_move_is_tried_again() -> None:
    d = desired({"a": "auto"})
    ws = [WorkerRecord("a", W.CHECKPOINTING, NOW - 30, "p-1", "auto", started_at=NOW - 2000)]
    acts = plan(d, observed([host("p-1"), host("p-2")], ws, {}), NOW)
    [m] = moves(acts)
    assert (m.worker_id, m.from_host, m.to_host) == ("a", "p-1", None)
    assert "checkpoint again" in m.reason


def test_a_moved_worker_starts_on_the_host_its_slot_was_held_on() -> None:
    d = desired({"a": "auto", "b": "auto"})
    ws = [WorkerRecord("a", W.PLACING, NOW - 5, "p-2", "auto", started_at=NOW - 2000),
          worker("b", "p-1")]
    acts = plan(d, observed([host("p-1"), host("p-2")], ws, {}), NOW)
    assert [(s.worker_id, s.host_id) for s in acts if isinstance(s, StartWorker)] == [("a", "p-2")]


# --- consolidation -----------------------------------------------------------------------

def test_saving_over_the_next_hour_against_the_cost_of_the_moves() -> None:
    c = RebalanceSettings(worker_minute_usd=0.10, move_downtime_s=90, horizon_s=3600)
    assert saving_usd(1.0, 600, c) == 1.0 * 3000 / 3600  # it still idles 10 min
    assert move_cost_usd(2, c) == pytest.approx(2 * 0.10 * 1.5)
    assert pays(0.40, 1, 600, c) and not pays(0.40, 3, 600, c)


def test_partly_used_hosts_are_consolidated_when_it_pays() -> None:
    d = desired({"a": "auto", "b": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-2")]
    acts = plan(d, observed([host("p-1", price=1.0), host("p-2", price=1.0)], ws, {}), NOW)
    [m] = moves(acts)
    assert (m.worker_id, m.from_host, m.to_host) == ("a", "p-1", "p-2")
    assert m.reason.startswith("consolidate: empty host p-1")


def test_no_consolidation_when_the_moves_cost_more_than_the_saving() -> None:
    d = desired({"a": "auto", "b": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-2")]
    cheap = [host("p-1", price=0.03), host("p-2", price=0.03)]
    assert moves(plan(d, observed(cheap, ws, {}), NOW)) == []
    free_minutes = desired({"a": "auto", "b": "auto"}, worker_minute_usd=0.0)
    assert len(moves(plan(free_minutes, observed(cheap, ws, {}), NOW))) == 1


def test_the_dearest_host_is_emptied_onto_the_cheapest_offering() -> None:
    d = desired({"a": "auto", "b": "auto", "c": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-2"), worker("c", "p-3")]
    hosts = [host("p-1", price=0.5), host("p-2", price=2.0), host("p-3", price=0.3)]
    [m] = moves(plan(d, observed(hosts, ws, {}), NOW))
    assert (m.from_host, m.to_host) == ("p-2", "p-3")


def test_consolidation_onto_a_free_static_host() -> None:
    d = desired({"a": "auto"}, statics=("s1",))
    acts = plan(d, observed([host("p-1"), static("s1")], [worker("a", "p-1")], {}), NOW)
    assert [(m.from_host, m.to_host) for m in moves(acts)] == [("p-1", "s1")]


def test_no_consolidation_onto_a_host_with_a_pending_notice_or_an_idle_one() -> None:
    d = desired({"a": "auto", "b": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-2")]
    notice = InterruptionNotice("i-p-2", "p-2", "rebalance recommendation", kind="rebalance")
    acts = plan(d, observed([host("p-1"), host("p-2")], ws, {}, notices=[notice]), NOW)
    assert [m.from_host for m in moves(acts)] == ["p-2"]  # the notice's own (forced) move
    assert [m for m in moves(acts) if m.to_host is not None] == []
    # p-3 has no worker: it is idling out, consolidation does not bring it back
    acts = plan(desired({"a": "auto"}), observed([host("p-1"), host("p-3")], ws[:1], {}), NOW)
    assert moves(acts) == []


def test_no_consolidation_of_pinned_workers_below_min_hosts_or_while_one_waits() -> None:
    pinned = desired({"a": "aws-spot:t3.large:us-east-1", "b": "auto"})
    ws = [worker("a", "p-1", "aws-spot:t3.large:us-east-1"), worker("b", "p-2")]
    hosts = [host("p-1", price=1.0), host("p-2", price=0.5)]
    # p-1 cannot be emptied (a is pinned to its offering); b's host can, onto p-1
    assert [(m.worker_id, m.to_host) for m in moves(plan(pinned, observed(hosts, ws, {}),
                                                         NOW))] == [("b", "p-1")]
    floor = desired({"a": "auto", "b": "auto"}, min_hosts=2)
    ws = [worker("a", "p-1"), worker("b", "p-2")]
    assert moves(plan(floor, observed(hosts, ws, {}), NOW)) == []
    waiting = desired({"a": "auto", "b": "auto", "c": "auto"})
    ws3 = [*ws, WorkerRecord("c", W.PENDING, NOW - 5, None, "auto")]
    assert moves(plan(waiting, observed(hosts, ws3, {}), NOW)) == []


def test_consolidation_moves_within_the_in_flight_cap_then_notes_the_rest() -> None:
    d = desired({"a": "auto", "b": "auto", "c": "auto", "e": "auto"})
    ws = [worker("a", "p-1"), worker("b", "p-1"), worker("c", "p-2"), worker("e", "p-2")]
    hosts = [host("p-1", price=2.0), host("p-2", price=0.5, slots=4), host("p-3", price=0.1)]
    ws.append(worker("f", "p-3"))
    d = desired({"a": "auto", "b": "auto", "c": "auto", "e": "auto", "f": "auto"})
    acts = plan(d, observed(hosts, ws, {}), NOW)
    # p-3 ($0.1/h, one worker) is cheapest to empty but saves less than a move costs;
    # p-1 ($2/h) is next: a goes to the cheapest slot (p-3, $0.05/slot), b must wait
    assert [(m.worker_id, m.from_host, m.to_host) for m in moves(acts)] == [("a", "p-1", "p-3")]
    [note] = notes(acts)
    assert (note.entity_id, note.reason) == ("b", "move refused: 1 move(s) already under way "
                                             "(fleet.rebalance.max_moves_in_flight); wanted: "
                                             "consolidate off host p-1")


def test_thresholds_in_the_wrong_order_are_a_clear_config_error(tmp_path: Path) -> None:
    from czarina_fleet.config import load_config
    from czarina_fleet.errors import UserError

    (tmp_path / ".czarina").mkdir()
    path = tmp_path / ".czarina" / "config.json"
    path.write_text('{"workers": [{"id": "a", "branch": "b"}], '
                    '"fleet": {"rebalance": {"load_high": 1.0, "load_low": 2.0}}}')
    with pytest.raises(UserError) as e:
        load_config(path, ssh_config=tmp_path / "none")
    assert "fleet.rebalance" in str(e.value) and "must not exceed load_high" in str(e.value)


def test_a_refusal_is_noted_again_only_when_it_changes_or_the_worker_moved_since() -> None:
    from czarina_fleet.policies.disruption import MoveBudget

    note = "move refused: x; wanted: rebalance off host p-1"
    written = Event(NOW - 100, "worker", "a", None, None, note)
    budget = MoveBudget.build(RebalanceSettings(), NOW, [written], [])
    assert not budget.should_note("a", note)
    assert budget.should_note("a", note.replace("x", "y"))
    assert budget.should_note("b", note)
    moved_since = MoveBudget.build(RebalanceSettings(), NOW, [written, moved("a", 50)], [])
    assert moved_since.should_note("a", note)


def test_emptying_counts_the_load_each_moved_worker_adds_to_its_target() -> None:
    # Found by the simulator (examples/traces/consolidation.json): p-1 keeps one worker
    # because p-2 would reach load_low with it; p-2's three workers fit p-1's free slots,
    # but only two of them fit its CPUs once the first two are counted there. Emptying
    # p-2 anyway moved one worker back to p-1, an hour later one back again (ping-pong).
    d = desired({w: "auto" for w in "abcd"})
    ws = [worker("a", "p-1"), worker("b", "p-2"), worker("c", "p-2"), worker("d", "p-2")]
    hosts = [host("p-1", price=1.0, slots=4), host("p-2", price=1.0, slots=4)]
    loads = {"p-1": [0.5] * 3, "p-2": [1.5] * 3}  # half a core per worker, on 2 CPUs
    assert moves(plan(d, observed(hosts, ws, loads), NOW)) == []


def test_hosts_view_says_why_a_busy_host_is_busy_and_what_happens() -> None:
    from czarina_fleet.model.fleet import HostProbe
    from czarina_fleet.policies.load import load_note

    def p(load: float, mem: int = 4096) -> HostProbe:
        return HostProbe("h", True, NOW, load_1m=load, cpus=2, mem_free_mb=mem)

    assert load_note(p(2.0), RebalanceSettings()) is None  # 1.0 per CPU: not busy
    note = load_note(p(3.4), RebalanceSettings())
    assert note is not None and "load 1.70 per CPU" in note and "load_high 1.5" in note
    assert "after 3 such probes" in note
    short = load_note(p(0.1, mem=100), RebalanceSettings())
    assert short is not None and "mem_free_min_mb 256" in short
    off = load_note(p(3.4), RebalanceSettings(enabled=False))
    assert off is not None and "rebalancing is off" in off
    assert load_note(HostProbe("h", False, NOW), RebalanceSettings()) is None
