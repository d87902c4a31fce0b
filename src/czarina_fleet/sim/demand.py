"""Demand from the hopper: items arrive, wait, are worked on, and are done.

The simulated project has a real hopper directory (`.czarina/hopper/` under the
simulation's project root): each waiting or taken item is a Markdown file written the
way upstream Czarina writes them, so the controller reads demand through its own code
path (`hopper.read_hopper`, `assigned_workers`, `policies.hopper`) exactly as it does on
a real project. The simulator plays the czar and the agents:

- a free worker (its session alive on a host that is up, no item) takes the most urgent
  waiting item (`policies.hopper.by_urgency`) the moment both exist; its file then says
  `Status: In Progress` and `Assigned To: <worker>`, so the controller sees it busy;
- an item is worked on only while its worker's session is alive: a move, a restart or an
  interruption pauses it. After `duration` of work it is done: its file moves to
  `archived/` (as upstream archives done items) and the worker's pane goes quiet from
  that moment (the idle clock starts);
- an item whose worker is removed from the configuration goes back to waiting.

Between two reconciles the set of live workers does not change, so `advance(t0, t1,
live)` plays that interval event by event, at exact times: an item arriving while a
worker is free is taken at its arrival time (wait 0), not at the next tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from czarina_fleet.hopper import ARCHIVE_DIR, parse_item
from czarina_fleet.model.hopper import HopperItem
from czarina_fleet.policies.hopper import by_urgency
from czarina_fleet.sim.cloud import SimRuntime
from czarina_fleet.sim.trace_events import ItemArrives

_EPS = 1e-6


@dataclass
class Item:
    spec: ItemArrives
    worker: str | None = None
    started_at: float | None = None  # when a worker first worked on it (trace time)
    done_at: float | None = None
    worked: float = 0.0

    @property
    def file(self) -> str:
        return f"{self.spec.id}.md"

    @property
    def remaining(self) -> float:
        return max(0.0, self.spec.duration - self.worked)

    def text(self) -> str:
        s = self.spec
        estimate = s.estimate or f"{s.duration / 60:g} minutes"
        lines = [f"# {s.id}", "", f"**Priority:** {s.priority.capitalize()}",
                 f"**Estimate:** {estimate}",
                 f"**Status:** {'In Progress' if self.worker else 'Open'}"]
        if self.worker:
            lines.append(f"**Assigned To:** {self.worker}")
        return "\n".join([*lines, "", "Simulated work item.", ""])


class Demand:
    """The trace's items against one simulation. `origin` is the clock time trace times
    count from (the runtime's idle clocks are in clock time)."""

    def __init__(self, items: list[ItemArrives], hopper_dir: Path, runtime: SimRuntime,
                 origin: float) -> None:
        self.arrivals = sorted(items, key=lambda i: i.at)  # stable: file order on ties
        self.items: dict[str, Item] = {}
        self.dir = hopper_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runtime = runtime
        self.origin = origin
        runtime.items_drive_panes = True

    # --- the interval between two reconciles ----------------------------------------------

    def advance(self, t0: float, t1: float, live: set[str], configured: set[str]) -> None:
        """Play [t0, t1] with the workers in `live` running throughout."""
        for item in self.items.values():
            if item.worker is not None and item.worker not in configured:
                self._unassign(item)  # its worker was removed: back to the hopper
        now = t0
        while True:
            self._arrive(now)
            self._dispatch(now, live)
            working = [i for i in self._open() if i.worker in live]
            nxt = min([*(now + i.remaining for i in working),
                       *(a.at for a in self.arrivals[:1])], default=math.inf)
            step_to = min(nxt, t1)
            for i in working:
                i.worked += step_to - now
            if nxt > t1:
                return
            now = nxt
            for i in working:
                if i.remaining <= _EPS:
                    self._finish(i, now)

    def _arrive(self, now: float) -> None:
        while self.arrivals and self.arrivals[0].at <= now + _EPS:
            spec = self.arrivals.pop(0)
            item = self.items[spec.id] = Item(spec)
            self._write(item)

    def _open(self) -> list[Item]:
        return [i for i in self.items.values() if i.done_at is None]

    def _free(self, live: set[str]) -> list[str]:
        taken = {i.worker for i in self._open() if i.worker is not None}
        return sorted(w for w in live if w not in taken)

    def _dispatch(self, now: float, live: set[str]) -> None:
        free = self._free(live)
        if not free:
            return
        waiting = {i.file: i for i in self._open() if i.worker is None}
        for hopper_item in by_urgency(self._parsed(waiting.values())):
            if not free:
                return
            item = waiting[hopper_item.path]
            item.worker = free.pop(0)
            if item.started_at is None:
                item.started_at = now
            self.runtime.working[item.worker] = item.spec.cpu
            self.runtime.idle_since.pop(item.worker, None)  # busy: its pane moves
            self._write(item)

    def _parsed(self, items: Any) -> list[HopperItem]:
        """The items as the hopper reader sees their files (so urgency is the real one)."""
        out = []
        for i in items:
            parsed = parse_item(i.text(), i.file)
            if parsed is not None:
                out.append(parsed)
        return out

    def _finish(self, item: Item, now: float) -> None:
        item.done_at = now
        worker = item.worker
        done = self.dir / ARCHIVE_DIR / item.file
        done.parent.mkdir(exist_ok=True)
        (self.dir / item.file).replace(done)  # archived: the reader skips it
        if worker is not None:
            self.runtime.working.pop(worker, None)
            self.runtime.idle_since[worker] = self.origin + now  # quiet from now on

    def _unassign(self, item: Item) -> None:
        if item.worker is not None:
            self.runtime.working.pop(item.worker, None)
        item.worker = None
        self._write(item)

    def _write(self, item: Item) -> None:
        (self.dir / item.file).write_text(item.text(), encoding="utf-8")

    # --- the report ---------------------------------------------------------------------

    def waits(self, end: float) -> list[float]:
        """Seconds from each item's arrival until a worker worked on it; an item no
        worker took by `end` counts as waiting until `end` (censored, never dropped)."""
        out = [(i.started_at if i.started_at is not None else end) - i.spec.at
               for i in self.items.values()]
        out += [max(0.0, end - a.at) for a in self.arrivals if a.at <= end]
        return sorted(out)

    def summary(self, end: float) -> dict[str, Any]:
        waits = self.waits(end)
        items = list(self.items.values())
        return {
            "items": len(items) + len(self.arrivals),
            "done": sum(1 for i in items if i.done_at is not None),
            "not_started": sum(1 for i in items if i.started_at is None) + len(self.arrivals),
            "work_hours": round(sum(i.worked for i in items) / 3600.0, 6),
            "wait_p50_s": _r(percentile(waits, 50)),
            "wait_p95_s": _r(percentile(waits, 95)),
            "wait_max_s": _r(waits[-1]) if waits else None,
        }


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted `values`: the smallest value such that at
    least p% of the values are at or below it (p95 of 20 values is the 19th). None for
    no values. Nearest rank, not interpolation: every figure is a wait that happened."""
    if not values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(values)))
    return values[rank - 1]


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
