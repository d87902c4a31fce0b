"""The trace format the simulator replays, and its loader.

A trace is one JSON file: a fleet configuration (inline, or a path to a config file),
how the simulated cloud behaves (launch latency, prices, capacity outages, launch
errors, spot interruptions at given times or at a rate), and a timeline of events (scale,
add/remove a worker, a worker goes idle/busy, a hopper item arrives). Times are seconds
from the start of the simulation, as a number or a text such as "90s", "15m", "1h30m".

`load_trace(path) -> LoadedTrace` validates everything up front, so a bad trace fails
before anything runs: a `UserError` naming the file and the JSON path of the field, and
what to change (the CLI exits 2).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from czarina_fleet.config import load_config
from czarina_fleet.config.json_loader import load_json_text
from czarina_fleet.config.problems import Problems, add_validation_errors
from czarina_fleet.errors import ConfigError, UserError, did_you_mean
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.sim.trace_cloud import (  # noqa: F401 (the trace format, in one place)
    CapacityOutage,
    CloudBehaviour,
    LaunchErrors,
    ScheduledInterruption,
)
from czarina_fleet.sim.trace_events import (  # noqa: F401
    FLEET_CHANGES,
    Activity,
    AddWorker,
    Event,
    ItemArrives,
    RemoveWorker,
    ScaleEvent,
)
from czarina_fleet.sim.units import Seconds, Strict, parse_duration  # noqa: F401


class Trace(Strict):
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


# --- loading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedTrace:
    path: Path
    trace: Trace
    cfg: FleetConfig
    tick_s: float

    @property
    def items(self) -> list[ItemArrives]:
        """The hopper items of the trace, by arrival (ties keep file order)."""
        return [ev for _, ev in self.events_in_order() if isinstance(ev, ItemArrives)]

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
    tags = re.compile(r"\.(scale|add_worker|remove_worker|idle|busy|item)(?=[.\[]|$)")
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
    items: set[str] = set()
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
        elif isinstance(ev, ItemArrives):
            if ev.id in items:
                raise UserError(f'item "{ev.id}" arrives twice; give each item its own id',
                                where=f"{where}.id")
            items.add(ev.id)
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
    for key in ("prices", "on_demand_prices", "host_cpus"):
        for name in getattr(cloud, key):
            _pool(name, pools, f"{file}: $.cloud.{key}[{json.dumps(name)}]")
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
