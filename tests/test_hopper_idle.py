"""A hopper-driven fleet (auto-scale on, the hopper in use) stops a hopper worker without
an item after `fleet.health.hopper_idle_after_s` and an empty host after
`fleet.scaling.hopper_idle_timeout_s`; every other worker and host keeps the longer
settings. Pure planner, plus the hopper reader's notion of "in use"."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from czarina_fleet.cli.dashboard import dashboard_rows
from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.hopper import read_hopper
from czarina_fleet.model.actions import StartWorker, StopWorker, TerminateHost
from czarina_fleet.policies.idle import host_idle_after, idle_after
from tests.test_idle_scaling import WORKERS, sessions
from tests.test_planner import NOW, desired, host, kinds, obs, worker

QUIET = 200.0  # over hopper_idle_after_s (120 s), well under idle_after_s (600 s)


def fleet(*, hopper_in_use: bool, auto: bool = True, task_files: set[str] = frozenset(),
          assigned: frozenset[str] = frozenset()) -> Desired:
    d = replace(desired(WORKERS, auto=auto, min_workers=1), hopper_in_use=hopper_in_use,
                hopper_assigned=assigned)
    ws = tuple(replace(dw, spec=dw.spec.model_copy(update={"task_file": f"{dw.worker_id}.md"}))
               if dw.worker_id in task_files else dw for dw in d.workers)
    return replace(d, workers=ws)


def scaled_down(d: Desired, quiet_s: float = QUIET) -> list[str]:
    probes = sessions(**{w: (quiet_s, None, 0) for w in WORKERS})
    ws = [worker(w, host_id="p-1" if w in "ab" else "p-2", started_at=NOW - 7200)
          for w in WORKERS]
    actions = plan(d, obs([host("p-1"), host("p-2")], ws, probes=probes), NOW)
    return sorted(a.worker_id for a in kinds(actions, StopWorker) if a.scale_down)


def test_hopper_workers_without_an_item_are_idle_after_the_short_setting() -> None:
    # min_workers 1: three of the four quiet hopper workers go; the one with an item stays
    assert scaled_down(fleet(hopper_in_use=True, assigned=frozenset({"a"}))) == ["b", "c", "d"]


def test_a_quiet_worker_of_a_fleet_without_hopper_is_not_stopped_sooner() -> None:
    assert scaled_down(fleet(hopper_in_use=False)) == []
    assert scaled_down(fleet(hopper_in_use=False), quiet_s=700) == ["b", "c", "d"]


def test_a_worker_with_its_own_task_file_keeps_idle_after_s() -> None:
    d = fleet(hopper_in_use=True, task_files={"b", "c", "d"})
    assert scaled_down(d) == ["a"]  # only the hopper worker is idle yet
    assert scaled_down(d, quiet_s=700) == ["b", "c", "d"]


def test_not_before_the_short_setting_either() -> None:
    assert scaled_down(fleet(hopper_in_use=True), quiet_s=100) == []


def test_auto_scale_off_uses_no_hopper_setting() -> None:
    d = fleet(hopper_in_use=True, auto=False)
    assert not d.hopper_driven and d.idle_after_s("a") == 600
    assert d.host_idle_after_s == d.idle_timeout_s > d.hopper_idle_timeout_s


def terminated(d: Desired, empty_for: float) -> list[str]:
    h = host("p-1", idle_since=NOW - empty_for)
    return [a.host_id for a in kinds(plan(d, obs([h], []), NOW), TerminateHost)]


def test_an_empty_host_of_a_hopper_driven_fleet_goes_after_the_short_timeout() -> None:
    d = replace(desired({}, auto=True), hopper_in_use=True)
    assert terminated(d, 250) == []
    assert terminated(d, 310) == ["p-1"]
    reason = kinds(plan(d, obs([host("p-1", idle_since=NOW - 310)], []), NOW),
                   TerminateHost)[0].reason
    assert "hopper_idle_timeout 300s" in reason


def test_an_empty_host_without_hopper_keeps_idle_timeout() -> None:
    d = desired({}, auto=True)
    assert d.idle_timeout_s > 310
    assert terminated(d, 310) == []
    assert terminated(d, d.idle_timeout_s + 10) == ["p-1"]


def test_the_rules_never_lengthen_a_setting() -> None:
    assert idle_after(60, 120, hopper_driven=True, own_task=False) == 60
    assert idle_after(600, 120, hopper_driven=True, own_task=True) == 600
    assert idle_after(600, 120, hopper_driven=False, own_task=False) == 600
    assert host_idle_after(200, 300, hopper_driven=True) == 200
    assert host_idle_after(900, 300, hopper_driven=False) == 900


def test_the_hopper_is_in_use_when_its_directory_exists(tmp_path: Path) -> None:
    hopper = tmp_path / "hopper"
    assert not read_hopper(hopper).in_use  # a project without a hopper
    hopper.mkdir()
    assert read_hopper(hopper).in_use  # empty: before the first item, after the last
    (hopper / "README.md").write_text("# How to use the hopper\n")
    (hopper / "archived").mkdir()
    (hopper / "archived" / "done.md").write_text("# Done item\n**Status:** Done\n")
    scan = read_hopper(hopper)
    assert scan.in_use and scan.items == [] and scan.archived == 1
    (hopper / "next.md").write_text("# Next item\n**Priority:** High\n")
    assert len(read_hopper(hopper).waiting) == 1


def started(d: Desired) -> list[str]:
    return sorted(a.worker_id for a in kinds(plan(d, obs([host("p-1"), host("p-2")], []), NOW),
                                              StartWorker))


def test_a_first_run_starts_only_what_min_workers_and_the_items_ask_for() -> None:
    # Four hopper workers never run, no item waits, min_workers 1: one starts, not four
    # (the others would idle out two minutes later, their hosts paid for nothing).
    assert started(fleet(hopper_in_use=True)) == ["a"]
    # Items wait: one worker each (the first takes one), in config order.
    assert started(replace(fleet(hopper_in_use=True), hopper_waiting=2)) == ["a", "b"]
    assert started(replace(fleet(hopper_in_use=True), hopper_waiting=3)) == ["a", "b", "c"]
    # A worker an item is assigned to starts, and so does one with its own task file
    # (and those two already make min_workers).
    assert started(fleet(hopper_in_use=True, assigned=frozenset({"d"}),
                         task_files={"c"})) == ["c", "d"]


def test_without_the_hopper_every_configured_worker_starts_as_before() -> None:
    assert started(fleet(hopper_in_use=False)) == ["a", "b", "c", "d"]
    assert started(fleet(hopper_in_use=True, auto=False)) == ["a", "b", "c", "d"]


def test_status_says_a_never_started_hopper_worker_waits_for_an_item() -> None:
    d = fleet(hopper_in_use=True, task_files={"c"})
    rows = {r.worker: r for r in dashboard_rows(d, [], [], {}, NOW)}
    assert (rows["b"].status, rows["b"].why) == (
        "scaled down", "no hopper item for it yet: it starts when one waits")
    assert rows["c"].status == "pending"  # its own task: it starts at the next step
    plain = {r.worker: r.status for r in dashboard_rows(fleet(hopper_in_use=False), [], [], {},
                                                         NOW)}
    assert plain["b"] == "pending"
