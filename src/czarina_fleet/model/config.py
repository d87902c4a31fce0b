"""The normalized configuration: what both loaders (config.json, config.sh) produce.

Upstream keys we do not use are kept (`extra="allow"`) so nothing is lost; the `fleet`
object is ours, so its keys are strict (`extra="forbid"`): a typo there is an error with
a suggestion, not a silent default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from czarina_fleet.errors import UserError
from czarina_fleet.model.agents import builtin_agent_command
from czarina_fleet.model.location import LocalLocation, Location

WORKER_ID = re.compile(r"^[a-z0-9-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: Any) -> Any:
        # pydantic's lax mode reads true as 1: `"max_workers": true` must be an error.
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            kinds = get_args(annotation) or (annotation,)
            if bool not in kinds and (int in kinds or float in kinds):
                raise ValueError(f"expected a number, not {str(value).lower()}")
        return value


class StaticHost(_Strict):
    """A machine reached over SSH that is always there (REMOTE_HOSTS or fleet.hosts)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    host: str = Field(description="host name, address, or ~/.ssh/config alias")
    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    work_dir: str = Field(default="~/czarina-work", description="where repositories are cloned")
    slots: int = Field(default=2, ge=1, le=1024, description="workers this host may run at once")
    identity_file: str | None = None
    proxy_jump: str | None = None
    trust_on_first_use: bool = Field(
        default=False, description="accept an unknown host key once and record it (opt-in)"
    )
    dials_in: bool = Field(
        default=False, description="behind NAT: reached at 127.0.0.1:port through the reverse "
        "tunnel it opens to this machine (czarina hosts dial-in NAME)")

    @model_validator(mode="after")
    def _tunnel_is_local(self) -> StaticHost:
        if self.dials_in and (self.host not in ("127.0.0.1", "localhost") or not self.port):
            raise ValueError('a host that dials in is reached through its tunnel: set "host" '
                             'to "127.0.0.1" and "port" to its tunnel port (e.g. 22022)')
        return self

    @field_validator("host", "user", "identity_file", "proxy_jump", "work_dir")
    @classmethod
    def _one_ssh_word(cls, value: str | None) -> str | None:
        # Each reaches `ssh` as an argument (czarina attach) and asyncssh's options: one
        # that starts with "-" would read as an option, a control character could add
        # an ssh_config line.
        if value is not None and (not value or value.startswith("-")
                                  or any(c < " " for c in value)):
            raise ValueError("must be non-empty, not start with '-', and hold no control "
                             "characters")
        return value


class PoolSpec(_Strict):
    """A group of cloud (or lab) hosts the controller launches and terminates on demand."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    provider: str = Field(description="driver name: aws, gcp, azure, lab, fake, or a plugin's")
    instance_types: list[str] = Field(min_length=1)
    regions: list[str] = Field(min_length=1, description="regions/zones in order of preference")
    spot: bool = True
    on_demand_fallback: bool = False
    min_hosts: int = Field(default=0, ge=0)
    max_hosts: int = Field(default=4, ge=0)
    slots_per_host: int = Field(default=2, ge=1)
    max_price_per_hour: float | None = Field(default=None, gt=0)
    image: str | None = None
    ssh_user: str = "czarina"
    work_dir: str = "~/czarina-work"
    boot_timeout_s: float = Field(default=600, gt=0)
    options: dict[str, Any] = Field(
        default_factory=dict, description="driver-specific settings (subnet, project, ...)"
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> PoolSpec:
        if self.min_hosts > self.max_hosts:
            raise ValueError(f"min_hosts ({self.min_hosts}) > max_hosts ({self.max_hosts})")
        return self


class ScalingLimits(_Strict):
    min_workers: int = Field(default=0, ge=0)
    max_workers: int = Field(default=100, ge=0)
    auto_scale: bool = False
    idle_timeout_s: float = Field(default=900, gt=0, description="idle host shut down after")
    # A hopper-driven fleet (auto-scale on, the hopper in use) with no item waiting: an
    # empty pool host shuts down after this instead (when shorter): work comes back
    # only as items, and none is there to use the host (policies/idle.py).
    hopper_idle_timeout_s: float = Field(
        default=300, gt=0, description="empty host shut down after, hopper-driven, none waiting")
    budget_per_hour: float | None = Field(default=None, gt=0, description="USD per hour cap")
    reconcile_interval_s: float = Field(default=15, gt=0)

    @model_validator(mode="after")
    def _min_le_max(self) -> ScalingLimits:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers ({self.min_workers}) is greater than max_workers "
                f"({self.max_workers}): lower min_workers or raise max_workers"
            )
        return self


class HealthThresholds(_Strict):
    slow_after_s: float = 3600
    stuck_after_s: float = 7200
    # A worker is idle after this long with no pane output, no commit and no hopper item
    # assigned to it: the status word and auto-scale's scale-down both use it (apart from
    # fleet.scaling.idle_timeout_s, which is when an empty host shuts down).
    idle_after_s: float = Field(default=600, gt=0)
    # A hopper-driven fleet (auto-scale on, items in `.czarina/hopper/`): a worker with
    # no task file of its own gets its work from the hopper, so once it has no item it
    # has nothing to do by construction; it is idle after this (when shorter than
    # idle_after_s). Workers with a task_file, and every worker of a fleet that does not
    # use the hopper, keep idle_after_s (policies/idle.py).
    hopper_idle_after_s: float = Field(default=120, gt=0)


class RecoverySettings(_Strict):
    """Spot interruption recovery: how often remote workers' new commits are pushed to
    the fleet's origin (the most work a host taken without notice can lose)."""

    push_interval_s: float = Field(
        default=60, gt=0, description="push each remote worker's new commits this often")
    push_concurrency: int = Field(default=4, ge=1, le=64, description="pushes at once")
    push_timeout_s: float = Field(default=120, gt=0, description="one push may take this long")
    rebalance_moves_per_hour: int = Field(
        default=2, ge=0, description="hosts drained early on rebalance recommendations, "
        "at most, in any hour (0: never)")


class RebalanceSettings(_Strict):
    """Moving `auto` and `pool:` workers after they started (docs/controller.md,
    "Rebalancing and consolidation"): off overloaded hosts, and off partly used hosts
    so they idle out; both within one disruption budget. Pinned workers never move."""

    enabled: bool = Field(default=True, description="move a worker off a host that stays "
                          "overloaded")
    load_high: float = Field(default=1.5, gt=0, description="a probe counts as overloaded "
                             "above this load (1-minute average) per CPU")
    load_low: float = Field(default=1.0, gt=0, description="overload clears below this; a "
                            "target host must stay below it with the worker added")
    mem_free_min_mb: int = Field(default=256, ge=0, description="a probe with less free "
                                 "memory counts as overloaded too (0: memory ignored)")
    overload_probes: int = Field(default=3, ge=1, description="consecutive overloaded probes "
                                 "before a worker moves")
    consolidate: bool = Field(default=True, description="empty partly used pool hosts when "
                              "their workers fit on fewer and the saving pays for the moves")
    horizon_s: float = Field(default=3600, gt=0, description="the saving is counted over "
                             "this long (less the idle timeout the emptied host still waits)")
    worker_minute_usd: float = Field(default=0.10, ge=0, description="what a minute of one "
                                     "worker's downtime costs (agent and waiting)")
    move_downtime_s: float = Field(default=90, ge=0, description="expected downtime of one "
                                   "move: checkpoint, one step, start")
    max_moves_per_worker_per_hour: int = Field(default=2, ge=0, description="moves of one "
                                               "worker in any hour, at most (0: never move)")
    max_moves_in_flight: int = Field(default=1, ge=1, description="moves under way at once, "
                                     "fleet-wide")
    settle_s: float = Field(default=60, ge=0, description="no move of a worker that "
                            "committed or started this recently")

    @model_validator(mode="after")
    def _low_below_high(self) -> RebalanceSettings:
        if self.load_low > self.load_high:
            raise ValueError(f"load_low ({self.load_low:g}) must not exceed load_high "
                             f"({self.load_high:g}): the gap between them is the hysteresis")
        return self


class FleetSettings(_Strict):
    name: str | None = Field(default=None, description="ownership tag; defaults to project slug")
    hosts: list[StaticHost] = Field(default_factory=list)
    pools: list[PoolSpec] = Field(default_factory=list)
    scaling: ScalingLimits = Field(default_factory=ScalingLimits)
    health: HealthThresholds = Field(default_factory=HealthThresholds)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    rebalance: RebalanceSettings = Field(default_factory=RebalanceSettings)
    repository_url: str | None = Field(
        default=None, description="what remote hosts clone (default: the origin remote)")
    repository_push_url: str | None = Field(
        default=None, description="where remote hosts push, when not repository_url")
    base_branch: str | None = Field(default=None, description="new branches start here")
    git_transport: Literal["host", "controller"] = Field(
        default="host", description="who talks to origin: each host, or the controller "
        "(hosts get no credentials; forced when repository_url holds one)")
    agents: dict[str, str] = Field(default_factory=dict, description="agent -> start command")
    k8s: list[str] = Field(default_factory=list, description="WORKER_K8S_CONFIG, kept as is")
    orphan_timeout_s: float = Field(
        default=4 * 3600, gt=0,
        description="a launched host not probed this long pushes its workers' branches "
                    "and shuts itself down")
    leftover_grace_s: float = Field(
        default=1800, ge=0, description="a resource whose host is gone is deleted after this")
    sweep_interval_s: float = Field(
        default=300, gt=0, description="how often leftovers of gone hosts are looked for")

    @model_validator(mode="after")
    def _orphan_timeout_outlasts_probes(self) -> FleetSettings:
        tick = self.scaling.reconcile_interval_s
        if self.orphan_timeout_s < 3 * tick:
            raise ValueError(
                f"orphan_timeout_s ({self.orphan_timeout_s:g}) must be at least three "
                f"reconcile intervals ({3 * tick:g} s): hosts would shut down while their "
                f"controller runs; raise orphan_timeout_s (default 14400) or lower "
                f"scaling.reconcile_interval_s")
        return self


class ProjectInfo(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "project"
    slug: str | None = None
    repository: str | None = None
    orchestration_dir: str = ".czarina"


class WorkerSpec(BaseModel):
    """One desired worker. `where` is FILE:LINE (or the JSON path) it was defined at."""

    model_config = ConfigDict(extra="allow", frozen=True, arbitrary_types_allowed=True)

    id: str
    branch: str
    agent: str = "claude"
    task_file: str | None = None
    description: str = ""
    role: str | None = None
    location: Annotated[Location, Field(default_factory=LocalLocation)]
    where: str = ""

    @field_validator("id")
    @classmethod
    def _id_pattern(cls, v: str) -> str:
        if not WORKER_ID.match(v):
            raise ValueError(f'worker id "{v}" must match ^[a-z0-9-]+$ (lowercase, digits, -)')
        return v


class FleetConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: Path
    format: Literal["json", "shell"]
    project: ProjectInfo
    project_root: Path
    workers: list[WorkerSpec]
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    warnings: list[str] = Field(default_factory=list)
    prompts_dir: Path | None = Field(
        default=None, description="relative task files resolve against it (PROMPTS_DIR)"
    )
    # Why a worker left out of `workers` stops: set by the CLI (--stop-all), never read
    # from a file; None means it was removed from the configuration.
    stop_reason: str | None = None
    # worker id -> spec, built on first use; keyed by the list it indexes because
    # model_copy(update={"workers": ...}) copies private attributes as they are.
    _index: tuple[list[WorkerSpec], dict[str, WorkerSpec]] | None = PrivateAttr(default=None)

    @property
    def fleet_name(self) -> str:
        return self.fleet.name or self.project.slug or self.project.name

    def agent_command(self, agent: str) -> str:
        """The command that starts `agent`: from fleet.agents or the built-in table only
        (the loaders reject any other agent, so a name never runs as shell)."""
        command = self.fleet.agents.get(agent) or builtin_agent_command(agent)
        if command is None:
            raise UserError(f'unknown agent "{agent}": define it in fleet.agents')
        return command

    def worker(self, worker_id: str) -> WorkerSpec | None:
        """The worker with this id (a dict lookup: callers ask once per worker)."""
        if self._index is None or self._index[0] is not self.workers:
            self._index = (self.workers, {w.id: w for w in self.workers})
        return self._index[1].get(worker_id)
