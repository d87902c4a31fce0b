"""The planner's working state for one plan: indexes over the observed data, the host
states as this plan leaves them, and the actions decided so far. Pure (no I/O)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from czarina_fleet.controller.core.desired import Desired
from czarina_fleet.controller.core.observed import Observed
from czarina_fleet.model.actions import Action, MarkHost, MarkWorker
from czarina_fleet.model.fleet import HostRecord, IntentStatus, WorkerRecord
from czarina_fleet.model.states import (
    HOST_TRANSITIONS,
    WORKER_TRANSITIONS,
    HostState,
    WorkerState,
)
from czarina_fleet.providers.base import Instance, InstanceState

H, W = HostState, WorkerState
# Hosts whose workers must go elsewhere.
HOST_GONE = frozenset({H.TERMINATING, H.TERMINATED, H.INTERRUPTED, H.LAUNCH_FAILED})
# Hosts still coming up: workers may wait for a slot on them.
HOST_COMING = frozenset({H.REQUESTED, H.PROVISIONING, H.BOOTING, H.BOOTSTRAPPING,
                         H.BOOTSTRAP_FAILED})


@dataclass
class PlanContext:
    desired: Desired
    observed: Observed
    now: float
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    workers: dict[str, WorkerRecord] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)   # host id -> instance
    listed_pools: set[str] = field(default_factory=set)
    open_intents: dict[str, str] = field(default_factory=dict)     # key -> kind
    touched_hosts: set[str] = field(default_factory=set)
    touched_workers: set[str] = field(default_factory=set)
    # Hosts under a spot notice: they take no workers and do not count against pool max.
    doomed: set[str] = field(default_factory=set)
    actions: list[Action] = field(default_factory=list)

    @classmethod
    def build(cls, desired: Desired, observed: Observed, now: float) -> PlanContext:
        ctx = cls(desired, observed, now, dict(observed.hosts), dict(observed.workers))
        for pool, insts in observed.inventories.items():
            ctx.listed_pools.add(pool)
            for inst in insts:
                if inst.state != InstanceState.TERMINATED:
                    ctx.instances[inst.host_id] = inst
        ctx.open_intents = {i.key: i.kind for i in observed.intents
                            if i.status == IntentStatus.OPEN}
        return ctx

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def mark_host(self, host_id: str, state: HostState, reason: str,
                  **fields: object) -> bool:
        """Plan a host state change if the table allows it; the context then sees the
        host in its new state. Returns False (and plans nothing) when not allowed."""
        h = self.hosts[host_id]
        if h.state != state and state not in HOST_TRANSITIONS[h.state]:
            return False
        self.add(MarkHost(host_id, state, reason, tuple(sorted(fields.items()))))
        self.hosts[host_id] = dataclasses.replace(h, state=state, **fields)  # type: ignore[arg-type]
        self.touched_hosts.add(host_id)
        return True

    def set_host_state(self, host_id: str, state: HostState) -> None:
        """Record the state an action (terminate, bootstrap) will leave a host in."""
        self.hosts[host_id] = dataclasses.replace(self.hosts[host_id], state=state)
        self.touched_hosts.add(host_id)

    def mark_worker(self, worker_id: str, state: WorkerState, reason: str,
                    **fields: object) -> None:
        """Plan a worker state change; an illegal direct one goes through FAILED (every
        state may fail, and FAILED may return to PENDING)."""
        w = self.workers.get(worker_id)
        if w is not None and w.state != state and state not in WORKER_TRANSITIONS[w.state]:
            if W.FAILED in WORKER_TRANSITIONS[w.state]:
                self.add(MarkWorker(worker_id, W.FAILED, reason))
        self.add(MarkWorker(worker_id, state, reason, tuple(sorted(fields.items()))))
        base = w or WorkerRecord(worker_id, state, self.now)
        self.workers[worker_id] = dataclasses.replace(base, state=state, **fields)  # type: ignore[arg-type]
        self.touched_workers.add(worker_id)

    def alive_by_pool(self, *, doomed_leave: bool = False) -> Counter[str]:
        """Hosts that count against each pool's max_hosts: every host not gone. With
        `doomed_leave`, hosts under a spot notice do not count (their replacement may
        launch before they are taken)."""
        return Counter(h.pool for h in self.hosts.values()
                       if h.pool is not None and h.state not in HOST_GONE
                       and not (doomed_leave and h.host_id in self.doomed))

    def pool_alive(self, pool: str) -> int:
        return self.alive_by_pool()[pool]
