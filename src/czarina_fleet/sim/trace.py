"""The trace format the simulator replays, and its loader.

A trace is one JSON file: a fleet configuration (inline, or a path to a config file),
how the simulated cloud behaves (launch latency, prices, capacity outages, launch
errors, spot interruptions at given times or at a rate), and a timeline of events (scale,
add/remove a worker, a worker goes idle/busy). Times are seconds from the start of the
simulation, as a number or a string such as "90s", "15m", "2h", "1h30m", "1d".

`load_trace(path) -> LoadedTrace` validates everything up front, so a bad trace fails
before anything runs: a `UserError` naming the file and the JSON path of the field, and
what to change (the CLI exits 2).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from czarina_fleet.config import load_config
from czarina_fleet.config.json_loader import load_json_text
from czarina_fleet.config.problems import Problems, add_validation_errors
from czarina_fleet.errors import ConfigError, UserError, did_you_mean
from czarina_fleet.model.config import WORKER_ID, FleetConfig
from czarina_fleet.model.location import parse_location

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a text such as "90s", "15m", "1h30m", "2d"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text such as \"15m\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text and _PART.sub("", text) == "":
            return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a duration: use seconds (90) or a text such as "
                     "\"90s\", \"15m\", \"2h\", \"1h30m\", \"1d\"")


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- cloud behaviour ----------------------------------------------------------------------

class CapacityOutage(_Strict):
    """No capacity in `pool` (every pool when omitted) from `start` until `end`: every
    launch there fails with a capacity error."""

    pool: str | None = None
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> CapacityOutage:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:g}s) must be after start ({self.start:g}s)")
        return self


class LaunchErrors(_Strict):
    """From `at` on, the next `times` launches (any pool) fail with `error`."""

    at: Seconds
    error: Literal["capacity", "transient", "quota"] = "capacity"
    times: int = Field(default=1, ge=1, le=10_000)


class ScheduledInterruption(_Strict):
    """At `at`, the cloud takes back a spot host: the one named `host`, or the one
    `worker` runs on at that moment (nothing happens if it runs nowhere)."""

    at: Seconds
    host: str | None = None
    worker: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ScheduledInterruption:
        if (self.host is None) == (self.worker is None):
            raise ValueError('give exactly one of "host" or "worker"')
        return self


class CloudBehaviour(_Strict):
    launch_latency: Seconds = 60.0
    default_price_per_hour: float = Field(default=0.05, ge=0)
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, description="pool name -> USD per hour")
    capacity_outages: list[CapacityOutage] = Field(default_factory=list)
    launch_errors: list[LaunchErrors] = Field(default_factory=list)
    interruptions: list[ScheduledInterruption] = Field(default_factory=list)
    interruption_rate_per_hour: float = Field(
        default=0.0, ge=0, description="chance per running spot host per hour (seeded)")
    notice: Literal["none", "aws", "gcp", "azure"] = Field(
        default="none", description="interruptions come with that cloud's notice ahead "
        "(aws 120 s, gcp and azure 30 s); none: the host is simply taken")


# --- timeline events -------------------------------------------------------------------------

class ScaleEvent(_Strict):
    """What `czarina scale` does: change min/max/auto, move a worker, or reset."""

    kind: Literal["scale"]
    at: Seconds
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    auto: bool | None = None
    worker: str | None = None
    to: str | None = None
    reset: bool = False

    _check_to = field_validator("to")(lambda v: _location(v))

    @model_validator(mode="after")
    def _check(self) -> ScaleEvent:
        if (self.worker is None) != (self.to is None):
            raise ValueError('give "worker" and "to" together (move WORKER to a location)')
        if (self.min, self.max, self.auto, self.worker, self.reset) == (
                None, None, None, None, False):
            raise ValueError('a scale event needs at least one of "min", "max", "auto", '
                             '"worker"/"to" or "reset"')
        return self

    def describe(self) -> str:
        parts = ["reset"] if self.reset else []
        parts += [f"{k}={v}" for k, v in (("min", self.min), ("max", self.max),
                                          ("auto", self.auto)) if v is not None]
        if self.worker:
            parts.append(f"{self.worker} --to {self.to}")
        return "scale " + " ".join(parts)


class AddWorker(_Strict):
    kind: Literal["add_worker"]
    at: Seconds
    id: str
    branch: str | None = None
    agent: str = "claude"
    location: str = "auto"

    _check_location = field_validator("location")(lambda v: _location(v))

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not WORKER_ID.match(v):
            raise ValueError(f'worker id "{v}" must match ^[a-z0-9-]+$')
        return v

    def describe(self) -> str:
        return f"add worker {self.id} at {self.location}"


class RemoveWorker(_Strict):
    kind: Literal["remove_worker"]
    at: Seconds
    id: str

    def describe(self) -> str:
        return f"remove worker {self.id}"


class Activity(_Strict):
    """A worker's pane goes quiet (`idle`) or shows activity again (`busy`)."""

    kind: Literal["idle", "busy"]
    at: Seconds
    worker: str

    def describe(self) -> str:
        return f"worker {self.worker} {self.kind}"


Event = Annotated[ScaleEvent | AddWorker | RemoveWorker | Activity, Field(discriminator="kind")]
FLEET_CHANGES = (ScaleEvent, AddWorker, RemoveWorker)  # events that set a new target


class Trace(_Strict):
    name: str = "trace"
    description: str = ""
    seed: int = 0
    duration: Seconds
    tick: Seconds | None = Field(default=None, description="default: reconcile_interval_s")
    config: dict[str, Any] | None = None
    config_path: str | None = None
    cloud: CloudBehaviour = Field(default_factory=CloudBehaviour)
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Trace:
        if (self.config is None) == (self.config_path is None):
            raise ValueError('give exactly one of "config" (inline) or "config_path"')
        if self.duration <= 0:
            raise ValueError("duration must be above 0")
        if self.tick is not None and self.tick <= 0:
            raise ValueError("tick must be above 0")
        return self


def _location(text: str | None) -> str | None:
    if text is not None:
        try:
            parse_location(text)
        except UserError as e:
            raise ValueError(e.detail) from None
    return text


# --- loading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedTrace:
    path: Path
    trace: Trace
    cfg: FleetConfig
    tick_s: float

    def events_in_order(self) -> list[tuple[int, Event]]:
        """(index in the file, event), by time; ties keep file order."""
        return sorted(enumerate(self.trace.events), key=lambda p: p[1].at)


def load_trace(path: Path) -> LoadedTrace:
    """Read, validate and resolve a trace. Raises UserError (or ConfigError, a UserError)
    naming `path` and the JSON path of each problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the trace: {getattr(e, 'strerror', None) or e}",
                        where=file) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"invalid JSON: {e.msg}; fix the syntax here",
                        where=f"{file}:{e.lineno}:{e.colno}") from None
    if not isinstance(data, dict):
        raise UserError('the top level must be an object with "duration", "config" and '
                        '"events"', where=f"{file}: $")
    try:
        trace = Trace.model_validate(data)
    except ValidationError as e:
        problems = Problems()
        add_validation_errors(problems, e, file=file, prefix=(), model=Trace)
        raise ConfigError(_without_tags(problems.items)) from None
    cfg = _config(trace, path)
    tick = trace.tick if trace.tick is not None else cfg.fleet.scaling.reconcile_interval_s
    loaded = LoadedTrace(path, trace, cfg, tick)
    check_timeline(loaded)
    return loaded


def _without_tags(items: list[UserError]) -> list[UserError]:
    """pydantic puts the union tag in the path (`$.events[2].scale.to`): drop it."""
    tags = re.compile(r"\.(scale|add_worker|remove_worker|idle|busy)(?=[.\[]|$)")
    out = []
    for p in items:
        where = tags.sub("", p.where or "") if p.where and ".events[" in p.where else p.where
        out.append(UserError(p.detail, where=where))
    return out


def _config(trace: Trace, path: Path) -> FleetConfig:
    if trace.config_path is not None:
        cfg_path = (path.parent / trace.config_path).resolve()
        if not cfg_path.is_file():
            raise UserError(f'config file "{trace.config_path}" not found (looked for '
                            f"{cfg_path}); fix the path, relative to the trace",
                            where=f"{path}: $.config_path")
        return load_config(cfg_path)
    file = str(path)
    try:
        return load_json_text(json.dumps(trace.config), path, aliases=frozenset(),
                              ssh_config=None)
    except ConfigError as e:  # the config's paths are relative to $.config in the trace
        raise ConfigError([UserError(p.detail, where=(p.where or file).replace(
            f"{file}: $", f"{file}: $.config", 1)) for p in e.problems]) from None


def check_timeline(loaded: LoadedTrace) -> None:
    """Check what only makes sense in time order: a worker an event names exists at that
    moment, min never goes above max, nothing happens after the end, pools exist."""
    file, trace = str(loaded.path), loaded.trace
    ids = [w.id for w in loaded.cfg.workers]
    ever = set(ids)
    scaling = loaded.cfg.fleet.scaling
    lo: int | None = None
    hi: int | None = None
    for i, ev in loaded.events_in_order():
        where = f"{file}: $.events[{i}]"
        _within(ev.at, trace.duration, where)
        if isinstance(ev, AddWorker):
            if ev.id in ids:
                raise UserError(f'worker "{ev.id}" already exists at {ev.at:g}s; pick another '
                                "id or remove it first", where=f"{where}.id")
            ids.append(ev.id)
            ever.add(ev.id)
        elif isinstance(ev, RemoveWorker):
            _known(ev.id, ids, ev.at, f"{where}.id")
            ids.remove(ev.id)
        elif isinstance(ev, Activity):
            _known(ev.worker, ids, ev.at, f"{where}.worker")
        else:
            if ev.worker is not None:
                _known(ev.worker, ids, ev.at, f"{where}.worker")
            if ev.reset:
                lo = hi = None
            lo, hi = (ev.min if ev.min is not None else lo), (ev.max if ev.max is not None else hi)
            mn = lo if lo is not None else scaling.min_workers
            mx = hi if hi is not None else scaling.max_workers
            if mn > mx:
                raise UserError(f"min workers ({mn}) would be above max workers ({mx}) at "
                                f"{ev.at:g}s; lower min or raise max", where=where)
    _check_cloud(loaded, ever)


def _check_cloud(loaded: LoadedTrace, workers: set[str]) -> None:
    file, cloud = str(loaded.path), loaded.trace.cloud
    pools = [p.name for p in loaded.cfg.fleet.pools]
    for name in cloud.prices:
        _pool(name, pools, f"{file}: $.cloud.prices[{json.dumps(name)}]")
    for i, o in enumerate(cloud.capacity_outages):
        if o.pool is not None:
            _pool(o.pool, pools, f"{file}: $.cloud.capacity_outages[{i}].pool")
        _within(o.start, loaded.trace.duration, f"{file}: $.cloud.capacity_outages[{i}]")
    for i, e in enumerate(cloud.launch_errors):
        _within(e.at, loaded.trace.duration, f"{file}: $.cloud.launch_errors[{i}]")
    for i, s in enumerate(cloud.interruptions):
        where = f"{file}: $.cloud.interruptions[{i}]"
        _within(s.at, loaded.trace.duration, where)
        if s.worker is not None and s.worker not in workers:
            hint = did_you_mean(s.worker, workers)
            raise UserError(f'no worker "{s.worker}" in this trace{hint}', where=f"{where}.worker")


def _within(at: float, duration: float, where: str) -> None:
    if at > duration:
        raise UserError(f"at {at:g}s is after the end of the trace ({duration:g}s); move it "
                        "earlier or lengthen duration", where=f"{where}.at")


def _known(worker: str, ids: list[str], at: float, where: str) -> None:
    if worker not in ids:
        hint = did_you_mean(worker, ids)
        now = ", ".join(ids) or "none"
        raise UserError(f'no worker "{worker}" at {at:g}s (workers then: {now}){hint}',
                        where=where)


def _pool(name: str, pools: list[str], where: str) -> None:
    if name not in pools:
        hint = did_you_mean(name, pools)
        raise UserError(f'no pool "{name}" in the fleet config (pools: '
                        f'{", ".join(pools) or "none"}){hint}', where=where)
