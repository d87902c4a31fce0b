"""Planner steps for workers: sync with the sessions probes report, keep the running set
within min..max, stop what is not wanted, move what must move. Pure."""

from __future__ import annotations

from czarina_fleet.controller.core.desired import DesiredWorker
from czarina_fleet.controller.core.plan_context import HOST_GONE, PlanContext
from czarina_fleet.model.actions import (
    AdoptWorker,
    CleanupOrphan,
    MigrateWorker,
    StopWorker,
    start_key,
)
from czarina_fleet.model.fleet import SessionProbe, WorkerRecord
from czarina_fleet.model.states import (
    WORKER_ACTIVE,
    WORKER_STATE_TIMEOUTS,
    HostState,
    WorkerState,
)
from czarina_fleet.policies.idle import has_unsaved_work, idle_for
from czarina_fleet.policies.scaling import select_active

W = WorkerState


def eligible(dw: DesiredWorker, host_id: str, ctx: PlanContext) -> bool:
    """May `dw` run on `host_id`, given its location?"""
    if dw.host_id is not None:
        return host_id == dw.host_id
    h = ctx.hosts.get(host_id)
    if h is None:
        return False
    if dw.pool is not None:
        return h.pool == dw.pool
    return auto_host(ctx, host_id)


def auto_host(ctx: PlanContext, host_id: str) -> bool:
    """`auto` workers use static and pool hosts; the local machine only when the fleet
    has nothing else (so `auto` means "somewhere else" as soon as there is somewhere)."""
    fh = ctx.desired.fixed_hosts.get(host_id)
    if fh is not None:
        return fh.provider != "local" or len(ctx.desired.fixed_hosts) == 1 and not ctx.desired.pools
    h = ctx.hosts[host_id]
    return h.pool is not None and h.pool in ctx.desired.pools


def sync_sessions(ctx: PlanContext) -> None:
    """Follow what probes saw: sessions up (running), gone (re-place), unknown (adopt or
    clean up), duplicates (stop the extra one: a worker never runs twice)."""
    for host_id, probe in ctx.observed.probes.items():
        h = ctx.hosts.get(host_id)
        if not probe.reachable or h is None or h.state in HOST_GONE:
            continue
        for worker_id, s in probe.sessions.items():
            if s.alive:
                _session_seen(ctx, host_id, worker_id, s.ready)
    for w in list(ctx.workers.values()):
        if w.worker_id in ctx.touched_workers or w.host_id is None:
            continue
        on_host = ctx.observed.probes.get(w.host_id)
        h = ctx.hosts.get(w.host_id)
        if w.state in WORKER_ACTIVE and (h is None or h.state in HOST_GONE):
            ctx.mark_worker(w.worker_id, W.PENDING, f"host {w.host_id} is gone: place again",
                            host_id=None)
        elif (w.state == W.RUNNING and on_host is not None and on_host.reachable
              and not _alive(on_host.sessions.get(w.worker_id))):
            ctx.mark_worker(w.worker_id, W.PENDING, f"session gone from {w.host_id}: restart",
                            host_id=None)


def _alive(s: object) -> bool:
    return bool(s is not None and getattr(s, "alive", False))


def _session_seen(ctx: PlanContext, host_id: str, worker_id: str, ready: bool) -> None:
    """A live session of ours: the world is the truth, the store only a cache. A record
    that says otherwise (lost, emptied or rolled back store) is rebuilt from it; a
    second session of one worker is stopped only while the first one is seen alive."""
    w = ctx.workers.get(worker_id)
    if w is not None and w.host_id == host_id and w.state in WORKER_ACTIVE:
        if w.state == W.STARTING:
            ctx.mark_worker(worker_id, W.RUNNING, "session is up")
        return
    dw = ctx.desired.worker(worker_id)
    owner_alive = _runs_elsewhere(ctx, w, host_id)
    draining = ctx.hosts[host_id].state == HostState.DRAINING  # never back onto it
    if dw is not None and not owner_alive and not draining and eligible(dw, host_id, ctx):
        if not ready:
            return  # half-made (its task never typed in): a start here finishes it
        ctx.add(AdoptWorker(worker_id, host_id, str(dw.location),
                            "session found on the host but not in the store"))
        base = w or WorkerRecord(worker_id, W.RUNNING, ctx.now)
        ctx.workers[worker_id] = WorkerRecord(worker_id, W.RUNNING, ctx.now, host_id,
                                              str(dw.location), base.attempts, None, ctx.now)
        ctx.touched_workers.add(worker_id)
        return
    why = (f"duplicate: it runs on {w.host_id}" if w is not None and owner_alive
           else "not desired here")
    ctx.add(CleanupOrphan("session", f"worker {worker_id} {why}", host_id=host_id,
                          worker_id=worker_id))


def _runs_elsewhere(ctx: PlanContext, w: WorkerRecord | None, host_id: str) -> bool:
    """Does the record place `w` on another live host, and not contradicted by that
    host's probe? (A stale record must not get a live session stopped.)"""
    if (w is None or w.host_id is None or w.host_id == host_id
            or w.state not in WORKER_ACTIVE):
        return False
    h = ctx.hosts.get(w.host_id)
    if h is None or h.state in HOST_GONE:
        return False
    probe = ctx.observed.probes.get(w.host_id)
    return probe is None or not probe.reachable or _alive(probe.sessions.get(w.worker_id))


def step_workers(ctx: PlanContext) -> list[DesiredWorker]:
    """Stop what should not run, move what is misplaced, time out what does not come up.
    Returns the desired workers that need a place, in config order."""
    d = ctx.desired
    order = [dw.worker_id for dw in d.workers]
    idle = {w: s for w in order
            if (s := _idle_for(ctx, w)) >= d.idle_after_s(w)}
    unsaved = {w for w in idle if has_unsaved_work(_session(ctx, w))}
    scaled = {w.worker_id for w in ctx.workers.values() if w.state == W.SCALED_DOWN}
    scaled |= {w for w in order if w not in ctx.workers and d.starts_scaled_down(w)}
    # Free for a waiting item: coming up, or started too recently to have taken one;
    # a worker that has an item already is not (else items wait for nobody).
    fresh = {w.worker_id for w in ctx.workers.values()
             if w.worker_id not in d.hopper_assigned
             and (w.state in (W.PENDING, W.PLACING, W.STARTING)
                  or (w.state == W.RUNNING and w.started_at is not None
                      and ctx.now - w.started_at < d.worker_idle_after_s))}
    decision = select_active(order, idle, scaled, d.min_workers, d.max_workers, d.auto_scale,
                             waiting=d.hopper_waiting, fresh=fresh, unsaved=unsaved)
    run = set(decision.run)
    for wid in decision.scale_down:
        w = ctx.workers[wid]
        ctx.add(StopWorker(wid, w.host_id or "", "idle, above min_workers", scale_down=True))
        ctx.touched_workers.add(wid)
    desired_ids = set(order)
    down = set(decision.scale_down)
    for w in list(ctx.workers.values()):
        if (w.state in WORKER_ACTIVE and w.worker_id not in run and w.worker_id not in down
                and w.worker_id not in ctx.touched_workers):
            forget = w.worker_id not in desired_ids
            why = d.removed_reason if forget else "above max_workers"
            ctx.add(StopWorker(w.worker_id, w.host_id or "", why, forget=forget))
            ctx.touched_workers.add(w.worker_id)
    need: list[DesiredWorker] = []
    for dw in d.workers:
        if dw.worker_id in run:
            _settle(ctx, dw)
            if _needs_place(ctx, dw):
                need.append(dw)
    return need


def _session(ctx: PlanContext, worker_id: str) -> SessionProbe | None:
    w = ctx.workers.get(worker_id)
    if w is None or w.state != W.RUNNING or w.host_id is None:
        return None
    probe = ctx.observed.probes.get(w.host_id)
    return probe.sessions.get(worker_id) if probe else None


def _idle_for(ctx: PlanContext, worker_id: str) -> float:
    """Seconds the worker has been idle, by policies/idle.py (0: busy or unknown)."""
    w = ctx.workers.get(worker_id)
    return idle_for(_session(ctx, worker_id), w.started_at if w else None, ctx.now,
                    has_item=worker_id in ctx.desired.hopper_assigned)


def _needs_place(ctx: PlanContext, dw: DesiredWorker) -> bool:
    """True when `dw` has no live place."""
    w = ctx.workers.get(dw.worker_id)
    return (w is None or w.state in (W.PENDING, W.PLACING, W.STOPPED, W.SCALED_DOWN, W.FAILED)
            or (dw.worker_id in ctx.touched_workers and w.state not in WORKER_ACTIVE))


def _settle(ctx: PlanContext, dw: DesiredWorker) -> None:
    """Act on a placed worker: one whose start timed out is placed again; one whose
    host no longer fits its location moves."""
    if _needs_place(ctx, dw):
        return
    w = ctx.workers[dw.worker_id]
    age = ctx.now - w.state_since
    limit = WORKER_STATE_TIMEOUTS.get(w.state)
    if w.state == W.STARTING and limit is not None and age > limit:
        if start_key(w.worker_id, w.host_id or "", w.attempts) not in ctx.open_intents:
            ctx.add(CleanupOrphan("session", "worker did not come up", host_id=w.host_id,
                                  worker_id=w.worker_id))
            ctx.mark_worker(w.worker_id, W.PENDING,
                            f"did not come up on {w.host_id} in {limit:.0f}s: place again",
                            host_id=None)
            return
    if (w.state == W.RUNNING and w.host_id is not None
            and w.worker_id not in ctx.touched_workers and not eligible(dw, w.host_id, ctx)):
        removed = w.host_id not in ctx.desired.fixed_hosts and \
            ctx.hosts[w.host_id].provider == "static"
        why = (f"host {w.host_id} was removed from the configuration" if removed
               else f"location is now {dw.location}")
        ctx.add(MigrateWorker(w.worker_id, w.host_id, str(dw.location), why))
        ctx.touched_workers.add(w.worker_id)
