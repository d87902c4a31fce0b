"""The planner: `plan(desired, observed, now) -> [Action]`. Pure: no network, no clock,
no disk; everything it needs is in its arguments, so it is fast and testable with plain
data. Every action carries the reason it was planned.

Order of the steps (each in its own small function, hosts in plan_hosts.py, workers in
plan_workers.py):
1. record fixed hosts (local, static) the store does not know;
2. sync with provider inventories: adopt, clean up orphans, follow launches,
   interruptions, vanished instances;
3. step host state machines: timeouts, bootstrap with retries, reachability;
4. sync with host probes: sessions up, gone, unknown, duplicated;
5. choose the running set (min..max, auto-scale) and stop or move the rest;
6. place workers that need a place: least-loaded ready host, else a host coming up,
   else launch one (pool max, fleet max, budget, launch backoff);
7. move running auto/pool workers: off overloaded hosts, and off a partly used host to
   consolidate, within the disruption budget (plan_moves.py);
8. idle pool hosts: start their idle clock, terminate after idle_timeout.
"""

from __future__ import annotations

import re
from collections import Counter

from czarina_fleet.controller.core.desired import Desired, DesiredWorker
from czarina_fleet.controller.core.observed import Observed
from czarina_fleet.controller.core.plan_context import HOST_COMING, HOST_GONE, PlanContext
from czarina_fleet.controller.core.plan_hosts import (
    ensure_fixed_hosts,
    step_hosts,
    sync_instances,
)
from czarina_fleet.controller.core.plan_moves import plan_moves
from czarina_fleet.controller.core.plan_workers import auto_host, step_workers, sync_sessions
from czarina_fleet.model.actions import (
    Action,
    LaunchHost,
    MigrateWorker,
    StartWorker,
    TerminateHost,
)
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.states import WORKER_ACTIVE, HostState, WorkerState
from czarina_fleet.policies.budget import fits, hourly_spend
from czarina_fleet.policies.placement import AUTO, Placer, Slot, groups_for
from czarina_fleet.policies.retry import LAUNCH_BACKOFF_S, LAUNCH_FAILURE_WINDOW_S, backoff

H, W = HostState, WorkerState


def plan(desired: Desired, observed: Observed, now: float) -> list[Action]:
    ctx = PlanContext.build(desired, observed, now)
    ensure_fixed_hosts(ctx)
    sync_instances(ctx)
    step_hosts(ctx)
    sync_sessions(ctx)
    need = step_workers(ctx)
    placer = _placer(ctx)
    launcher = _Launcher(ctx, placer)
    for dw in need:
        _place(ctx, placer, launcher, dw)
    _replace_leaving(ctx, placer, launcher)
    plan_moves(ctx, placer)
    launcher.pool_minimums()
    _idle_hosts(ctx, placer)
    return ctx.actions


def _placer(ctx: PlanContext) -> Placer:
    used: Counter[str] = Counter(
        w.host_id for w in ctx.workers.values()
        if w.host_id is not None and (w.state in WORKER_ACTIVE or w.state == W.PLACING))
    slots = []
    for h in ctx.hosts.values():
        ready = h.state == H.READY
        if not ready and h.state not in HOST_COMING:
            continue
        probe = ctx.observed.probes.get(h.host_id)
        slots.append(Slot(h.host_id, h.slots, used[h.host_id], ready,
                          groups_for(h.host_id, h.pool, auto_host(ctx, h.host_id)),
                          probe.load_per_cpu if probe else 0.0))
    return Placer(slots)


def _replace_leaving(ctx: PlanContext, placer: Placer, launcher: _Launcher) -> None:
    """Workers checkpointing off a host under notice get their next place now (a free
    slot held, else a host launched), not when the old host is gone: the replacement
    boots while they checkpoint."""
    for a in list(ctx.actions):
        if not isinstance(a, MigrateWorker) or a.from_host not in ctx.doomed:
            continue
        dw = ctx.desired.worker(a.worker_id)
        if dw is None:
            continue
        group = _group(dw)
        if placer.take(group, ready=True) is None and placer.take(group, ready=False) is None:
            launcher.launch_for(dw)


def _group(dw: DesiredWorker) -> str:
    if dw.host_id is not None:
        return f"host:{dw.host_id}"
    if dw.pool is not None:
        return f"pool:{dw.pool}"
    return AUTO


def _place(ctx: PlanContext, placer: Placer, launcher: _Launcher, dw: DesiredWorker) -> None:
    wid = dw.worker_id
    w = ctx.workers.get(wid)
    attempts = w.attempts if w else 0
    if w is not None and w.state == W.PLACING and w.host_id in ctx.hosts:
        h = ctx.hosts[w.host_id]  # its slot is already counted on that host
        if h.state == H.READY:
            ctx.add(StartWorker(wid, h.host_id, str(dw.location), attempts + 1,
                                f"host {h.host_id} is ready"))
            ctx.touched_workers.add(wid)
            return
        if h.state in HOST_COMING:
            return
    group = _group(dw)
    host_id = placer.take(group, ready=True)
    if host_id is not None:
        ctx.add(StartWorker(wid, host_id, str(dw.location), attempts + 1,
                            "least-loaded eligible host with a free slot"))
        ctx.touched_workers.add(wid)
        return
    host_id = placer.take(group, ready=False)
    why = None
    if host_id is None:
        host_id, why = launcher.launch_for(dw)
    if host_id is not None:
        if w is None or w.state != W.PLACING or w.host_id != host_id:
            ctx.mark_worker(wid, W.PLACING, f"waiting for host {host_id}", host_id=host_id,
                            location=str(dw.location))
        return
    reason = f"no place: {why or 'no eligible host has a free slot'}"
    if w is None or w.state not in (W.PENDING,) or w.last_error != reason:
        ctx.mark_worker(wid, W.PENDING, reason, host_id=None, last_error=reason,
                        location=str(dw.location))


class _Launcher:
    """Launch decisions under the pool max, the fleet budget and launch backoff."""

    def __init__(self, ctx: PlanContext, placer: Placer) -> None:
        self.ctx = ctx
        self.placer = placer
        self.alive = ctx.alive_by_pool(doomed_leave=True)
        self.spend = hourly_spend(ctx.hosts.values(), set(ctx.instances))
        self.next_index: dict[str, int] = {}
        failures: dict[str, list[float]] = {}
        for h in ctx.hosts.values():
            if h.pool is not None:
                self._note_index(h.pool, h.host_id)
                if h.state == H.LAUNCH_FAILED and ctx.now - h.state_since < LAUNCH_FAILURE_WINDOW_S:
                    failures.setdefault(h.pool, []).append(h.state_since)
        for inst in ctx.instances.values():
            self._note_index(inst.pool, inst.host_id)
        self.failures = failures
        # Hosts the controller keeps a connection to (all but the local machine): no
        # launch past what its open file limit leaves room for (ConnectionLimit). A host
        # under a spot notice leaves the count, as for max_hosts: its replacement boots
        # while it is taken, and connects once its connection is gone.
        self.connected = sum(1 for h in ctx.hosts.values()
                             if h.provider != "local" and h.state not in HOST_GONE
                             and h.host_id not in ctx.doomed)

    def _note_index(self, pool: str, host_id: str) -> None:
        m = re.fullmatch(re.escape(pool) + r"-(\d+)", host_id)
        if m:
            self.next_index[pool] = max(self.next_index.get(pool, 1), int(m.group(1)) + 1)

    def launch_for(self, dw: DesiredWorker) -> tuple[str | None, str | None]:
        """Launch a host for `dw` (its pool, or for `auto` the first pool that can) and
        take a slot on it. Returns (host id, None) or (None, why not)."""
        pools = [dw.pool] if dw.pool is not None else (
            list(self.ctx.desired.pools) if dw.host_id is None else [])
        if not pools:
            h = self.ctx.hosts.get(dw.host_id or "")
            if h is None:
                return None, f"host {dw.host_id} is not configured"
            if h.state != H.READY:
                return None, f"host {dw.host_id} is {h.state}"
            on = sorted(w.worker_id for w in self.ctx.workers.values()
                        if w.host_id == h.host_id and w.state in WORKER_ACTIVE)
            return None, (f"host {h.host_id} is full ({h.slots} slot"
                          f"{'s' if h.slots != 1 else ''}: {', '.join(on) or 'in use'}); "
                          f"raise its slots or move a worker off it")
        whys = []
        for pool in pools:
            host_id, why = self.launch(pool, f"worker {dw.worker_id} needs a slot")
            if host_id is not None:
                self.placer.take(f"host:{host_id}", ready=False)
                return host_id, None
            whys.append(why)
        return None, "; ".join(dict.fromkeys(w for w in whys if w))  # each reason once

    def launch(self, pool_name: str, reason: str) -> tuple[str | None, str | None]:
        ctx = self.ctx
        pool = ctx.desired.pools.get(pool_name)
        if pool is None:
            return None, f"no pool named {pool_name!r}"
        if self.alive[pool_name] >= pool.max_hosts:
            return None, f"pool {pool_name} is at its max_hosts ({pool.max_hosts})"
        limit = ctx.observed.connection_limit
        if limit is not None and self.connected >= limit.hosts:
            # Said in the same words every step, so a waiting worker's event is written
            # once (mark_worker only on a changed reason), not every tick.
            return None, (f"the controller keeps at most {limit.hosts} host connections "
                          f"and has that many hosts: {limit.why}")
        fails = self.failures.get(pool_name, [])
        if fails and ctx.now < max(fails) + backoff(len(fails), LAUNCH_BACKOFF_S):
            return None, f"pool {pool_name} is backing off after {len(fails)} failed launches"
        quote = ctx.observed.quotes.get(pool_name)
        if quote is None:
            return None, f"no price quote for pool {pool_name}"
        if not fits(self.spend, quote.usd_per_hour, ctx.desired.budget_per_hour):
            return None, (f"budget ${ctx.desired.budget_per_hour}/h would be exceeded "
                          f"(${self.spend:.4f}/h + ${quote.usd_per_hour:.4f}/h)")
        index = self.next_index.get(pool_name, 1)
        self.next_index[pool_name] = index + 1
        host_id = f"{pool_name}-{index}"
        ctx.add(LaunchHost(host_id, pool_name, pool.provider, quote.shape, quote.region,
                           quote.spot, quote.usd_per_hour, pool.slots_per_host, reason,
                           price_source=quote.source))
        self.spend += quote.usd_per_hour
        self.alive[pool_name] += 1
        self.connected += 1
        ctx.hosts[host_id] = HostRecord(
            host_id, pool.provider, H.REQUESTED, ctx.now, pool.slots_per_host, pool=pool_name,
            shape=quote.shape, region=quote.region, spot=quote.spot,
            price_per_hour=quote.usd_per_hour)
        ctx.touched_hosts.add(host_id)
        self.placer.add(Slot(host_id, pool.slots_per_host, 0, False,
                             groups_for(host_id, pool_name, True)))
        return host_id, None

    def pool_minimums(self) -> None:
        for name, pool in self.ctx.desired.pools.items():
            while self.alive[name] < pool.min_hosts:
                if self.launch(name, f"pool minimum of {pool.min_hosts} hosts")[0] is None:
                    break


def _idle_hosts(ctx: PlanContext, placer: Placer) -> None:
    """Pool hosts with no workers start an idle clock; past idle_timeout (and above the
    pool's min_hosts) they are terminated. A host that gets work again stops its clock."""
    alive: Counter[str] = Counter(
        h.pool for h in ctx.hosts.values() if h.pool is not None and h.state == H.READY)
    for h in list(ctx.hosts.values()):
        if h.pool is None or h.state != H.READY or h.host_id in ctx.touched_hosts:
            continue
        busy = placer.used(h.host_id) > 0
        if busy:
            if h.idle_since is not None:
                ctx.mark_host(h.host_id, H.READY, "has workers again", idle_since=None)
            continue
        if h.idle_since is None:
            ctx.mark_host(h.host_id, H.READY, "no workers: idle clock started",
                          idle_since=ctx.now)
            continue
        pool = ctx.desired.pools.get(h.pool)
        idle_for = ctx.now - h.idle_since
        timeout = ctx.desired.host_idle_after_s
        if idle_for >= timeout and alive[h.pool] > (pool.min_hosts if pool else 0):
            ctx.add(TerminateHost(h.host_id, h.instance_id, h.pool,
                                  f"idle for {idle_for:.0f}s ({_timeout_name(ctx)} "
                                  f"{timeout:.0f}s)"))
            ctx.set_host_state(h.host_id, H.TERMINATING)
            alive[h.pool] -= 1


def _timeout_name(ctx: PlanContext) -> str:
    d = ctx.desired
    return "hopper_idle_timeout" if d.host_idle_after_s < d.idle_timeout_s else "idle_timeout"
