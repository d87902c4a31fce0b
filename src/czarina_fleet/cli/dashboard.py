"""`czarina status`: one row per worker (Worker, Status, Location, Host, Last Activity,
$/h), built from the desired workers, the store's records and fresh host probes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.controller.state.lock import local_time
from czarina_fleet.model.fleet import Event, HostProbe, HostRecord, SessionProbe, WorkerRecord
from czarina_fleet.model.states import WORKER_ACTIVE, WorkerState
from czarina_fleet.policies.worker_health import Waiting, ago, waiting_reason, worker_status

# Location names where the worker runs (its host), as the seed's dashboard does; a
# worker not placed yet shows where it is meant to go.
# A worker that does not run says why (its host's error, the next retry) in "Why".
COLUMNS = ["Worker", "Status", "Location", "Last Activity", "Last Commit", "$/h", "Why"]


@dataclass(frozen=True)
class WorkerRow:
    worker: str
    status: str
    location: str
    host: str | None
    last_activity: float | None
    last_commit: str | None
    last_commit_hash: str | None
    dirty_files: int | None
    usd_per_hour: float | None
    # What a host taken without notice would take with it (docs/spot-recovery.md).
    exposure: dict[str, object] | None = None
    why: str | None = None           # why it is not working (None while it works)
    retry_at: float | None = None    # when the fleet tries again (epoch seconds)
    # Its last move in the hour (rebalancing, consolidation, a spot notice): why, when.
    last_move: dict[str, object] | None = None

    def cells(self, now: float) -> list[object]:
        age = None if self.last_activity is None else now - self.last_activity
        price = None if self.usd_per_hour is None else f"{self.usd_per_hour:.4f}"
        subject = self.last_commit if self.last_commit is None else self.last_commit[:48]
        where = self.host if self.host else self.location
        why = with_retry(self.why, self.retry_at, now)
        if why is None and self.last_move is not None:
            at = float(self.last_move["at"])  # type: ignore[arg-type]
            why = f"moved {ago(now - at)}: {self.last_move['reason']}"
        return [self.worker, self.status, where, ago(age), subject, price, why]

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def dashboard_rows(desired: Desired, workers: list[WorkerRecord], hosts: list[HostRecord],
                   probes: dict[str, HostProbe], now: float, *, slow_after_s: float = 3600,
                   stuck_after_s: float = 7200, moves: Sequence[Event] = ()) -> list[WorkerRow]:
    """`moves`: the last hour's move events (Store.move_events), for each worker's last."""
    records = {w.worker_id: w for w in workers}
    last_move = {e.entity_id: {"at": e.ts, "reason": e.reason} for e in moves
                 if e.to_state == WorkerState.CHECKPOINTING}
    host_by_id = {h.host_id: h for h in hosts}
    sharing: dict[str, int] = {}
    for w in workers:
        if w.host_id and w.state in WORKER_ACTIVE:
            sharing[w.host_id] = sharing.get(w.host_id, 0) + 1
    ids = [dw.worker_id for dw in desired.workers]
    ids += [w.worker_id for w in workers if desired.worker(w.worker_id) is None]
    rows = []
    for worker_id in ids:
        rec = records.get(worker_id)
        dw = desired.worker(worker_id)
        # The host it runs on or waits for; a stopped worker's record still names its
        # last host, which neither bills it nor explains it any more.
        placed = rec is not None and rec.host_id is not None and (
            rec.state in WORKER_ACTIVE or rec.state == WorkerState.PLACING)
        host = host_by_id.get(rec.host_id or "") if placed and rec else None
        probe = probes.get(host.host_id) if host else None
        session = _session(probe, worker_id)
        status = worker_status(rec, session, host, probe, now=now, desired=dw is not None,
                               slow_after_s=slow_after_s, stuck_after_s=stuck_after_s,
                               idle_after_s=desired.idle_after_s(worker_id),
                               has_item=worker_id in desired.hopper_assigned)
        # the host it waits for: its own, else the one its location names (remote:X)
        meant = host or (host_by_id.get(dw.host_id) if dw and dw.host_id else None)
        waiting = waiting_reason(status, rec, meant,
                                 probes.get(meant.host_id) if meant else None)
        if rec is None and desired.starts_scaled_down(worker_id):
            status, waiting = "scaled down", Waiting("no hopper item for it yet: it starts "
                                                     "when one waits")
        commit = session.last_commit if session else None
        # A host's recorded price, shared by the workers on it.
        price = None if host is None else host.price_per_hour / max(1, sharing.get(host.host_id, 0))
        rows.append(WorkerRow(
            worker=worker_id, status=status,
            location=str(dw.location) if dw else (rec.location if rec else "-"),
            host=host.host_id if host else None,
            last_activity=commit.time if commit else None,
            last_commit=commit.subject if commit else None,
            last_commit_hash=commit.hash[:12] if commit else None,
            dirty_files=session.dirty_files if session else None,
            usd_per_hour=price, exposure=_exposure(host, session, now),
            why=waiting.reason if waiting else None,
            retry_at=waiting.retry_at if waiting else None,
            last_move=last_move.get(worker_id),
        ))
    return rows


def _exposure(host: HostRecord | None, session: SessionProbe | None, now: float
              ) -> dict[str, object] | None:
    """Commits origin lacks (None: the branch was never pushed, so all of its own are
    at risk), files not committed, and how old the newest commit at risk is. None for
    the local machine (its worktrees are in the repository) or a worker not probed."""
    if host is None or session is None or host.provider == "local":
        return None
    commit = session.last_commit
    unpushed = session.unpushed_commits
    at_risk = commit is not None and unpushed != 0
    return {"unpushed_commits": unpushed, "uncommitted_files": session.dirty_files,
            "newest_unpushed_commit_age_s": round(now - commit.time, 1)
            if at_risk and commit is not None else None}


def with_retry(why: str | None, retry_at: float | None, now: float) -> str | None:
    """`why; next try at 11:42:05 (in 25s)`, the time in this machine's local time."""
    if why is None or retry_at is None:
        return why
    wait = f"in {max(0, round(retry_at - now))}s" if retry_at > now else "now"
    return f"{why}; next try at {local_time(retry_at, clock_only=True)} ({wait})"


def _session(probe: HostProbe | None, worker_id: str) -> SessionProbe | None:
    if probe is None or not probe.reachable:
        return None
    return probe.sessions.get(worker_id)
