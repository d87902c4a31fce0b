"""Which desired workers run. Pure.

- Never more than `max_workers` (config order decides who runs first).
- AUTO_SCALE on: a worker idle for `fleet.health.idle_after_s` (policies/idle.py: no
  pane output, no commit, no hopper item; `hopper_idle_after_s` for a hopper worker of
  a hopper-driven fleet) is stopped ("scaled down") while more than
  `min_workers` run, those whose stop costs least first (nothing unsaved, then idle
  longest); a busy worker never; scaled-down workers come back, in
  config order, when fewer than `min_workers` run, or when hopper items wait that the
  idle workers cannot take.
- AUTO_SCALE off: every desired worker runs, up to `max_workers`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from czarina_fleet.policies.hopper import workers_wanted


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    run: list[str]          # worker ids that should run, config order
    scale_down: list[str]   # running now, to be stopped as idle


def select_active(order: Sequence[str], idle: Mapping[str, float] | set[str],
                  scaled_down: set[str], min_workers: int, max_workers: int,
                  auto_scale: bool, waiting: int = 0,
                  fresh: frozenset[str] | set[str] = frozenset(),
                  unsaved: frozenset[str] | set[str] = frozenset()) -> ScaleDecision:
    """`waiting` counts hopper items no worker has taken: with AUTO_SCALE on, free
    workers take them first, then scaled-down workers come back for the rest (up to
    `max_workers`), and no idle worker is scaled down while an item waits for it.
    Free means idle, or `fresh`: started so recently that it has not had the chance to
    take an item yet (without this, every step would add workers for the same items)."""
    if not auto_scale:
        return ScaleDecision(list(order[:max_workers]), [])
    run = [w for w in order if w not in scaled_down][:max_workers]
    free = sum(1 for w in run if w in idle or w in fresh)
    busy = len(run) - free
    floor = len(run) + workers_wanted(waiting, free, len(run), min_workers, max_workers)
    if len(run) < floor:  # bring scaled-down workers back, config order
        chosen = set(run)
        for w in order:
            if len(chosen) >= floor:
                break
            chosen.add(w)
        run = [w for w in order if w in chosen]
    keep = max(min_workers, busy + waiting)  # idle workers waiting items will take
    # Cheapest stops first: nothing unsaved (no checkpoint needed), idle longest, the
    # last in config order.
    position = {w: i for i, w in enumerate(order)}
    idle_s = idle if isinstance(idle, Mapping) else dict.fromkeys(idle, 0.0)
    candidates = sorted((w for w in run if w in idle_s),
                        key=lambda w: (w in unsaved, -idle_s[w], -position[w]))
    down: list[str] = []
    for w in candidates:
        if len(run) - len(down) <= keep:
            break
        down.append(w)
    stopped = set(down)
    return ScaleDecision([w for w in run if w not in stopped], down)
