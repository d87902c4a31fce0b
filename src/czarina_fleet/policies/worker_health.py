"""The dashboard's Status column: upstream Czarina's words (working, idle; slow after an
hour without a commit, stuck after two) plus the fleet's own (pending, starting,
placing, migrating, interrupted, unreachable, down, stopped, failed), each word the
state the event log shows, and `waiting_reason` saying why a worker does not run. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from czarina_fleet.model.fleet import HostProbe, HostRecord, SessionProbe, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.policies.idle import is_idle
from czarina_fleet.policies.retry import BOOTSTRAP_BACKOFF_S, MAX_BOOTSTRAP_ATTEMPTS, backoff


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
    idle_after_s: float = 600.0,
    has_item: bool = False,
) -> str:
    """One word for one worker. `session`/`probe` are None when not probed; `has_item`:
    a hopper item is assigned to it (policies/idle.py says what idle means)."""
    if host is not None and host.state is HostState.INTERRUPTED:
        return "interrupted"
    if probe is not None and not probe.reachable:
        return "unreachable"
    if record is not None and record.state == WorkerState.CHECKPOINTING:
        return "migrating"
    if session is None or not session.alive:
        return _not_running(record, desired)
    idle = is_idle(session, record.started_at if record else None, now, idle_after_s,
                   has_item=has_item)
    return _running_health(record, session, now, slow_after_s, stuck_after_s, idle)


def _not_running(record: WorkerRecord | None, desired: bool) -> str:
    if not desired:
        return "stopped"
    if record is not None and record.state is WorkerState.STOPPED:
        return "stopped"  # above max_workers, as its event says
    if record is not None and record.state is WorkerState.SCALED_DOWN:
        return "scaled down"  # idle under auto-scale; comes back when work waits
    if record is None or record.state is WorkerState.PENDING:
        return "pending"
    if record.state is WorkerState.PLACING:
        return "placing"  # waiting for a host to be ready (or launched)
    if record.state is WorkerState.STARTING:
        return "starting"
    if record.state is WorkerState.FAILED:
        return "failed"
    return "down"  # the store says it runs, but its session is gone


@dataclass(frozen=True, slots=True)
class Waiting:
    """Why a worker is not working, and when the fleet tries again (None: at its next
    step, or never without a change)."""

    reason: str
    retry_at: float | None = None


_RUNNING_WORDS = frozenset({"working", "idle", "slow", "stuck"})


def waiting_reason(status: str, record: WorkerRecord | None, host: HostRecord | None,
                   probe: HostProbe | None) -> Waiting | None:
    """Why a worker shows `status` (None when it runs). `host` is the host it is on or
    is meant for (its static host while it waits); its trouble comes first, since the
    worker cannot start before the host is fixed."""
    if status in _RUNNING_WORDS:
        return None
    if host is not None and host.state not in (HostState.READY, HostState.DRAINING):
        why = host_reason(host, probe)
        if why is not None:
            return why
    if probe is not None and not probe.reachable:
        return Waiting(f"host {probe.host_id} unreachable: {probe.error or 'no answer'}")
    if record is not None and record.last_error:
        return Waiting(record.last_error)
    if status == "down":
        return Waiting("its tmux session is gone; the controller restarts it")
    if status == "pending":
        return Waiting("not placed yet: the controller places it at its next step")
    return None


def host_reason(host: HostRecord, probe: HostProbe | None) -> Waiting | None:
    """Why a host takes no workers, with the time of the next try when it backs off."""
    error = host.last_error or (probe.error if probe is not None else None)
    state = str(host.state)
    if host.state is HostState.BOOTSTRAP_FAILED:
        if host.pool is not None and host.attempts >= MAX_BOOTSTRAP_ATTEMPTS:
            return Waiting(f"host {host.host_id} failed to bootstrap {host.attempts} times "
                           f"(gave up, it is replaced): {error}")
        retry = host.state_since + backoff(max(1, host.attempts), BOOTSTRAP_BACKOFF_S)
        return Waiting(f"host {host.host_id} failed to bootstrap (attempt {host.attempts}): "
                       f"{error}", retry)
    if host.state is HostState.READY and (probe is None or probe.reachable):
        return None
    if host.state is HostState.READY:
        state = "unreachable"
    return Waiting(f"host {host.host_id} is {state}" + (f": {error}" if error else ""))


def _running_health(
    record: WorkerRecord | None,
    session: SessionProbe,
    now: float,
    slow_after_s: float,
    stuck_after_s: float,
    idle: bool,
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
    return "idle" if idle else "working"


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
