"""Planner step for spot interruptions (the decisions are policies/interruption.py). Pure.

- A notice with time left: the host drains (takes no new workers, does not count
  against its pool's max_hosts, so a replacement can be launched) and every worker on it
  gets a MigrateWorker carrying the notice's deadline: stop, commit what is uncommitted,
  push, then be placed again. A checkpoint that failed is tried again on the next
  step while the deadline allows.
- Gone (instance reclaimed, vanished, or deadline passed): the host is marked
  interrupted, as of when it was taken if the cloud says (billing ends there); its
  workers are placed again from what their branches last pushed
  (plan_workers.sync_sessions does that for every host that is gone).
- A rebalance recommendation (elevated risk, no deadline): the host drains early, as
  under a notice, at most `rebalance_per_hour` hosts in any hour.
"""

from __future__ import annotations

from czarina_fleet.controller.core.plan_context import HOST_GONE, PlanContext
from czarina_fleet.model.actions import MigrateWorker, TerminateHost, migrate_key
from czarina_fleet.model.states import WORKER_ACTIVE, HostState, WorkerState
from czarina_fleet.policies.interruption import (
    HostDecision,
    Interruption,
    decide_host,
    interruptions,
    needs_checkpoint,
    rebalance_allowed,
    rebalance_hosts,
)

REBALANCE_REASON = "rebalance recommendation"

H, W = HostState, WorkerState


def plan_interruptions(ctx: PlanContext) -> None:
    found = interruptions(ctx.observed.inventories, ctx.observed.notices, ctx.now)
    for host_id, intr in sorted(found.items()):
        h = ctx.hosts.get(host_id)
        if h is None:
            continue
        decision = decide_host(h.state, intr, HOST_GONE)
        if (decision == HostDecision.DRAIN and h.pool in ctx.listed_pools
                and host_id not in ctx.instances):
            decision = HostDecision.GONE  # taken before its deadline: nothing to reach
        if decision == HostDecision.DRAIN:
            _drain(ctx, intr)
        elif decision == HostDecision.GONE:
            taken = {} if intr.taken_at is None else {"state_since": min(intr.taken_at, ctx.now)}
            ctx.mark_host(host_id, H.INTERRUPTED, intr.reason, **taken)
    for h in list(ctx.hosts.values()):
        if h.state == H.DRAINING and h.host_id not in found:
            _drain(ctx, Interruption(h.host_id, "drained after an interruption notice", None))
    _rebalance(ctx, set(found))


def _rebalance(ctx: PlanContext, interrupted: set[str]) -> None:
    """Hosts the cloud recommends leaving drain early, within the per-hour cap."""
    started = list(ctx.observed.rebalance_started)
    for host_id in sorted(rebalance_hosts(ctx.observed.notices) - interrupted):
        h = ctx.hosts.get(host_id)
        if h is None or h.state != H.READY:
            continue  # draining already, or not in a state to move workers from
        if not rebalance_allowed(started, ctx.now, ctx.desired.rebalance_per_hour):
            return
        started.append(ctx.now)
        ctx.mark_host(host_id, H.DRAINING, f"{REBALANCE_REASON}: moving its workers early")
        _checkpoint_all(ctx, Interruption(host_id, REBALANCE_REASON, None))


def _drain(ctx: PlanContext, intr: Interruption) -> None:
    """Move every worker off the host; once none is left, terminate it (the cloud would
    take it anyway; billing stops sooner, and a notice some clouds give only once
    cannot leave a host draining for ever)."""
    on_host = [w for w in ctx.workers.values()
               if w.host_id == intr.host_id and w.state in WORKER_ACTIVE]
    h = ctx.hosts[intr.host_id]
    if not on_host and h.state == H.DRAINING:
        ctx.add(TerminateHost(h.host_id, h.instance_id, h.pool, f"{intr.reason}: drained"))
        ctx.set_host_state(h.host_id, H.TERMINATING)
        return
    _checkpoint_all(ctx, intr)


def _checkpoint_all(ctx: PlanContext, intr: Interruption) -> None:
    host_id = intr.host_id
    ctx.doomed.add(host_id)
    left = (intr.deadline or ctx.now) - ctx.now
    when = f"in {left:.0f}s" if intr.deadline is not None else "soon"
    if ctx.hosts[host_id].state != H.DRAINING:
        ctx.mark_host(host_id, H.DRAINING,
                      f"{intr.reason}: the cloud takes it {when}; moving its workers")
    ctx.touched_hosts.add(host_id)
    for w in sorted(ctx.workers.values(), key=lambda w: w.worker_id):
        if w.host_id != host_id or w.worker_id in ctx.touched_workers:
            continue
        key = migrate_key(w.worker_id, host_id)
        if not needs_checkpoint(w.state, key in ctx.open_intents):
            continue
        dw = ctx.desired.worker(w.worker_id)
        to = str(dw.location) if dw is not None else w.location
        again = " (again: the last one failed)" if w.state == W.CHECKPOINTING else ""
        ctx.add(MigrateWorker(w.worker_id, host_id, to,
                              f"host {host_id} will be interrupted {when}: "
                              f"checkpoint and move{again}", deadline=intr.deadline))
        ctx.touched_workers.add(w.worker_id)
