"""What idle means for a worker, in one place: the dashboard's `idle` word and
auto-scale's scale-down both ask this module. Pure.

A worker is idle when, for `fleet.health.idle_after_s`, its pane printed nothing, it made
no commit, its processes used no CPU (over 5% of one between two probes: a build or a
test run that prints nothing is work), and no hopper item is assigned to it. A worker we
know too little about (not probed, session down, pane activity unknown) is never idle: a
busy one must never be stopped.
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


def is_idle(session: SessionProbe | None, started_at: float | None, now: float,
            idle_after_s: float, *, has_item: bool = False) -> bool:
    return idle_for(session, started_at, now, has_item=has_item) >= idle_after_s


def has_unsaved_work(session: SessionProbe | None) -> bool:
    """Uncommitted files or commits origin does not have: stopping it costs a checkpoint."""
    return session is not None and (session.dirty_files > 0 or bool(session.unpushed_commits))
