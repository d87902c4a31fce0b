"""Planner steps for hosts: sync with what providers report, then step each host's state
machine (timeouts, bootstrap retries, reachability, interruptions). Pure."""

from __future__ import annotations

from czarina_fleet.controller.core.plan_context import PlanContext
from czarina_fleet.controller.core.plan_spot import plan_interruptions
from czarina_fleet.model.actions import (
    AdoptHost,
    BootstrapHost,
    CleanupOrphan,
    TerminateHost,
    launch_key,
)
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.states import HOST_STATE_TIMEOUTS, WORKER_ACTIVE, HostState
from czarina_fleet.policies.retry import BOOTSTRAP_BACKOFF_S, MAX_BOOTSTRAP_ATTEMPTS, backoff
from czarina_fleet.providers.base import Instance, InstanceState

H = HostState


def ensure_fixed_hosts(ctx: PlanContext) -> None:
    """Record the local machine and configured static hosts the store does not know."""
    for fh in ctx.desired.fixed_hosts.values():
        known = ctx.hosts.get(fh.host_id)
        if known is not None and known.state != H.TERMINATED:
            continue
        local = fh.provider == "local"
        rec = HostRecord(
            host_id=fh.host_id, provider=fh.provider,
            state=H.READY if local else H.BOOTING, state_since=ctx.now, slots=fh.slots,
            address=fh.address, port=fh.port, user=fh.user, work_dir=fh.work_dir,
        )
        ctx.add(AdoptHost(rec, "configured " + ("local machine" if local else "static host")))
        ctx.hosts[fh.host_id] = rec  # not "touched": a static host is bootstrapped at once
    _retire_removed_static_hosts(ctx)


def _retire_removed_static_hosts(ctx: PlanContext) -> None:
    """A static host taken out of the configuration takes no new workers (it is no
    place for any location any more); the workers on it move by their location
    (plan_workers._settle, through a checkpoint), and it is retired once empty. One that
    cannot be reached is retired at once: its workers are placed again."""
    for h in list(ctx.hosts.values()):
        if (h.provider != "static" or h.host_id in ctx.desired.fixed_hosts
                or h.state in (H.TERMINATING, H.TERMINATED)):
            continue
        busy = any(w.host_id == h.host_id and w.state in WORKER_ACTIVE
                   for w in ctx.workers.values())
        if busy and h.state in (H.READY, H.DRAINING):
            continue
        ctx.mark_host(h.host_id, H.TERMINATING, "removed from the configuration")
        ctx.mark_host(h.host_id, H.TERMINATED, "removed from the configuration (the "
                      "machine itself is not ours to stop)")


def sync_instances(ctx: PlanContext) -> None:
    """Adopt owned instances the store does not know, clean up true orphans, follow
    launches, and notice interruptions and instances that vanished."""
    for pool in sorted(ctx.listed_pools):
        for inst in ctx.observed.inventories[pool]:
            if inst.state != InstanceState.TERMINATED:
                _sync_instance(ctx, inst)
    plan_interruptions(ctx)
    for h in list(ctx.hosts.values()):
        if (h.pool in ctx.listed_pools and h.host_id not in ctx.instances
                and h.host_id not in ctx.touched_hosts):
            _instance_missing(ctx, h)


def _sync_instance(ctx: PlanContext, inst: Instance) -> None:
    h = ctx.hosts.get(inst.host_id)
    pool = ctx.desired.pools.get(inst.pool)
    if h is not None and h.state == H.TERMINATED and h.instance_id not in (None,
                                                                         inst.instance_id):
        h = None  # the id was used again (a lost or rolled back store): another machine
    if h is None:
        if pool is not None and not inst.interrupted and ctx.pool_alive(inst.pool) < pool.max_hosts:
            rec = _record_from(ctx, inst, pool.slots_per_host)
            ctx.add(AdoptHost(rec, "found by ownership tag but not in the store"))
            ctx.hosts[rec.host_id] = rec
            ctx.touched_hosts.add(rec.host_id)
        else:
            why = "its pool is no longer configured" if pool is None else "pool is full"
            ctx.add(CleanupOrphan("instance", f"owned instance unknown to the store; {why}",
                                  pool=inst.pool, instance_id=inst.instance_id,
                                  host_id=inst.host_id))
        return
    if h.state == H.TERMINATED:
        ctx.add(CleanupOrphan("instance", f"host {h.host_id} is terminated but its instance "
                              "still runs", pool=inst.pool, instance_id=inst.instance_id,
                              host_id=h.host_id))
    elif h.state in (H.LAUNCH_FAILED, H.INTERRUPTED) and h.host_id not in ctx.touched_hosts:
        _terminate(ctx, h, f"host is {h.state} but its instance still exists",
                   inst.instance_id)
    elif h.state in (H.REQUESTED, H.PROVISIONING) and inst.state == InstanceState.RUNNING:
        c = inst.connect
        if c is not None:
            ctx.mark_host(h.host_id, H.BOOTING, "instance running", instance_id=inst.instance_id,
                          address=c.address, port=c.port, user=c.user)
        elif h.state == H.REQUESTED:
            ctx.mark_host(h.host_id, H.PROVISIONING, "instance accepted",
                          instance_id=inst.instance_id)


def _record_from(ctx: PlanContext, inst: Instance, slots: int) -> HostRecord:
    quote = ctx.observed.quotes.get(inst.pool)
    price = quote.usd_per_hour if quote and quote.shape == inst.shape else 0.0
    c = inst.connect
    running = inst.state == InstanceState.RUNNING and c is not None
    return HostRecord(
        host_id=inst.host_id, provider=ctx.desired.pools[inst.pool].provider,
        state=H.BOOTING if running else H.PROVISIONING, state_since=ctx.now, slots=slots,
        pool=inst.pool, address=c.address if c else None, port=c.port if c else 22,
        user=c.user if c else None, work_dir=ctx.desired.pools[inst.pool].work_dir,
        instance_id=inst.instance_id, shape=inst.shape, region=inst.region, spot=inst.spot,
        price_per_hour=price, launched_at=inst.launched_at or ctx.now,
    )


def _instance_missing(ctx: PlanContext, h: HostRecord) -> None:
    if h.state == H.REQUESTED:
        if launch_key(h.host_id) not in ctx.open_intents:
            ctx.mark_host(h.host_id, H.LAUNCH_FAILED, "launch never completed")
    elif h.state == H.INTERRUPTED:  # billing ended when it was taken: keep that time
        ctx.mark_host(h.host_id, H.TERMINATED, "instance gone", state_since=h.state_since)
    elif h.state == H.TERMINATING:
        ctx.mark_host(h.host_id, H.TERMINATED, "instance gone")
    elif h.state not in (H.TERMINATED, H.LAUNCH_FAILED):
        ctx.mark_host(h.host_id, H.INTERRUPTED, "instance gone from the provider")


def step_hosts(ctx: PlanContext) -> None:
    """Timeouts, bootstrap (and its retries), reachability, draining."""
    for h in list(ctx.hosts.values()):
        if h.host_id not in ctx.touched_hosts:
            _step_host(ctx, h)


def _step_host(ctx: PlanContext, h: HostRecord) -> None:
    age = ctx.now - h.state_since
    pool = ctx.desired.pools.get(h.pool) if h.pool else None
    timeout = HOST_STATE_TIMEOUTS.get(h.state)
    if h.state == H.BOOTING and pool is not None:
        timeout = pool.boot_timeout_s
    probe = ctx.observed.probes.get(h.host_id)
    if h.state in (H.REQUESTED, H.PROVISIONING, H.BOOTING) and h.pool is not None:
        if timeout is not None and age > timeout:
            _terminate(ctx, h, f"stuck {h.state} for {age:.0f}s (limit {timeout:.0f}s)")
        elif h.state == H.BOOTING and h.address:
            _bootstrap(ctx, h, "instance has an address")
    elif h.state == H.BOOTING:  # a static host, not yet bootstrapped
        _bootstrap(ctx, h, "configured host not yet prepared")
    elif h.state == H.BOOTSTRAPPING:
        if timeout is not None and age > timeout and not _intent_open(ctx, "bootstrap", h):
            ctx.mark_host(h.host_id, H.BOOTSTRAP_FAILED, f"bootstrap took over {timeout:.0f}s")
    elif h.state == H.BOOTSTRAP_FAILED:
        if h.attempts >= MAX_BOOTSTRAP_ATTEMPTS and h.pool is not None:
            _terminate(ctx, h, f"gave up after {h.attempts} failed bootstraps: {h.last_error}")
        elif age >= backoff(h.attempts, BOOTSTRAP_BACKOFF_S):
            _bootstrap(ctx, h, f"retry after failure: {h.last_error}")
    elif h.state == H.READY and probe is not None and not probe.reachable:
        ctx.mark_host(h.host_id, H.UNREACHABLE, f"probe failed: {probe.error}")
    elif h.state == H.UNREACHABLE:
        if probe is not None and probe.reachable:
            ctx.mark_host(h.host_id, H.READY, "reachable again")
        elif timeout is not None and age > timeout and h.pool is not None:
            _terminate(ctx, h, f"unreachable for {age:.0f}s")
    elif h.state == H.TERMINATING and h.pool is None:
        ctx.mark_host(h.host_id, H.TERMINATED, "released")
    elif h.state == H.TERMINATING and timeout is not None and age > timeout:
        ctx.add(TerminateHost(h.host_id, h.instance_id, h.pool, "terminate did not finish"))
        ctx.touched_hosts.add(h.host_id)


def _intent_open(ctx: PlanContext, kind: str, h: HostRecord) -> bool:
    return f"{kind}:{h.host_id}:{h.attempts}" in ctx.open_intents


def _bootstrap(ctx: PlanContext, h: HostRecord, reason: str) -> None:
    ctx.add(BootstrapHost(h.host_id, h.attempts + 1, reason))
    ctx.set_host_state(h.host_id, H.BOOTSTRAPPING)


def _terminate(ctx: PlanContext, h: HostRecord, reason: str,
               instance_id: str | None = None) -> None:
    ctx.add(TerminateHost(h.host_id, instance_id or h.instance_id, h.pool, reason))
    ctx.set_host_state(h.host_id, H.TERMINATING)
