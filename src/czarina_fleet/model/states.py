"""Host and worker lifecycles as explicit transition tables (checked on every change),
with a timeout per state. In the spirit of Ray autoscaler v2's instance_manager/common.py.
"""

from __future__ import annotations

from enum import StrEnum


class HostState(StrEnum):
    REQUESTED = "requested"          # intent recorded, launch not yet sent
    PROVISIONING = "provisioning"    # cloud accepted the launch; no address yet
    BOOTING = "booting"              # has an address; waiting for sshd
    BOOTSTRAPPING = "bootstrapping"  # preflight + clone in progress
    READY = "ready"                  # accepts workers
    DRAINING = "draining"            # no new workers; checkpointing the ones on it
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    LAUNCH_FAILED = "launch_failed"
    BOOTSTRAP_FAILED = "bootstrap_failed"
    INTERRUPTED = "interrupted"      # spot capacity reclaimed
    UNREACHABLE = "unreachable"      # was ready, probe fails; may come back


class WorkerState(StrEnum):
    PENDING = "pending"              # desired, not yet placed
    PLACING = "placing"              # waiting for a host (maybe a new one)
    STARTING = "starting"            # session being created on its host
    RUNNING = "running"
    CHECKPOINTING = "checkpointing"  # stopped, committing + pushing its branch before a move
    STOPPED = "stopped"              # removed, or above max_workers
    SCALED_DOWN = "scaled_down"      # stopped by auto-scale (idle); comes back on demand
    FAILED = "failed"


H, W = HostState, WorkerState
HOST_TRANSITIONS: dict[HostState, frozenset[HostState]] = {
    H.REQUESTED: frozenset({H.PROVISIONING, H.BOOTING, H.LAUNCH_FAILED, H.TERMINATING}),
    H.PROVISIONING: frozenset({H.BOOTING, H.LAUNCH_FAILED, H.TERMINATING, H.INTERRUPTED}),
    H.BOOTING: frozenset({H.BOOTSTRAPPING, H.READY, H.TERMINATING, H.INTERRUPTED}),
    H.BOOTSTRAPPING: frozenset({H.READY, H.BOOTSTRAP_FAILED, H.TERMINATING, H.INTERRUPTED}),
    H.READY: frozenset({H.DRAINING, H.TERMINATING, H.INTERRUPTED, H.UNREACHABLE}),
    H.UNREACHABLE: frozenset({H.READY, H.DRAINING, H.TERMINATING, H.INTERRUPTED}),
    H.DRAINING: frozenset({H.TERMINATING, H.READY, H.INTERRUPTED}),
    H.TERMINATING: frozenset({H.TERMINATED}),
    H.LAUNCH_FAILED: frozenset({H.TERMINATING, H.TERMINATED}),
    H.BOOTSTRAP_FAILED: frozenset({H.BOOTSTRAPPING, H.TERMINATING}),
    H.INTERRUPTED: frozenset({H.TERMINATING, H.TERMINATED}),
    H.TERMINATED: frozenset(),
}
WORKER_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    W.PENDING: frozenset({W.PLACING, W.STARTING, W.STOPPED}),
    W.PLACING: frozenset({W.STARTING, W.PENDING, W.STOPPED}),
    W.STARTING: frozenset({W.RUNNING, W.FAILED, W.PENDING, W.STOPPED, W.SCALED_DOWN}),
    # Idle is not a state: it is how long a running worker has shown no sign of work,
    # read from its probe by policies/idle.py (status and auto-scale both ask it).
    W.RUNNING: frozenset({W.CHECKPOINTING, W.STOPPED, W.SCALED_DOWN, W.FAILED, W.PENDING}),
    # Checkpointed, it waits (pending) to be placed where it moves.
    # A move with a target host (rebalancing, consolidation) waits there (placing).
    W.CHECKPOINTING: frozenset({W.PENDING, W.PLACING, W.RUNNING, W.STOPPED, W.FAILED}),
    # A stopped, scaled-down or failed worker is started again directly: the planner
    # places it like a pending one.
    W.FAILED: frozenset({W.PENDING, W.PLACING, W.STARTING, W.STOPPED}),
    W.STOPPED: frozenset({W.PENDING, W.PLACING, W.STARTING}),
    W.SCALED_DOWN: frozenset({W.PENDING, W.PLACING, W.STARTING, W.STOPPED}),
}

# Seconds a host or worker may stay in a state before the planner acts on it.
HOST_STATE_TIMEOUTS: dict[HostState, float] = {
    H.REQUESTED: 120,
    H.PROVISIONING: 300,
    H.BOOTING: 300,
    H.BOOTSTRAPPING: 600,
    H.TERMINATING: 300,
    H.UNREACHABLE: 900,
}
# A worker waiting for a host (PLACING) follows its host's timeouts; a checkpoint is
# bounded by the executor's action timeout or the spot notice's deadline.
WORKER_STATE_TIMEOUTS: dict[WorkerState, float] = {
    W.STARTING: 300,
}
HOST_ALIVE = frozenset({H.REQUESTED, H.PROVISIONING, H.BOOTING, H.BOOTSTRAPPING, H.READY,
                        H.UNREACHABLE, H.DRAINING})
# A host in these states may still be billed (its instance may exist): the budget counts
# them before a launch, and the ledger accrues them.
HOST_MAY_BILL = HOST_ALIVE | frozenset({H.TERMINATING, H.BOOTSTRAP_FAILED})
WORKER_ACTIVE = frozenset({W.STARTING, W.RUNNING, W.CHECKPOINTING})


class IllegalTransition(Exception):
    pass


def check_host_transition(old: HostState, new: HostState) -> None:
    if old != new and new not in HOST_TRANSITIONS[old]:
        raise IllegalTransition(f"host: {old} -> {new} is not allowed")


def check_worker_transition(old: WorkerState, new: WorkerState) -> None:
    if old != new and new not in WORKER_TRANSITIONS[old]:
        raise IllegalTransition(f"worker: {old} -> {new} is not allowed")
