"""Planner step: move running `auto`/`pool:` workers after they started. Pure.

- Rebalancing: a ready host that stays overloaded (policies/load.py, on the probe
  samples taken since the last move landed) gives up one worker per step to a host
  with room (policies/consolidation.py `pick_target`).
- Consolidation: when the workers of a partly used pool host fit on the hosts that
  stay, and the saving beats the moves' cost, they move, so the host idles out and the
  idle-host rule terminates it. Not while any worker waits for a place.
- Both go through the disruption budget (policies/disruption.py) and the one move
  path: MigrateWorker (stop, commit, push; then start on `to_host`, task typed again).
  A refusal is written to the event log once per change (NoteEvent).
- A voluntary move whose checkpoint failed is tried again (its session is stopped
  already: its work is only on that host until a checkpoint succeeds).
Pinned workers (any location other than `auto` and `pool:`) never move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from czarina_fleet.controller.core.desired import DesiredWorker
from czarina_fleet.controller.core.plan_context import PlanContext
from czarina_fleet.controller.core.plan_workers import eligible
from czarina_fleet.model.actions import (
    LaunchHost,
    MigrateWorker,
    NoteEvent,
    StartWorker,
    migrate_key,
)
from czarina_fleet.model.fleet import LoadSample, SessionProbe, WorkerRecord
from czarina_fleet.model.states import WORKER_ACTIVE, HostState, WorkerState
from czarina_fleet.policies.consolidation import (
    HostRoom,
    could_take,
    emptying_order,
    move_cost_usd,
    pays,
    pick_target,
    saving_usd,
)
from czarina_fleet.policies.disruption import MoveBudget
from czarina_fleet.policies.idle import has_unsaved_work
from czarina_fleet.policies.load import describe, overloaded
from czarina_fleet.policies.placement import Placer

H, W = HostState, WorkerState
# Hosts whose emptying is searched in one plan, at most (each search looks at every
# host that could take a worker): a fleet where nothing fits stays cheap to plan.
MAX_TRIES = 8
MOVABLE = frozenset({"auto", "pool"})  # location kinds; every other one is pinned
# One worker is assumed to bring at most one CPU's worth of load to its new host.
WORKER_LOAD_CAP = 1.0


@dataclass
class _View:
    ctx: PlanContext
    placer: Placer
    budget: MoveBudget
    rooms: dict[str, HostRoom] = field(default_factory=dict)    # ready hosts
    open: list[HostRoom] = field(default_factory=list)  # the ones that could take a worker
    on_host: dict[str, list[WorkerRecord]] = field(default_factory=dict)
    noticed: set[str] = field(default_factory=set)   # pending notice, draining, doomed
    leaving: set[str] = field(default_factory=set)   # a worker checkpoints off it

    @classmethod
    def build(cls, ctx: PlanContext, placer: Placer) -> _View:
        v = cls(ctx, placer, MoveBudget.build(ctx.desired.moves, ctx.now,
                                              ctx.observed.move_events, ctx.workers.values()))
        v.noticed = {n.host_id for n in ctx.observed.notices} | set(ctx.doomed)
        for w in ctx.workers.values():
            if w.host_id is not None and (w.state in WORKER_ACTIVE or w.state == W.PLACING):
                v.on_host.setdefault(w.host_id, []).append(w)
                if w.state == W.CHECKPOINTING:
                    v.leaving.add(w.host_id)
        for h in ctx.hosts.values():
            if h.state != H.READY:
                v.noticed.add(h.host_id)
                continue
            v.rooms[h.host_id] = HostRoom(h.host_id, h.pool, h.price_per_hour, h.slots,
                                          placer.used(h.host_id), _load_now(ctx, h.host_id))
        v.open = [r for r in v.rooms.values()
                  if could_take(r, ctx.desired.moves) and r.host_id not in v.noticed]
        return v

    def full(self) -> bool:
        """No further move can be made in this plan (the fleet-wide cap)."""
        return self.budget.in_flight >= self.ctx.desired.moves.max_moves_in_flight

    def session(self, w: WorkerRecord) -> SessionProbe | None:
        probe = self.ctx.observed.probes.get(w.host_id or "")
        return probe.sessions.get(w.worker_id) if probe and probe.reachable else None

    def movable(self, w: WorkerRecord) -> DesiredWorker | None:
        """Its desired worker, if `w` may move now: running (session seen alive), not
        acted on in this plan, and `auto` or `pool:` (never a pinned one)."""
        dw = self.ctx.desired.worker(w.worker_id)
        s = self.session(w)
        if (dw is None or dw.location.kind not in MOVABLE or w.state != W.RUNNING
                or w.worker_id in self.ctx.touched_workers or s is None or not s.alive):
            return None
        return dw

    def worker_load(self, host_id: str) -> float:
        sample = self.rooms[host_id].load
        n = max(1, len(self.on_host.get(host_id, ())))
        return min(WORKER_LOAD_CAP, sample.load_1m / n) if sample else WORKER_LOAD_CAP

    def may_use(self, dw: DesiredWorker, src: str, *, keep_idle: bool) -> Callable[[str], bool]:
        def ok(host_id: str) -> bool:
            if host_id == src or host_id in self.noticed or host_id in self.leaving:
                return False
            r = self.rooms[host_id]
            if keep_idle and r.pool is not None and r.used == 0:
                return False  # idling out: consolidation must not bring it back
            return eligible(dw, host_id, self.ctx)
        return ok

    def try_move(self, w: WorkerRecord, dw: DesiredWorker, src: str, dst: str,
                 reason: str) -> bool:
        """Move `w` from `src` to `dst` if the budget allows; else note why (once)."""
        s = self.session(w)
        commit = s.last_commit.time if s and s.last_commit else None
        why = self.budget.refusal(w.worker_id, last_commit=commit, started_at=w.started_at,
                                  noticed=[h for h in (src, dst) if h in self.noticed])
        if why is not None:
            # No figures in the note: the same refusal reads the same at every step.
            note = f"{why}; wanted: {reason.split(':')[0]} off host {src}"
            if self.budget.should_note(w.worker_id, note):
                self.ctx.add(NoteEvent("worker", w.worker_id, note))
                self.budget.last_note[w.worker_id] = (self.ctx.now, note)
            return False
        self.ctx.add(MigrateWorker(w.worker_id, src, str(dw.location), reason, to_host=dst))
        self.ctx.touched_workers.add(w.worker_id)
        self.budget.spend(w.worker_id)
        self.placer.take(f"host:{dst}", ready=True)
        self.rooms[dst].used += 1
        self.leaving.add(src)
        return True


def _load_now(ctx: PlanContext, host_id: str) -> LoadSample | None:
    """The host's load as this step's probe saw it (None: not known)."""
    p = ctx.observed.probes.get(host_id)
    if p is None or not p.reachable or p.load_1m is None or not p.cpus:
        return None
    return LoadSample(host_id, p.probed_at, p.load_1m, p.cpus, p.mem_free_mb)


def plan_moves(ctx: PlanContext, placer: Placer) -> None:
    _retry_checkpoints(ctx)
    cfg = ctx.desired.moves
    if not (cfg.enabled or cfg.consolidate):
        return
    view = _View.build(ctx, placer)
    if cfg.enabled:
        _rebalance(view)
    if cfg.consolidate:
        _consolidate(view)


def _retry_checkpoints(ctx: PlanContext) -> None:
    for w in sorted(ctx.workers.values(), key=lambda w: w.worker_id):
        h = ctx.hosts.get(w.host_id or "")
        if (w.state != W.CHECKPOINTING or h is None or h.state != H.READY
                or w.worker_id in ctx.touched_workers
                or migrate_key(w.worker_id, h.host_id) in ctx.open_intents):
            continue
        dw = ctx.desired.worker(w.worker_id)
        to = str(dw.location) if dw is not None else w.location
        ctx.add(MigrateWorker(w.worker_id, h.host_id, to,
                              "move: checkpoint again (the last one failed)"))
        ctx.touched_workers.add(w.worker_id)


def _settled_since(view: _View) -> float:
    """When the last move landed (its worker ran again), or began if it has not: only
    probes after it tell whether a host is still overloaded (load_1m lags)."""
    mark = 0.0
    for wid, times in view.budget.moves_by_worker.items():
        w = view.ctx.workers.get(wid)
        started = w.started_at if w is not None and w.started_at is not None else 0.0
        mark = max(mark, times[-1], started)
    return mark


def _samples_since(view: _View, host_id: str, since: float) -> list[LoadSample]:
    return [s for s in view.ctx.observed.samples.get(host_id, ()) if s.ts > since]


def _by_least_disruption(view: _View, workers: list[WorkerRecord]) -> list[WorkerRecord]:
    def key(w: WorkerRecord) -> tuple[bool, float, str]:
        s = view.session(w)
        commit = s.last_commit.time if s and s.last_commit else 0.0
        return has_unsaved_work(s), -(view.ctx.now - commit), w.worker_id
    return sorted(workers, key=key)


def _rebalance(view: _View) -> None:
    if not view.open:
        return  # no host could take a worker
    cfg, since = view.ctx.desired.moves, _settled_since(view)
    hot = []
    for host_id in view.rooms:
        samples = _samples_since(view, host_id, since)
        if host_id not in view.noticed and samples and overloaded(samples, cfg):
            hot.append((-samples[-1].load_per_cpu, host_id, samples[-1]))
    no_room: set[str | None] = set()  # pools (None: auto) with no target left
    for _, src, sample in sorted(hot):
        movers = [(w, dw) for w in _by_least_disruption(view, view.on_host.get(src, []))
                  if (dw := view.movable(w)) is not None]
        for w, dw in movers:
            if dw.pool in no_room:
                continue
            dst = pick_target(view.open, view.may_use(dw, src, keep_idle=False),
                              view.worker_load(src), cfg, pack=False)
            if dst is None:
                no_room.add(dw.pool)  # slots only fill during a plan
                continue  # another worker (another pool) may have a place
            view.try_move(w, dw, src, dst.host_id,
                          f"rebalance: host {src} overloaded ({describe(sample)} for "
                          f"{cfg.overload_probes}+ probes); {dst.host_id} has room")
            break  # one worker per overloaded host per step
        if view.full():
            return  # another refusal would only repeat the one just noted


def _consolidate(view: _View) -> None:
    ctx = view.ctx
    if (any(w.state in (W.PENDING, W.PLACING) for w in ctx.workers.values())
            or any(isinstance(a, StartWorker | LaunchHost) for a in ctx.actions)):
        return  # capacity is wanted: a freed slot would be taken again
    if ctx.doomed or any(h.state == H.DRAINING for h in ctx.hosts.values()):
        return  # workers are leaving a host under notice: they need the room
    alive = ctx.alive_by_pool()
    # An upper bound of the slots the workers could go to: most hosts need no search.
    free = sum(r.slots - r.used for r in view.open)
    open_ids = {r.host_id for r in view.open}
    candidates = []
    for host_id, room in view.rooms.items():
        pool = ctx.desired.pools.get(room.pool or "")
        workers = view.on_host.get(host_id, [])
        own = room.slots - room.used if host_id in open_ids else 0
        if (pool is None or not workers or host_id in view.noticed
                or host_id in view.leaving or alive[pool.name] <= pool.min_hosts
                or free - own < len(workers)  # cannot fit anywhere: no search needed
                or not pays(room.price_per_hour, len(workers), ctx.desired.host_idle_after_s,
                            ctx.desired.moves)):
            continue
        if all(view.movable(w) is not None for w in workers):
            candidates.append((room, len(workers)))
    for tries, (room, _) in enumerate(emptying_order(candidates)):
        if tries >= MAX_TRIES or view.full() and tries:
            return
        if _empty(view, room):
            return  # one host at a time


def _empty(view: _View, room: HostRoom) -> bool:
    """Move the workers off `room` if they all fit elsewhere and it pays."""
    ctx, cfg = view.ctx, view.ctx.desired.moves
    workers = view.on_host[room.host_id]
    plan: list[tuple[WorkerRecord, DesiredWorker, HostRoom]] = []
    trial: dict[str, int] = {}  # slots taken by this plan's workers so far
    for w in _by_least_disruption(view, workers):
        dw = view.movable(w)
        assert dw is not None  # checked by the caller
        dst = pick_target(view.open, view.may_use(dw, room.host_id, keep_idle=True),
                          view.worker_load(room.host_id), cfg, pack=True, extra=trial)
        if dst is None:
            return False
        trial[dst.host_id] = trial.get(dst.host_id, 0) + 1
        plan.append((w, dw, dst))
    saving = saving_usd(room.price_per_hour, ctx.desired.host_idle_after_s, cfg)
    cost = move_cost_usd(len(workers), cfg)
    for w, dw, dst in plan:
        reason = (f"consolidate: empty host {room.host_id} (${room.price_per_hour:.4f}/h); "
                  f"saves ${saving:.4f} over the next hour, moves cost ${cost:.4f}")
        if not view.try_move(w, dw, room.host_id, dst.host_id, reason):
            break
    return True
