"""What a simulation measures, tick by tick, and the summary it reports.

Measured against the simulated world (which sessions are really alive on hosts that are
really up), not against what the controller believes, so a controller that is wrong
about its fleet shows up here. Invariants are checked at every tick:

- `max_workers`: no more live workers than the max in force;
- `pool_max_hosts`: no pool with more instances (pending or running) than its max_hosts;
- `budget`: the hourly price of every instance the cloud has (at the price recorded at
  launch) never above `budget_per_hour`;
- `single_session`: no worker alive in two places at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import WORKER_ACTIVE, WorkerState
from czarina_fleet.providers.base import Instance

INVARIANTS = ("max_workers", "pool_max_hosts", "budget", "single_session")
_UP = (WorkerState.RUNNING,)
_WAITING = (WorkerState.PENDING, WorkerState.PLACING, WorkerState.FAILED, WorkerState.STOPPED,
            WorkerState.SCALED_DOWN)


@dataclass
class Convergence:
    at: float
    event: str
    converged_at: float | None = None
    ticks: int = 0
    superseded: bool = False
    waiting: dict[str, str] = field(default_factory=dict)  # worker -> why not running

    def as_dict(self) -> dict[str, Any]:
        status = ("converged" if self.converged_at is not None
                  else "superseded" if self.superseded else "not converged")
        after = None if self.converged_at is None else _r(self.converged_at - self.at)
        return {"at_s": _r(self.at), "event": self.event, "status": status,
                "converged_after_s": after, "ticks": self.ticks if after is not None else None,
                "waiting": dict(sorted(self.waiting.items()))}


@dataclass
class Interruption:
    at: float
    host: str
    cause: str  # scheduled | random
    workers: list[str]
    back_at: dict[str, float] = field(default_factory=dict)  # worker -> running again
    gone: list[str] = field(default_factory=list)  # no longer desired: nothing to recover
    taken_at: float | None = None  # the host killed (the notice's deadline, or at once)
    # Workers still on the host when it was taken: their commits since the last push
    # are lost (the sim has no commits; this counts who was not checkpointed in time).
    unsaved: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        waiting = [w for w in self.workers if w not in self.back_at and w not in self.gone]
        worst = max(self.back_at.values(), default=None)
        return {"at_s": _r(self.at), "host": self.host, "cause": self.cause,
                "workers": self.workers,
                "running_again_after_s": {w: _r(t - self.at) for w, t in
                                          sorted(self.back_at.items())},
                "all_running_again": not waiting,
                "recovery_s": None if waiting or worst is None else _r(worst - self.at),
                "never_recovered": waiting,
                "taken_after_s": None if self.taken_at is None else _r(self.taken_at - self.at),
                "unsaved_workers": self.unsaved}


def interruption_summary(interruptions: list[Interruption]) -> dict[str, Any]:
    """The figures the interruption bench reports, for the simulated fleet: median and
    worst time from the notice (or the kill) until each worker runs again, and the
    workers taken with their host (not checkpointed in time: their commits since the
    last push are lost)."""
    times = sorted(t - it.at for it in interruptions for t in it.back_at.values())
    median = None
    if times:
        mid = len(times) // 2
        median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    return {"count": len(interruptions),
            "median_to_running_s": None if median is None else _r(median),
            "worst_to_running_s": _r(times[-1]) if times else None,
            "workers_taken_unsaved": sum(len(it.unsaved) for it in interruptions)}


@dataclass
class Violation:
    count: int = 0
    first_at: float | None = None
    first: str | None = None
    worst: float = 0.0


class Recorder:
    """Fed once per tick by the simulation loop; `summary()` is the report."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.last_t = 0.0
        self.live_count = 0
        self.worker_seconds = 0.0
        self.peak_hosts = 0
        self.peak_workers = 0
        self.peak_rate = 0.0
        self.ticks = 0
        self.convergence: list[Convergence] = []
        self.interruptions: list[Interruption] = []
        self.violations: dict[str, Violation] = {k: Violation() for k in INVARIANTS}
        self.failed_actions: Counter[str] = Counter()
        self.first_errors: list[str] = []
        self._seen_errors: set[tuple[str, str]] = set()
        self.notes: list[str] = []  # trace items that could not apply, and why
        self.last_host: dict[str, str] = {}  # worker -> the host it last ran on
        self.moves: Counter[str] = Counter()  # cause -> workers that changed host

    # --- inputs -----------------------------------------------------------------------

    def fleet_changed(self, t: float, event: str) -> None:
        """A new target: time how long until the fleet matches it."""
        pending = self.convergence[-1] if self.convergence else None
        if pending is not None and pending.converged_at is None and not pending.superseded:
            if pending.at == t:  # several changes at one moment: one target
                pending.event += "; " + event
                return
            pending.superseded = True
        self.convergence.append(Convergence(t, event))

    def interrupted(self, t: float, host: str, cause: str, workers: list[str]) -> None:
        self.interruptions.append(Interruption(t, host, cause, workers))

    def taken(self, host: str, t: float, unsaved: list[str]) -> None:
        for it in reversed(self.interruptions):
            if it.host == host and it.taken_at is None:
                it.taken_at, it.unsaved = t, unsaved
                return

    def actions_failed(self, t: float, failures: list[tuple[str, str]]) -> None:
        for kind, error in failures:
            self.failed_actions[kind] += 1
            # The first of each distinct failure: a loop repeating one error shows once.
            if len(self.first_errors) < 8 and (kind, error) not in self._seen_errors:
                self._seen_errors.add((kind, error))
                self.first_errors.append(f"{_r(t)}s {kind}: {error}")

    def advance(self, t: float) -> None:
        """Integrate worker time up to trace time `t` (the count since the last tick)."""
        self.worker_seconds += self.live_count * max(0.0, t - self.last_t)
        self.last_t = max(self.last_t, t)

    def observe(self, t: float, desired: Desired, workers: list[WorkerRecord],
                hosts: dict[str, HostRecord], instances: list[Instance],
                live: dict[str, list[str]], spend_rate: float) -> None:
        self.advance(t)
        self.ticks += 1
        self.live_count = len(live)
        self.peak_workers = max(self.peak_workers, len(live))
        self.peak_hosts = max(self.peak_hosts, len(instances))
        self.peak_rate = max(self.peak_rate, spend_rate)
        self._invariants(t, desired, hosts, instances, live)
        pending = self.convergence[-1] if self.convergence else None
        if pending is not None and pending.converged_at is None and not pending.superseded:
            pending.ticks += 1
            if converged(desired, workers, live):
                pending.converged_at, pending.waiting = t, {}
            else:  # why not yet, as the planner recorded it (kept when superseded)
                pending.waiting = {w.worker_id: w.last_error or str(w.state) for w in workers
                                   if w.state in _WAITING and desired.worker(w.worker_id)}
        self._count_moves(workers, live)
        for it in self.interruptions:
            for w in it.workers:
                if w in it.back_at or w in it.gone:
                    continue
                if desired.worker(w) is None:
                    it.gone.append(w)
                elif any(h != it.host for h in live.get(w, [])):
                    it.back_at[w] = t

    def _count_moves(self, workers: list[WorkerRecord], live: dict[str, list[str]]) -> None:
        """A move: a worker alive on one host, later alive on another, not stopped in
        between (a scaled-down worker started again elsewhere is a new start). Its cause
        is `interruption` when the host it left was taken or warned, else `planned`."""
        for w in workers:
            if w.state in (WorkerState.SCALED_DOWN, WorkerState.STOPPED):
                self.last_host.pop(w.worker_id, None)
        hit = {it.host for it in self.interruptions}
        for w, where in live.items():
            before = self.last_host.get(w)
            if before is not None and before != where[0]:
                self.moves["interruption" if before in hit else "planned"] += 1
            self.last_host[w] = where[0]

    def moves_summary(self, duration_s: float) -> dict[str, Any]:
        total = sum(self.moves.values())
        return {"count": total, "per_hour": _r(total * 3600.0 / duration_s),
                "by_cause": dict(sorted(self.moves.items()))}

    def _invariants(self, t: float, desired: Desired, hosts: dict[str, HostRecord],
                    instances: list[Instance], live: dict[str, list[str]]) -> None:
        if len(live) > desired.max_workers:
            self._violated("max_workers", t, len(live) - desired.max_workers,
                           f"{len(live)} workers alive, max_workers {desired.max_workers}")
        per_pool = Counter(i.pool for i in instances)
        for pool, n in sorted(per_pool.items()):
            spec = desired.pools.get(pool)
            if spec is not None and n > spec.max_hosts:
                self._violated("pool_max_hosts", t, n - spec.max_hosts,
                               f"pool {pool}: {n} instances, max_hosts {spec.max_hosts}")
        budget = desired.budget_per_hour
        if budget is not None:
            rate = sum(hosts[i.host_id].price_per_hour for i in instances if i.host_id in hosts)
            if rate > budget + 1e-9:
                self._violated("budget", t, rate - budget,
                               f"instances cost ${rate:.4f}/h, budget ${budget:.4f}/h")
        for w, where in sorted(live.items()):
            if len(where) > 1:
                self._violated("single_session", t, len(where) - 1,
                               f"worker {w} alive on {', '.join(where)}")

    def _violated(self, name: str, t: float, by: float, detail: str) -> None:
        v = self.violations[name]
        v.count += 1
        v.worst = max(v.worst, by)
        if v.first_at is None:
            v.first_at, v.first = t, detail

    # --- output -------------------------------------------------------------------------

    def invariants(self) -> dict[str, dict[str, Any]]:
        return {k: {"held": v.count == 0, "violations": v.count,
                    "first_at_s": None if v.first_at is None else _r(v.first_at),
                    "first": v.first, "worst_excess": _r(v.worst)}
                for k, v in self.violations.items()}


def converged(desired: Desired, workers: list[WorkerRecord], live: dict[str, list[str]]) -> bool:
    """Does the fleet match the target? Every worker that should run is running, at its
    desired location, alive on exactly one host; nothing else is active or alive.
    Which workers should run: without auto-scale, the first max_workers in config
    order (the planner's rule); with it, any min..max of them (idleness decides)."""
    up = {w.worker_id: w for w in workers if w.state in _UP}
    if any(w.state in WORKER_ACTIVE and w.state not in _UP for w in workers):
        return False  # something is starting, checkpointing or migrating
    if set(up) != set(live) or any(len(h) != 1 for h in live.values()):
        return False
    for wid, w in up.items():
        dw = desired.worker(wid)
        if dw is None or w.location != str(dw.location):
            return False
    if desired.auto_scale:
        low = min(desired.min_workers, len(desired.workers))
        return low <= len(up) <= desired.max_workers
    expected = {dw.worker_id for dw in desired.workers[:desired.max_workers]}
    return set(up) == expected


def _r(x: float) -> float:
    return round(x, 6)
