"""Where each host's price came from, and how old it was: what the cost report shows
beside the money (the ledger carries only the rate).

A host's `price_source` is the quote's source at launch, e.g. "AWS Price List API,
fetched 2026-11-27T10:00:00Z" or "built-in table (offline fallback)". The age is the
time from that fetch to the launch: the price the host was billed at was that old.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from czarina_fleet.model.fleet import HostRecord

_FETCHED = re.compile(r"fetched (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")


@dataclass(frozen=True, slots=True)
class PriceNote:
    host_id: str
    usd_per_hour: float
    source: str                      # "unknown" for hosts launched before sources were kept
    age_at_launch_s: float | None    # None when the source has no fetch time (a table)

    def text(self) -> str:
        age = "" if self.age_at_launch_s is None else (
            f" ({_duration(self.age_at_launch_s)} old at launch)")
        return f"{self.host_id}: ${self.usd_per_hour:g}/h from {self.source}{age}"

    def as_dict(self) -> dict[str, object]:
        return {"usd_per_hour": self.usd_per_hour, "source": self.source,
                "age_at_launch_s": self.age_at_launch_s}


def price_notes(hosts: Iterable[HostRecord], host_ids: Iterable[str]) -> dict[str, PriceNote]:
    """A note for each host in `host_ids` (the hosts a report covers) that is known."""
    wanted = set(host_ids)
    return {h.host_id: _note(h) for h in hosts if h.host_id in wanted}


def _note(h: HostRecord) -> PriceNote:
    source = h.price_source or "unknown (launched before price sources were recorded)"
    m = _FETCHED.search(source)
    age = None
    if m and h.launched_at is not None:
        fetched = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        age = max(0.0, h.launched_at - fetched.timestamp())
    return PriceNote(h.host_id, h.price_per_hour, source, age)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
