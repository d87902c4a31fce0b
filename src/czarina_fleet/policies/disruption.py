"""The disruption budget of voluntary moves (rebalancing and consolidation). Pure.

Spot-notice moves are forced and never refused, but they count: a worker a notice just
moved is not disrupted again at once, and moves under way hold the fleet-wide cap.

A voluntary move of a worker is refused when
- its host, or the host it would go to, has a pending interruption notice (or
  rebalance recommendation);
- `max_moves_in_flight` moves are under way (checkpointing, or checkpointed and not
  running again yet);
- the worker moved `max_moves_per_worker_per_hour` times in the last hour;
- it committed, or its session started, less than `settle_s` ago (it is in the middle
  of something, or has just paid for a start).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from czarina_fleet.model.config import RebalanceSettings
from czarina_fleet.model.fleet import Event, WorkerRecord
from czarina_fleet.model.states import WorkerState

HOUR = 3600.0
REFUSED = "move refused"
# A move that has not landed this long after it began no longer holds the budget (its
# worker may wait for a place for a long time; that is not a move under way).
IN_FLIGHT_FOR_S = 900.0
_LANDING = frozenset({WorkerState.CHECKPOINTING, WorkerState.PENDING, WorkerState.PLACING,
                      WorkerState.STARTING})


def is_move(e: Event) -> bool:
    return e.entity == "worker" and e.to_state == WorkerState.CHECKPOINTING


def is_refusal(e: Event) -> bool:
    return e.entity == "worker" and e.reason.startswith(REFUSED)


@dataclass
class MoveBudget:
    cfg: RebalanceSettings
    now: float
    moves_by_worker: dict[str, list[float]] = field(default_factory=dict)
    in_flight: int = 0
    last_note: dict[str, tuple[float, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, cfg: RebalanceSettings, now: float, events: Sequence[Event],
              workers: Iterable[WorkerRecord]) -> MoveBudget:
        b = cls(cfg, now)
        for e in events:
            if is_move(e) and e.ts >= now - HOUR:
                b.moves_by_worker.setdefault(e.entity_id, []).append(e.ts)
            elif is_refusal(e):
                b.last_note[e.entity_id] = (e.ts, e.reason)
        b.in_flight = sum(1 for w in workers if b._landing(w))
        return b

    def _landing(self, w: WorkerRecord) -> bool:
        moved = self.moves_by_worker.get(w.worker_id)
        if not moved or w.state not in _LANDING:
            return False
        last = moved[-1]
        return (self.now - last < IN_FLIGHT_FOR_S
                and (w.started_at is None or w.started_at < last))

    def last_move(self, worker_id: str) -> float | None:
        moved = self.moves_by_worker.get(worker_id)
        return moved[-1] if moved else None

    def refusal(self, worker_id: str, *, last_commit: float | None,
                started_at: float | None, noticed: Iterable[str]) -> str | None:
        """Why this worker may not move now (None: it may). `noticed`: the hosts of
        the move (source, target) that have a pending notice."""
        c = self.cfg
        for host_id in noticed:
            return f"{REFUSED}: host {host_id} has a pending interruption notice"
        if self.in_flight >= c.max_moves_in_flight:
            return (f"{REFUSED}: {c.max_moves_in_flight} move(s) already under way "
                    "(fleet.rebalance.max_moves_in_flight)")
        if len(self.moves_by_worker.get(worker_id, ())) >= c.max_moves_per_worker_per_hour:
            return (f"{REFUSED}: moved {c.max_moves_per_worker_per_hour} time(s) in the last "
                    "hour (fleet.rebalance.max_moves_per_worker_per_hour)")
        if last_commit is not None and self.now - last_commit < c.settle_s:
            return f"{REFUSED}: committed less than {c.settle_s:g}s ago (fleet.rebalance.settle_s)"
        if started_at is not None and self.now - started_at < c.settle_s:
            return f"{REFUSED}: started less than {c.settle_s:g}s ago (fleet.rebalance.settle_s)"
        return None

    def spend(self, worker_id: str) -> None:
        self.moves_by_worker.setdefault(worker_id, []).append(self.now)
        self.in_flight += 1

    def should_note(self, worker_id: str, reason: str) -> bool:
        """Write this refusal to the event log? Once per change: not when the worker's
        last note says the same and it has not moved since."""
        last = self.last_note.get(worker_id)
        if last is None or last[1] != reason:
            return True
        moved = self.last_move(worker_id)
        return moved is not None and moved > last[0]
