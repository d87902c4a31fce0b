"""The dashboard's Status words, on plain data."""

from __future__ import annotations

from czarina_fleet.model.fleet import CommitInfo, HostProbe, HostRecord, SessionProbe, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.policies.worker_health import ago, worker_status

NOW = 1_800_000_000.0


def rec(state: WorkerState = WorkerState.RUNNING, started: float = NOW - 60) -> WorkerRecord:
    return WorkerRecord("w", state, NOW - 60, host_id="h", started_at=started)


def session(commit_age: float | None, pane_age: float = 5, alive: bool = True) -> SessionProbe:
    commit = CommitInfo("abc", NOW - commit_age, "msg") if commit_age is not None else None
    return SessionProbe("w", alive, pane_activity=NOW - pane_age, last_commit=commit)


def status(r: WorkerRecord | None, s: SessionProbe | None, **kw: object) -> str:
    return worker_status(r, s, None, None, now=NOW, **kw)  # type: ignore[arg-type]


def test_working_idle_slow_stuck_follow_upstream_thresholds() -> None:
    old = rec(started=NOW - 10 * 3600)
    assert status(old, session(commit_age=60)) == "working"
    assert status(old, session(commit_age=700, pane_age=600)) == "idle"
    assert status(old, session(commit_age=3600)) == "slow"
    assert status(old, session(commit_age=2 * 3600)) == "stuck"
    assert status(old, session(commit_age=90), slow_after_s=60) == "slow"


def test_idle_means_no_output_no_commit_no_item_for_idle_after_s() -> None:
    """One definition (policies/idle.py) for the status word and auto-scale."""
    old = rec(started=NOW - 10 * 3600)
    quiet = session(commit_age=700, pane_age=650)
    assert status(old, quiet) == "idle"                       # default idle_after_s 600
    assert status(old, quiet, idle_after_s=660) == "working"  # its own setting
    # a quiet pane that commits is working: commits count
    assert status(old, session(commit_age=30, pane_age=650)) == "working"
    # an item assigned to it: busy, however quiet
    assert status(old, quiet, has_item=True) == "working"
    # pane activity unknown: never called idle
    unknown = SessionProbe("w", True, pane_activity=None,
                           last_commit=CommitInfo("abc", NOW - 700, "m"))
    assert status(old, unknown) == "working"
    # just started: its start counts as a sign of work
    assert status(rec(started=NOW - 100), quiet) == "working"


def test_a_fresh_branch_is_not_stuck_on_its_base_commit() -> None:
    assert status(rec(started=NOW - 30), session(commit_age=30 * 86400)) == "working"


def test_fleet_words() -> None:
    assert status(None, None) == "pending"
    assert status(rec(WorkerState.STARTING), None) == "starting"
    assert status(rec(WorkerState.RUNNING), session(10, alive=False)) == "down"
    assert status(rec(WorkerState.CHECKPOINTING), None) == "migrating"
    assert status(rec(WorkerState.FAILED), None) == "failed"
    assert status(rec(), None, desired=False) == "stopped"
    host = HostRecord("h", "aws", HostState.INTERRUPTED, NOW, 2)
    assert worker_status(rec(), session(10), host, None, now=NOW) == "interrupted"
    gone = HostProbe("h", reachable=False, probed_at=NOW, error="timeout")
    assert worker_status(rec(), None, None, gone, now=NOW) == "unreachable"


def test_ago_reads_like_the_seed_dashboard() -> None:
    assert ago(120) == "2 mins ago"
    assert ago(3600) == "1 hour ago"
    assert ago(5) == "5 secs ago"
    assert ago(None) == "-"


def test_a_stopped_worker_shows_no_host_price_or_host_trouble() -> None:
    from pathlib import Path

    from czarina_fleet.cli.dashboard import dashboard_rows
    from czarina_fleet.controller.core.desired import desired_from
    from czarina_fleet.model.config import FleetConfig, FleetSettings, ProjectInfo, WorkerSpec
    from czarina_fleet.model.fleet import Overrides
    from czarina_fleet.model.location import parse_location

    cfg = FleetConfig(source=Path("c.json"), format="json", project=ProjectInfo(),
                      project_root=Path("."), fleet=FleetSettings(),
                      workers=[WorkerSpec(id=w, branch=f"b/{w}", location=parse_location("auto"))
                               for w in ("stopped", "running")])
    gone = HostRecord("lab-2", "lab", HostState.TERMINATED, NOW - 30, 2, price_per_hour=1.0)
    up = HostRecord("lab-1", "lab", HostState.READY, NOW - 300, 2, price_per_hour=1.0)
    workers = [WorkerRecord("stopped", WorkerState.STOPPED, NOW - 60, host_id="lab-2"),
               WorkerRecord("running", WorkerState.RUNNING, NOW - 60, host_id="lab-1")]
    rows = {r.worker: r for r in dashboard_rows(desired_from(cfg, Overrides()), workers,
                                                [gone, up], {}, NOW)}
    assert (rows["stopped"].host, rows["stopped"].usd_per_hour, rows["stopped"].why) == (
        None, None, None)
    assert (rows["running"].host, rows["running"].usd_per_hour) == ("lab-1", 1.0)
