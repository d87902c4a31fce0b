"""What idle means (policies/idle.py) drives auto-scale's scale-down: a quiet worker that
commits, or has a hopper item, is busy; the cheapest stops go first. Pure planner."""

from __future__ import annotations

from dataclasses import replace

from czarina_fleet.controller.core.planner import plan
from czarina_fleet.model.actions import StopWorker
from czarina_fleet.model.fleet import CommitInfo, HostProbe, SessionProbe
from czarina_fleet.policies.scaling import select_active
from tests.test_planner import NOW, desired, host, kinds, obs, worker

IDLE = 600.0  # fleet.health.idle_after_s's default
WORKERS = {"a": "pool:p", "b": "pool:p", "c": "pool:p", "d": "pool:p"}


def sessions(**quiet_for: tuple[float, float | None, int]) -> list[HostProbe]:
    """worker -> (seconds since pane output, seconds since last commit or None, dirty)."""
    by_host: dict[str, dict[str, SessionProbe]] = {"p-1": {}, "p-2": {}}
    for i, (w, (pane, commit, dirty)) in enumerate(sorted(quiet_for.items())):
        last = CommitInfo("c0ffee", NOW - commit, "wip") if commit is not None else None
        by_host["p-1" if i < 2 else "p-2"][w] = SessionProbe(
            w, True, pane_activity=NOW - pane, last_commit=last, dirty_files=dirty)
    return [HostProbe(h, True, NOW, sessions=s) for h, s in by_host.items()]


def scaled_down(probes: list[HostProbe], assigned: frozenset[str] = frozenset()) -> list[str]:
    d = replace(desired(WORKERS, auto=True, min_workers=1), hopper_assigned=assigned)
    ws = [worker(w, host_id="p-1" if w in "ab" else "p-2", started_at=NOW - 7200)
          for w in WORKERS]
    actions = plan(d, obs([host("p-1"), host("p-2")], ws, probes=probes), NOW)
    return sorted(a.worker_id for a in kinds(actions, StopWorker) if a.scale_down)


def test_a_quiet_worker_that_commits_is_busy() -> None:
    probes = sessions(a=(900, 10, 0), b=(900, 900, 0), c=(900, 900, 0), d=(900, 900, 0))
    assert "a" not in scaled_down(probes)
    assert scaled_down(probes) == ["b", "c", "d"]


def test_a_worker_with_an_assigned_hopper_item_is_busy() -> None:
    probes = sessions(a=(900, 900, 0), b=(900, 900, 0), c=(900, 900, 0), d=(900, 900, 0))
    assert scaled_down(probes, assigned=frozenset({"b"})) == ["a", "c", "d"]


def test_not_idle_before_idle_after_s() -> None:
    probes = sessions(a=(IDLE - 5, None, 0), b=(IDLE - 5, None, 0), c=(IDLE - 5, None, 0),
                      d=(IDLE - 5, None, 0))
    assert scaled_down(probes) == []


def test_cheapest_stops_first_nothing_unsaved_then_idle_longest() -> None:
    # min_workers 2: two of the three idle go; d has uncommitted files
    order = ["a", "b", "c", "d"]
    idle = {"b": 700.0, "c": 5000.0, "d": 9000.0}
    got = select_active(order, idle, set(), 2, 4, True, unsaved={"d"})
    assert got.scale_down == ["c", "b"]  # not d (unsaved), c idle longer than b
    assert got.run == ["a", "d"]
    # without unsaved work, the longest idle goes first, whatever the config order
    got = select_active(order, idle, set(), 2, 4, True)
    assert got.scale_down == ["d", "c"]



def test_a_silent_worker_using_cpu_is_busy() -> None:
    """A build or a test run that prints nothing: its processes' CPU counts as work."""
    probes = sessions(a=(5000, 5000, 0), b=(700, 700, 0), c=(700, 700, 0), d=(700, 700, 0))
    a = probes[0].sessions["a"]
    probes[0].sessions["a"] = replace(a, cpu_activity=NOW - 20)
    assert scaled_down(probes) == ["b", "c", "d"]
    probes[0].sessions["a"] = replace(a, cpu_activity=NOW - 4000)  # long ago: idle longest
    assert "a" in scaled_down(probes)
