"""The dashboard's Status column: upstream Czarina's words (working, idle; slow after an
hour without a commit, stuck after two) plus the fleet's own (pending, starting,
migrating, interrupted, unreachable, down, stopped, failed). Pure."""

from __future__ import annotations

from czarina_fleet.model.fleet import HostProbe, HostRecord, SessionProbe, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState

# A pane with no output for this long reads as idle (the agent waits for input).
IDLE_AFTER_S = 300.0


def worker_status(
    record: WorkerRecord | None,
    session: SessionProbe | None,
    host: HostRecord | None,
    probe: HostProbe | None,
    *,
    now: float,
    desired: bool = True,
    slow_after_s: float = 3600.0,
    stuck_after_s: float = 7200.0,
) -> str:
    """One word for one worker. `session`/`probe` are None when not probed."""
    if host is not None and host.state is HostState.INTERRUPTED:
        return "interrupted"
    if probe is not None and not probe.reachable:
        return "unreachable"
    if record is not None and record.state == WorkerState.CHECKPOINTING:
        return "migrating"
    if session is None or not session.alive:
        return _not_running(record, desired)
    return _running_health(record, session, now, slow_after_s, stuck_after_s)


def _not_running(record: WorkerRecord | None, desired: bool) -> str:
    if not desired:
        return "stopped"
    if record is None or record.state in (WorkerState.PENDING, WorkerState.STOPPED):
        return "pending"
    if record.state in (WorkerState.PLACING, WorkerState.STARTING):
        return "starting"
    if record.state is WorkerState.FAILED:
        return "failed"
    return "down"  # the store says it runs, but its session is gone


def _running_health(
    record: WorkerRecord | None,
    session: SessionProbe,
    now: float,
    slow_after_s: float,
    stuck_after_s: float,
) -> str:
    # A fresh branch's last commit is its base's, maybe days old: count from the start.
    started = record.started_at if record and record.started_at else None
    reference = max(
        session.last_commit.time if session.last_commit else 0.0, started or 0.0
    )
    if reference and now - reference >= stuck_after_s:
        return "stuck"
    if reference and now - reference >= slow_after_s:
        return "slow"
    if session.pane_activity is not None and now - session.pane_activity >= IDLE_AFTER_S:
        return "idle"
    return "working"


def ago(seconds: float | None) -> str:
    """'2 mins ago', as the seed's dashboard shows."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "min")):
        if s >= size:
            n = s // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{s} sec{'s' if s != 1 else ''} ago"
