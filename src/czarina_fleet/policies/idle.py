"""What idle means for a worker, in one place: the dashboard's `idle` word and
auto-scale's scale-down both ask this module. Pure.

A worker is idle when, for `fleet.health.idle_after_s`, its pane printed nothing, it made
no commit, its processes used no CPU (over 5% of one between two probes: a build or a
test run that prints nothing is work), and no hopper item is assigned to it. A worker we
know too little about (not probed, session down, pane activity unknown) is never idle: a
busy one must never be stopped.

An empty pool host is idle after `fleet.scaling.idle_timeout_s`; in a hopper-driven fleet
after `hopper_idle_timeout_s` (default 300 s) when shorter (`host_idle_after`).

How long "for" is depends on where the worker's work comes from (`idle_after`): in a
hopper-driven fleet (auto-scale on and the project's hopper in use) a worker without a
task file of its own works only on hopper items, so without an item it has nothing to
do, and `fleet.health.hopper_idle_after_s` (default 120 s) is enough; every other worker
(a task file, or a fleet that does not use the hopper) keeps `idle_after_s`, since a
quiet agent may still be thinking about its task.
"""

from __future__ import annotations

from czarina_fleet.model.fleet import SessionProbe


def idle_for(session: SessionProbe | None, started_at: float | None, now: float, *,
             has_item: bool = False) -> float:
    """Seconds since the worker's last sign of work (pane output, a commit, CPU use, its
    start); 0 when it has an item or when that cannot be told."""
    if has_item or session is None or not session.alive or session.pane_activity is None:
        return 0.0
    marks = [session.pane_activity]
    if session.last_commit is not None:
        marks.append(session.last_commit.time)
    if session.cpu_activity is not None:
        marks.append(session.cpu_activity)
    if started_at is not None:
        marks.append(started_at)
    return max(0.0, now - max(marks))


def idle_after(idle_after_s: float, hopper_idle_after_s: float, *, hopper_driven: bool,
               own_task: bool) -> float:
    """The quiet time after which this worker is idle: the shorter hopper setting only
    for a hopper worker (no task file) of a hopper-driven fleet."""
    if hopper_driven and not own_task:
        return min(idle_after_s, hopper_idle_after_s)
    return idle_after_s


def host_idle_after(idle_timeout_s: float, hopper_idle_timeout_s: float, *,
                    hopper_driven: bool) -> float:
    """When an empty pool host shuts down: `idle_timeout_s`, or the shorter hopper setting
    in a hopper-driven fleet. There work comes back only as items, and an item that
    waits gets a worker placed this very tick, on an empty host first (placement takes
    the least-used host), which stops the host's idle clock; so a host still empty has
    nothing to do, and an item arriving later gets a host as any scale-up does."""
    if hopper_driven:
        return min(idle_timeout_s, hopper_idle_timeout_s)
    return idle_timeout_s


def hopper_driven(auto_scale: bool, hopper_in_use: bool) -> bool:
    """Auto-scale draws on the hopper: items decide who works."""
    return auto_scale and hopper_in_use


def is_idle(session: SessionProbe | None, started_at: float | None, now: float,
            idle_after_s: float, *, has_item: bool = False) -> bool:
    return idle_for(session, started_at, now, has_item=has_item) >= idle_after_s


def has_unsaved_work(session: SessionProbe | None) -> bool:
    """Uncommitted files or commits origin does not have: stopping it costs a checkpoint."""
    return session is not None and (session.dirty_files > 0 or bool(session.unpushed_commits))
