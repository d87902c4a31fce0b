"""What the controller knows about the live fleet: records kept in the store, and what
a probe of a host reports. Plain frozen data; the planner reads these, never I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from czarina_fleet.model.states import HostState, WorkerState

LOCAL_HOST_ID = "local"


@dataclass(frozen=True, slots=True)
class HostRecord:
    """One machine the fleet can run workers on (static, local, or launched)."""

    host_id: str                     # ours: "local", a static host name, or "<pool>-<n>"
    provider: str                    # local | static | aws | gcp | azure | lab | fake | ...
    state: HostState
    state_since: float
    slots: int
    pool: str | None = None          # None for local and static hosts
    address: str | None = None
    port: int = 22
    user: str | None = None
    work_dir: str = "~/czarina-work"
    instance_id: str | None = None   # the cloud's id, once known
    shape: str | None = None
    region: str | None = None
    spot: bool = False
    price_per_hour: float = 0.0      # recorded at launch; reports never re-price
    launched_at: float | None = None
    intent_key: str | None = None    # the idempotency key it was launched with
    attempts: int = 0                # bootstrap attempts so far
    last_error: str | None = None
    idle_since: float | None = None  # when its last worker left (idle shutdown clock)
    price_source: str | None = None  # where price_per_hour came from, and when fetched


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    worker_id: str
    state: WorkerState
    state_since: float
    host_id: str | None = None
    location: str = "local"          # the desired location it was placed for
    attempts: int = 0
    last_error: str | None = None
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class CommitInfo:
    hash: str
    time: float
    subject: str


@dataclass(frozen=True, slots=True)
class SessionProbe:
    """One worker's tmux session as seen on its host."""

    worker_id: str
    alive: bool
    pane_activity: float | None = None
    last_commit: CommitInfo | None = None
    dirty_files: int = 0
    # Commits origin does not have (its branch as last pushed or fetched); None until
    # the branch tracks origin's (its first push, or a branch resumed from origin).
    unpushed_commits: int | None = None
    ready: bool = True  # its task was typed in (False: a start was cut short)
    # When its processes last used CPU (more than 5% of one since the previous probe);
    # None where that cannot be read (no /proc).
    cpu_activity: float | None = None


@dataclass(frozen=True, slots=True)
class MetadataNotice:
    """What a host's own metadata service says the cloud will do to it (read by the
    probe, remote/metadata.py): an interruption with its deadline, or a rebalance
    recommendation (no deadline: the host is at elevated risk)."""

    cloud: str                       # aws | gcp | azure
    kind: str                        # "interruption" | "rebalance"
    reason: str
    deadline: float | None = None    # when the host is taken (interruption)
    ack: str | None = None           # Azure: the EventId to approve once acted upon


@dataclass(frozen=True, slots=True)
class HostProbe:
    """One round trip's answer for one host."""

    host_id: str
    reachable: bool
    probed_at: float
    error: str | None = None
    load_1m: float | None = None
    cpus: int | None = None
    mem_free_mb: int | None = None
    sessions: dict[str, SessionProbe] = field(default_factory=dict)
    notices: tuple[MetadataNotice, ...] = ()
    metadata_error: str | None = None  # the metadata service did not answer
    # Look-alike worker sessions not carrying this fleet's mark: reported, never touched.
    foreign: tuple[str, ...] = ()

    @property
    def load_per_cpu(self) -> float:
        if self.load_1m is None or not self.cpus:
            return 0.0
        return self.load_1m / self.cpus


@dataclass(frozen=True, slots=True)
class LoadSample:
    """One probe's load figures for a host. The store keeps each host's last few, so
    the planner can tell a host that *stays* overloaded from a spike (rebalancing)."""

    host_id: str
    ts: float
    load_1m: float
    cpus: int
    mem_free_mb: int | None = None

    @property
    def load_per_cpu(self) -> float:
        return self.load_1m / max(1, self.cpus)


# --- Added by the controller (store records and desired-state overrides) -------------

@dataclass(frozen=True, slots=True)
class Overrides:
    """Desired-state changes made with `czarina scale`; None means "as configured"."""

    min_workers: int | None = None
    max_workers: int | None = None
    auto_scale: bool | None = None
    locations: dict[str, str] = field(default_factory=dict)  # worker id -> location text


class IntentStatus:
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True, slots=True)
class Intent:
    """A side effect recorded before it is made. `key` is its idempotency key."""

    key: str
    kind: str
    payload: dict[str, object]
    status: str
    created_at: float
    updated_at: float
    result: dict[str, object] | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded change: a state transition, an adoption, an intent's outcome."""

    ts: float
    entity: str          # host | worker | intent | fleet
    entity_id: str
    from_state: str | None
    to_state: str | None
    reason: str
    seq: int = 0


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """Cost accrued by one host (and, by slot share, one worker) over `seconds` from `ts`."""

    ts: float
    host_id: str
    worker_id: str | None
    pool: str | None
    provider: str
    shape: str | None
    region: str | None
    spot: bool
    usd: float
    rate_per_hour: float
    seconds: float
