"""The trace's timeline, played into a running `Simulation` (run.py): launch errors,
scheduled and random interruptions (notice first, the host taken at its deadline),
activity changes and fleet changes (scale, add or remove a worker).

Split from the loop (run.py) because this is where the trace's events meet the
simulated cloud, the runtime and the store; the loop only decides *when* they are
due. Each function takes the `Simulation` it changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from czarina_fleet.controller.state.override_tables import KEEP
from czarina_fleet.model.config import WorkerSpec
from czarina_fleet.model.location import parse_location
from czarina_fleet.providers.base import InstanceState
from czarina_fleet.sim.cloud import ERRORS
from czarina_fleet.sim.trace import (
    FLEET_CHANGES,
    Activity,
    AddWorker,
    ItemArrives,
    LaunchErrors,
    LoadedTrace,
    RemoveWorker,
    ScaleEvent,
    ScheduledInterruption,
)

if TYPE_CHECKING:  # run.py imports this module to play the trace
    from czarina_fleet.sim.run import Simulation

# How far ahead each cloud says it will take a spot host (docs/spot-recovery.md).
NOTICE_LEAD_S = {"none": 0.0, "aws": 120.0, "gcp": 30.0, "azure": 30.0}
Due = ScaleEvent | AddWorker | RemoveWorker | Activity | LaunchErrors | ScheduledInterruption


def schedule(loaded: LoadedTrace) -> list[tuple[float, int, Due]]:
    """Every timed event the simulation applies, in trace order (ties keep their order)."""
    cloud = loaded.trace.cloud
    items: list[tuple[float, int, Due]] = []
    for e in cloud.launch_errors:
        items.append((e.at, len(items), e))
    for s in cloud.interruptions:
        items.append((s.at, len(items), s))
    for _, ev in loaded.events_in_order():
        if not isinstance(ev, ItemArrives):  # the demand model plays those
            items.append((ev.at, len(items), ev))
    return sorted(items, key=lambda x: (x[0], x[1]))


def apply(sim: Simulation, item: Due) -> None:
    if isinstance(item, LaunchErrors):
        sim.cloud.fail_next(ERRORS[item.error](f"simulated {item.error} error"),
                            item.times)
    elif isinstance(item, ScheduledInterruption):
        host = item.host
        if item.worker is not None:
            where = sim.runtime.live_sessions().get(item.worker, [])
            host = where[0] if where else None
        if host is None or not interrupt(sim, host, "scheduled"):
            # Said, not silent: a typo in a host name would otherwise test nothing.
            what = f"host {item.host}" if item.host else f"the host of {item.worker}"
            sim.recorder.notes.append(f"{item.at:g}s: no interruption: {what} is not "
                                      "a running spot host")
    elif isinstance(item, Activity):
        if item.kind == "idle":
            sim.runtime.idle_since.setdefault(item.worker, sim.clock.now())
        else:
            sim.runtime.idle_since.pop(item.worker, None)
    else:
        _change_fleet(sim, item)
    if isinstance(item, FLEET_CHANGES):
        sim.recorder.fleet_changed(item.at, item.describe())


def interrupt(sim: Simulation, host: str, cause: str) -> bool:
    """Interrupt `host` if it is a running spot host; False (nothing done) otherwise."""
    if not any(i.host_id == host and i.state != InstanceState.TERMINATED and i.spot
               for i in sim.cloud.by_key.values()):
        return False  # not a running spot host (on demand, never launched, or gone)
    on_host = sorted(w for w, hs in sim.runtime.live_sessions().items() if host in hs)
    lead = NOTICE_LEAD_S[sim.loaded.trace.cloud.notice]
    if lead > 0 and not any(h == host for _, h in sim.kills):
        # The cloud's notice first; the host is taken at the deadline (take_due).
        sim.cloud.warn(host, sim.clock.now() + lead)
        sim.kills.append((sim.t() + lead, host))
        sim.recorder.interrupted(sim.t(), host, f"{cause}, notice {lead:.0f}s ahead",
                                 on_host)
        return True
    sim.cloud.interrupt(host)
    sim.recorder.interrupted(sim.t(), host, cause, on_host)
    sim.recorder.taken(host, sim.t(), on_host)
    return True


def take_due(sim: Simulation) -> None:
    """Take the hosts whose notice's deadline has come (unless the controller
    already drained and terminated them); a worker still on one loses its commits
    since its last push."""
    due = [(at, h) for at, h in sim.kills if at <= sim.t()]
    sim.kills = [(at, h) for at, h in sim.kills if at > sim.t()]
    for _, host in due:
        still = sorted(w for w, hs in sim.runtime.live_sessions().items() if host in hs)
        sim.cloud.interrupt(host)
        sim.recorder.taken(host, sim.t(), still)


def _change_fleet(sim: Simulation, ev: ScaleEvent | AddWorker | RemoveWorker) -> None:
    if isinstance(ev, ScaleEvent):
        old = sim.store.get_overrides()
        locations: dict[str, str | None] = (
            {w: None for w in old.locations} if ev.reset else {})
        if ev.worker is not None:
            locations[ev.worker] = ev.to
        sim.store.set_overrides(
            min_workers=ev.min if ev.min is not None else (None if ev.reset else KEEP),
            max_workers=ev.max if ev.max is not None else (None if ev.reset else KEEP),
            auto_scale=ev.auto if ev.auto is not None else (None if ev.reset else KEEP),
            locations=locations, reason="trace")
        return
    if isinstance(ev, AddWorker):
        spec = WorkerSpec(id=ev.id, branch=ev.branch or f"czar/{ev.id}", agent=ev.agent,
                          location=parse_location(ev.location),
                          where=f"{sim.loaded.path}: add_worker at {ev.at:g}s")
        workers = [*sim.cfg.workers, spec]
    else:
        workers = [w for w in sim.cfg.workers if w.id != ev.id]
        if ev.id in sim.store.get_overrides().locations:
            sim.store.set_overrides(locations={ev.id: None}, reason="trace")
    sim.cfg = sim.cfg.model_copy(update={"workers": workers})
    sim.rec.cfg = sim.cfg  # the reconciler reads its desired state from cfg each tick
