"""Demand from the hopper: how many more workers AUTO_SCALE should run. Pure.

Upstream's rule, made precise: items waiting in the hopper call for additional workers,
up to MAX_WORKERS, on idle capacity. Idle workers take items first (the czar assigns
them); each item left over calls for one more worker. The answer also covers a fleet
below MIN_WORKERS, and is never negative (shrinking is the idle policy's job, not this).
"""

from __future__ import annotations

from collections.abc import Sequence

from czarina_fleet.model.hopper import HopperItem


def extra_workers_wanted(
    items: Sequence[HopperItem],
    idle_workers: int,
    running: int,
    min_workers: int,
    max_workers: int,
) -> int:
    """Workers to add now: max(items left after idle workers take one each,
    MIN_WORKERS - running), capped so that running + extra <= MAX_WORKERS; >= 0.

    `items` may include items that no longer wait (done, taken): only waiting ones
    count. `running` counts every active worker, idle ones included. Negative counts
    are a caller's bug: ValueError."""
    waiting = sum(1 for i in items if i.waiting)
    return workers_wanted(waiting, idle_workers, running, min_workers, max_workers)


def workers_wanted(waiting: int, idle_workers: int, running: int, min_workers: int,
                   max_workers: int) -> int:
    """`extra_workers_wanted` on a count of waiting items."""
    if min(waiting, idle_workers, running, min_workers, max_workers) < 0:
        raise ValueError("counts cannot be negative")
    unabsorbed = max(0, waiting - idle_workers)
    wanted = max(unabsorbed, min_workers - running)
    room = max(0, max_workers - running)
    return max(0, min(wanted, room))


def by_urgency(items: Sequence[HopperItem]) -> list[HopperItem]:
    """Waiting items, most urgent first (priority, then smaller estimate, then path):
    the order in which new workers should take them."""
    def key(i: HopperItem) -> tuple[int, float, str]:
        est = i.estimate_hours[1] if i.estimate_hours else float("inf")
        return (i.priority_rank, est, i.path)

    return sorted((i for i in items if i.waiting), key=key)
