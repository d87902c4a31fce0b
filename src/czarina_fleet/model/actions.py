"""What the planner asks the executor to do. Frozen data; each action says why (`reason`),
how it reads to a person (`describe()`), its idempotency key (`key`: the same action
planned twice has the same key, so it is recorded and made once) and its `phase`
(the executor runs phases in order, the actions of one phase concurrently: records
first, then hosts, then workers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.states import HostState, WorkerState

# Record fields to set, (name, value); each value has its HostRecord/WorkerRecord
# field's type, as `Store.transition_*(**fields)` takes them.
Fields = tuple[tuple[str, Any], ...]

PHASE_RECORD = 0   # state bookkeeping: marks, adoptions
PHASE_STOP = 1     # free capacity first: stop, migrate, terminate, clean up
PHASE_HOST = 2     # launch, bootstrap
PHASE_START = 3    # start workers on ready hosts


# Intent keys the planner also looks up (is this action already in flight?): built here
# only, so the planner and the actions can never disagree on a key's shape.
def launch_key(host_id: str) -> str:
    return f"launch:{host_id}"


def start_key(worker_id: str, host_id: str, attempt: int) -> str:
    return f"start:{worker_id}:{host_id}:{attempt}"


def migrate_key(worker_id: str, from_host: str) -> str:
    return f"migrate:{worker_id}:{from_host}"


@dataclass(frozen=True, slots=True)
class LaunchHost:
    host_id: str
    pool: str
    provider: str
    shape: str
    region: str
    spot: bool
    price_per_hour: float
    slots: int
    reason: str
    price_source: str = ""  # the quote's source: where the price came from, and when
    phase: ClassVar[int] = PHASE_HOST

    @property
    def key(self) -> str:
        return launch_key(self.host_id)

    def describe(self) -> str:
        market = "spot" if self.spot else "on-demand"
        return (f"launch host {self.host_id} in pool {self.pool} ({self.shape} {market} in "
                f"{self.region}, ${self.price_per_hour:.4f}/h): {self.reason}")


@dataclass(frozen=True, slots=True)
class BootstrapHost:
    host_id: str
    attempt: int
    reason: str
    phase: ClassVar[int] = PHASE_HOST

    @property
    def key(self) -> str:
        return f"bootstrap:{self.host_id}:{self.attempt}"

    def describe(self) -> str:
        return f"bootstrap host {self.host_id} (attempt {self.attempt}): {self.reason}"


@dataclass(frozen=True, slots=True)
class TerminateHost:
    host_id: str
    instance_id: str | None
    pool: str | None
    reason: str
    phase: ClassVar[int] = PHASE_STOP

    @property
    def key(self) -> str:
        return f"terminate:{self.host_id}"

    def describe(self) -> str:
        return f"terminate host {self.host_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AdoptHost:
    """Record a host that exists (found by ownership tag, or a configured one)."""

    host: HostRecord
    reason: str
    phase: ClassVar[int] = PHASE_RECORD

    @property
    def key(self) -> str:
        return f"adopt-host:{self.host.host_id}"

    def describe(self) -> str:
        return f"adopt host {self.host.host_id} as {self.host.state}: {self.reason}"


@dataclass(frozen=True, slots=True)
class MarkHost:
    host_id: str
    state: HostState
    reason: str
    fields: Fields = ()
    phase: ClassVar[int] = PHASE_RECORD

    @property
    def key(self) -> str:
        return f"mark-host:{self.host_id}:{self.state}"

    def describe(self) -> str:
        return f"mark host {self.host_id} {self.state}: {self.reason}"


@dataclass(frozen=True, slots=True)
class StartWorker:
    worker_id: str
    host_id: str
    location: str
    attempt: int
    reason: str
    phase: ClassVar[int] = PHASE_START

    @property
    def key(self) -> str:
        return start_key(self.worker_id, self.host_id, self.attempt)

    def describe(self) -> str:
        return f"start worker {self.worker_id} on {self.host_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class StopWorker:
    worker_id: str
    host_id: str
    reason: str
    forget: bool = False  # no longer desired: drop its record once stopped
    scale_down: bool = False  # auto-scale's stop: the worker comes back on demand
    phase: ClassVar[int] = PHASE_STOP

    @property
    def key(self) -> str:
        return f"stop:{self.worker_id}:{self.host_id}"

    def describe(self) -> str:
        verb = "scale down" if self.scale_down else "stop"
        return f"{verb} worker {self.worker_id} on {self.host_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class MigrateWorker:
    """Stop, checkpoint (commit + push its branch), and leave it pending for placement
    at `to_location`; no commit is lost."""

    worker_id: str
    from_host: str
    to_location: str
    reason: str
    deadline: float | None = None  # a spot notice's: the checkpoint must finish by then
    # The host it starts on next (rebalancing, consolidation: its slot is held there);
    # None: placed again like any pending worker.
    to_host: str | None = None
    phase: ClassVar[int] = PHASE_STOP

    @property
    def key(self) -> str:
        return migrate_key(self.worker_id, self.from_host)

    def describe(self) -> str:
        to = self.to_host or self.to_location
        return f"migrate worker {self.worker_id} from {self.from_host} to {to}: {self.reason}"


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """Write a decision that changes nothing to the event log (a move the disruption
    budget refused). The planner plans one only when the log does not say it yet."""

    entity: str
    entity_id: str
    reason: str
    phase: ClassVar[int] = PHASE_RECORD

    @property
    def key(self) -> str:
        return f"note:{self.entity}:{self.entity_id}:{self.reason}"

    def describe(self) -> str:
        return f"note on {self.entity} {self.entity_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AdoptWorker:
    worker_id: str
    host_id: str
    location: str
    reason: str
    phase: ClassVar[int] = PHASE_RECORD

    @property
    def key(self) -> str:
        return f"adopt-worker:{self.worker_id}:{self.host_id}"

    def describe(self) -> str:
        return f"adopt worker {self.worker_id} running on {self.host_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class MarkWorker:
    worker_id: str
    state: WorkerState
    reason: str
    fields: Fields = ()
    phase: ClassVar[int] = PHASE_RECORD

    @property
    def key(self) -> str:
        return f"mark-worker:{self.worker_id}:{self.state}"

    def describe(self) -> str:
        return f"mark worker {self.worker_id} {self.state}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CleanupOrphan:
    """Remove something we own that nothing wants: an instance (`instance_id` in `pool`)
    or a session (`worker_id` on `host_id`)."""

    what: str  # "instance" | "session"
    reason: str
    pool: str | None = None
    instance_id: str | None = None
    host_id: str | None = None
    worker_id: str | None = None
    phase: ClassVar[int] = PHASE_STOP

    @property
    def key(self) -> str:
        where = self.pool or self.host_id
        return f"cleanup:{self.what}:{where}:{self.instance_id or self.worker_id}"

    def describe(self) -> str:
        target = (f"instance {self.instance_id} in pool {self.pool}" if self.what == "instance"
                  else f"session of {self.worker_id} on {self.host_id}")
        return f"clean up orphan {target}: {self.reason}"


Action = (LaunchHost | BootstrapHost | TerminateHost | AdoptHost | MarkHost | StartWorker
          | StopWorker | MigrateWorker | AdoptWorker | MarkWorker | CleanupOrphan | NoteEvent)
