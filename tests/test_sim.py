"""The simulator: the real reconciler (planner, executor, SQLite store) replaying traces
on the fake cloud and a fake clock. Outcomes asserted here come from running the
controller; the trace only sets the scene."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.fleet import Overrides
from czarina_fleet.model.states import WorkerState
from czarina_fleet.sim.report import Recorder
from czarina_fleet.sim.run import run_trace
from czarina_fleet.sim.trace import load_trace, parse_duration

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "traces"


def pool(name: str, max_hosts: int = 4, slots: int = 2, spot: bool = True) -> dict[str, Any]:
    return {"name": name, "provider": "fake", "instance_types": ["t3.large"],
            "regions": ["r1"], "spot": spot, "max_hosts": max_hosts, "slots_per_host": slots}


def trace(tmp: Path, *, workers: int = 3, scaling: dict[str, Any] | None = None,
          pools: list[dict[str, Any]] | None = None, location: str = "pool:a",
          **top: Any) -> Path:
    data = {
        "name": "t", "duration": "1h", "seed": 1,
        "config": {
            "fleet": {"name": "t", "pools": pools or [pool("a")],
                      "scaling": {"idle_timeout_s": 300, **(scaling or {})}},
            "workers": [{"id": f"w{i}", "branch": f"b{i}", "location": location}
                        for i in range(workers)],
        },
        **top,
    }
    path = tmp / "trace.json"
    path.write_text(json.dumps(data))
    return path


def run(path: Path, **kw: Any) -> dict[str, Any]:
    return run_trace(load_trace(path), **kw)


def held(report: dict[str, Any]) -> dict[str, bool]:
    return {k: v["held"] for k, v in report["invariants"].items()}


ALL_HELD = {"max_workers": True, "pool_max_hosts": True, "budget": True,
            "single_session": True}


# --- the example traces ----------------------------------------------------------------

def test_example_scale_up_down() -> None:
    r = run(EXAMPLES / "scale-up-down.json")
    assert held(r) == ALL_HELD
    start, up, down = r["convergence"]
    assert start["status"] == up["status"] == down["status"] == "converged"
    # max 2 -> 6 at 30m: six run within 12 ticks (launch latency 90s = 6 ticks, +boot)
    assert up["event"] == "scale max=6" and up["ticks"] <= 12
    assert r["workers"]["peak_running"] == 6
    assert r["hosts"]["peak"] == 3  # 6 workers, 2 slots a host: no extra host
    (it,) = r["interruptions"]
    assert it["workers"] and "db" in it["workers"] and it["all_running_again"]
    assert it["recovery_s"] is not None and it["recovery_s"] <= 300
    # back to 2 at 8h: the spare hosts were shut down after the 10-minute idle timeout
    assert r["workers"]["running_at_end"] == 2 and r["hosts"]["alive_at_end"] == 1
    assert r["cost"]["total_usd"] > 0
    assert r["cost"]["per_worker_hour_usd"] == pytest.approx(
        r["cost"]["total_usd"] / r["workers"]["worker_hours"], rel=1e-4)


def test_example_tight_budget_never_exceeded() -> None:
    r = run(EXAMPLES / "tight-budget.json")
    assert r["invariants"]["budget"]["held"] and held(r) == ALL_HELD
    assert r["cost"]["peak_rate_per_hour"] <= r["cost"]["budget_per_hour"]
    start = r["convergence"][0]
    assert start["status"] != "converged"  # 8 wanted, the budget pays for 6
    assert set(start["waiting"]) == {"w7", "w8"}
    assert all("budget" in why for why in start["waiting"].values())
    (it,) = r["interruptions"]
    # interrupted at 2h05m inside a spot outage (2h-2h30m) and on-demand is over budget:
    # the workers can only come back once the outage is over
    assert it["all_running_again"] and it["recovery_s"] >= 25 * 60
    assert r["failed_actions"]["LaunchHost"] >= 1


def test_example_autoscale_day_runs_a_day(tmp_path: Path) -> None:
    r = run(EXAMPLES / "autoscale-day.json")
    assert r["duration_s"] == 86400 and r["ticks"] == 5760
    assert held(r) == ALL_HELD
    assert r["interruptions"] and all(i["cause"] == "random" for i in r["interruptions"])
    assert all(i["all_running_again"] for i in r["interruptions"])
    assert r["convergence"][0]["status"] == "converged"


# --- behaviour on small traces ----------------------------------------------------------

def test_same_seed_same_report_other_seed_other_interruptions(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=4, duration="3h",
                 cloud={"interruption_rate_per_hour": 1.5, "launch_latency": 30})
    a, b = run(path), run(path)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["interruptions"]
    c = run(path, seed=99)
    assert c["seed"] == 99
    assert [(i["at_s"], i["host"]) for i in c["interruptions"]] != [
        (i["at_s"], i["host"]) for i in a["interruptions"]]


def test_capacity_errors_then_converges(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=2, cloud={
        "launch_errors": [{"at": 0, "error": "capacity", "times": 2}]})
    r = run(path)
    assert r["failed_actions"] == {"LaunchHost": 2}
    assert any("CapacityError" in e for e in r["first_errors"])
    assert r["convergence"][0]["status"] == "converged"
    assert r["workers"]["running_at_end"] == 2


def test_capacity_outage_blocks_one_pool_only(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=2, location="auto", pools=[pool("a"), pool("b")],
                 duration="20m",
                 cloud={"capacity_outages": [{"pool": "a", "start": 0, "end": "1h"}],
                        "prices": {"a": 0.01, "b": 0.02}})
    state = tmp_path / "state"
    r = run(path, state_dir=state)
    assert r["workers"]["running_at_end"] == 2
    store = Store(state / "fleet.db", FakeClock())
    try:
        on = {w.host_id for w in store.workers() if w.state == WorkerState.RUNNING}
        assert on and all(h.startswith("b-") for h in on)  # "a" had no capacity
        assert {h.price_per_hour for h in store.hosts() if h.host_id in on} == {0.02}
    finally:
        store.close()


def test_move_add_remove_and_scale_converge(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=2, pools=[pool("a"), pool("b")], duration="2h", events=[
        {"kind": "scale", "at": "10m", "worker": "w1", "to": "pool:b"},
        {"kind": "add_worker", "at": "20m", "id": "extra", "location": "pool:b"},
        {"kind": "remove_worker", "at": "40m", "id": "w0"},
        {"kind": "scale", "at": "50m", "max": 1},
    ])
    state = tmp_path / "state"
    r = run(path, state_dir=state)
    assert [c["status"] for c in r["convergence"]] == ["converged"] * 5
    assert held(r) == ALL_HELD
    assert r["workers"]["running_at_end"] == 1
    store = Store(state / "fleet.db", FakeClock())
    try:
        running = {w.worker_id: w.host_id for w in store.workers()
                   if w.state == WorkerState.RUNNING}
        assert list(running) == ["w1"] and running["w1"].startswith("b-")
    finally:
        store.close()


def test_idle_workers_scaled_down_and_their_host_shut_down(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=4, duration="2h",
                 scaling={"auto_scale": True, "min_workers": 1, "max_workers": 4},
                 events=[{"kind": "idle", "at": "10m", "worker": "w2"},
                         {"kind": "idle", "at": "10m", "worker": "w3"}])
    r = run(path)
    assert r["workers"]["peak_running"] == 4
    assert r["workers"]["running_at_end"] == 2  # w2, w3 stopped after 300s idle
    assert r["hosts"]["terminated"] == 1 and r["hosts"]["alive_at_end"] == 1
    # 4 workers for ~15m, then 2: well under 4 x 2h of worker time
    assert 4.0 < r["workers"]["worker_hours"] < 5.0


def test_interruption_by_worker_name_and_recovery(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=2, cloud={
        "launch_latency": 60, "interruptions": [{"at": "30m", "worker": "w1"}]})
    r = run(path)
    (it,) = r["interruptions"]
    assert it["host"] == "a-1" and it["workers"] == ["w0", "w1"]
    assert set(it["running_again_after_s"]) == {"w0", "w1"}
    assert it["recovery_s"] >= 60  # a new host had to boot
    assert r["hosts"]["interrupted"] == 1 and r["hosts"]["launched"] == 2


def test_recorder_catches_broken_invariants(tmp_path: Path) -> None:
    # The checks must be able to fail: feed one tick of a broken world.
    cfg = load_trace(trace(tmp_path, workers=1, scaling={"max_workers": 1})).cfg
    rec = Recorder(0.0)
    rec.observe(15.0, desired_from(cfg, Overrides()), [], {}, [],
                {"w0": ["a-1", "a-2"], "ghost": ["a-3"]}, 0.0)
    assert not rec.invariants()["single_session"]["held"]
    assert not rec.invariants()["max_workers"]["held"]
    assert "w0 alive on a-1, a-2" in (rec.invariants()["single_session"]["first"] or "")


def test_parse_duration() -> None:
    assert parse_duration(90) == 90.0
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("2d") == 172800.0
    assert parse_duration("45") == 45.0
    for bad in ("soon", "-5", True, "1x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_docs_example_does_what_the_docs_say(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "simulator.md").read_text()
    [example] = re.findall(r"```json\n(.*?)```", doc, re.S)
    path = tmp_path / "trace.json"
    path.write_text(example)
    r = run(path)
    start, up = r["convergence"]
    # launch latency only: the step that sees the host running also bootstraps it and
    # starts its workers (two steps later before the follow-up passes)
    assert start["converged_after_s"] == up["converged_after_s"] == 90
    (it,) = r["interruptions"]
    assert it["workers"] == ["w1", "w2"] and it["recovery_s"] == 90
    assert r["cost"]["peak_rate_per_hour"] <= 0.1 and held(r) == ALL_HELD
    assert r["cost"]["per_worker_hour_usd"] == pytest.approx(0.0163, abs=5e-5)


def test_interruption_of_a_host_that_is_not_there_is_noted(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=1, duration="10m", cloud={
        "interruptions": [{"at": "5m", "host": "a-9"}, {"at": "6m", "host": "a-1"}]})
    r = run(path)
    assert [i["host"] for i in r["interruptions"]] == ["a-1"]
    assert r["notes"] == ["300s: no interruption: host a-9 is not a running spot host"]


def test_cost_is_the_hosts_lifetime_at_its_price_exactly_once(tmp_path: Path) -> None:
    # one host for the whole hour at $0.036/h: accrued every tick, the total must be
    # exactly one host-hour, whatever the tick (no gap, no double count)
    for tick in (15, 7):
        path = trace(tmp_path, workers=2, duration="1h", tick=tick,
                     cloud={"launch_latency": 0, "prices": {"a": 0.036}})
        r = run(path)
        assert r["hosts"]["launched"] == 1
        assert r["cost"]["total_usd"] == pytest.approx(0.036, rel=1e-9)
        assert 1.9 < r["workers"]["worker_hours"] < 2.0  # both, from their first tick


def test_config_from_a_path_next_to_the_trace(tmp_path: Path) -> None:
    cfg = {"fleet": {"name": "f", "pools": [pool("a")]},
           "workers": [{"id": "x", "branch": "bx", "location": "pool:a"}]}
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.json").write_text(json.dumps(cfg))
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"duration": "10m", "config_path": "conf/config.json"}))
    r = run(path)
    assert r["workers"]["running_at_end"] == 1


@pytest.mark.parametrize(("notice", "lead"), [("aws", 120), ("gcp", 30), ("azure", 30)])
def test_a_notice_ahead_per_cloud_checkpoints_before_the_host_is_taken(
        tmp_path: Path, notice: str, lead: int) -> None:
    path = trace(tmp_path, workers=2, cloud={
        "launch_latency": 20, "notice": notice,
        "interruptions": [{"at": "30m", "worker": "w1"}]})
    report = run(path)
    (it,) = report["interruptions"]
    assert it["cause"] == f"scheduled, notice {lead}s ahead"
    assert it["taken_after_s"] == lead  # the cloud takes it at the deadline
    assert it["unsaved_workers"] == []  # every worker was checkpointed and had left
    assert it["all_running_again"] and set(it["running_again_after_s"]) == {"w0", "w1"}
    summary = report["interruption_summary"]
    assert summary["count"] == 1 and summary["workers_taken_unsaved"] == 0
    assert summary["worst_to_running_s"] == it["recovery_s"]


def test_without_a_notice_the_workers_are_taken_with_the_host(tmp_path: Path) -> None:
    path = trace(tmp_path, workers=2, cloud={
        "launch_latency": 20, "interruptions": [{"at": "30m", "worker": "w1"}]})
    (it,) = run(path)["interruptions"]
    assert it["cause"] == "scheduled" and it["taken_after_s"] == 0
    assert it["unsaved_workers"] == ["w0", "w1"]  # their commits since the last push
