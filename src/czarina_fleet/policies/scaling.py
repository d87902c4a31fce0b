"""Which desired workers run. Pure.

- Never more than `max_workers` (config order decides who runs first).
- AUTO_SCALE on: a worker whose pane has been idle for `idle_after_s` is stopped
  ("scaled down") while more than `min_workers` run; scaled-down workers come back, in
  config order, when fewer than `min_workers` run.
- AUTO_SCALE off: every desired worker runs, up to `max_workers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SCALED_DOWN = "scaled down"  # WorkerRecord.last_error prefix marking an auto-scale stop


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    run: list[str]          # worker ids that should run, config order
    scale_down: list[str]   # running now, to be stopped as idle


def select_active(order: Sequence[str], idle: set[str], scaled_down: set[str],
                  min_workers: int, max_workers: int, auto_scale: bool) -> ScaleDecision:
    if not auto_scale:
        return ScaleDecision(list(order[:max_workers]), [])
    run = [w for w in order if w not in scaled_down][:max_workers]
    if len(run) < min_workers:  # bring scaled-down workers back, config order
        chosen = set(run)
        for w in order:
            if len(chosen) >= min(min_workers, max_workers):
                break
            chosen.add(w)
        run = [w for w in order if w in chosen]
    down: list[str] = []
    for w in reversed(run):  # the last in config order go first
        if len(run) - len(down) <= min_workers:
            break
        if w in idle:
            down.append(w)
    stopped = set(down)
    return ScaleDecision([w for w in run if w not in stopped], down)
