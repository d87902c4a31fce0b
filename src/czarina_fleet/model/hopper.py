"""Hopper items: the backlog AUTO_SCALE draws demand from. Plain frozen data.

Upstream Czarina keeps one Markdown file per work item in `.czarina/hopper/`; the reader
is `czarina_fleet.hopper`, the demand policy `czarina_fleet.policies.hopper`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Lower rank = more urgent. Unknown or missing priorities sort after "low".
PRIORITY_RANK: dict[str, int] = {"critical": 0, "urgent": 0, "high": 1, "medium": 2,
                                 "normal": 2, "low": 3}
UNRANKED = 4
# Status words that mean an item no longer waits for a worker.
DONE_STATUSES = frozenset({"done", "complete", "completed", "closed", "merged", "archived",
                           "cancelled", "canceled", "wontfix", "won't fix"})
TAKEN_STATUSES = frozenset({"in progress", "in-progress", "assigned", "active", "started",
                            "wip", "in review", "review"})


@dataclass(frozen=True, slots=True)
class HopperItem:
    """One backlog item. `path` is relative to the hopper directory; `line` is where the
    title was found (for messages). Estimates are hours, (low, high), when parsed."""

    path: str
    title: str
    line: int = 1
    priority: str | None = None
    complexity: str | None = None
    tags: tuple[str, ...] = ()
    estimate: str | None = None
    estimate_hours: tuple[float, float] | None = None
    status: str | None = None
    assigned_to: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def priority_rank(self) -> int:
        if self.priority is None:
            return UNRANKED
        return PRIORITY_RANK.get(self.priority.strip().lower(), UNRANKED)

    @property
    def waiting(self) -> bool:
        """Waiting for a worker: not done, not taken by someone already."""
        status = (self.status or "").strip().lower()
        if status in DONE_STATUSES or status in TAKEN_STATUSES:
            return False
        return not self.assigned_to
