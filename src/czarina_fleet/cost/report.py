"""Cost reports from ledger entries: totals grouped by worker, host, pool, provider or
day; CSV and JSON exports; a `rich` table for the CLI. The FOCUS export is in
`cost/focus.py`.

Reports never re-price: every number comes from the entries, which carry the rate
recorded at launch. Grouping by day (UTC) splits an entry that crosses midnight in
proportion to its time on each side, so per-day totals still add up to the whole.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from rich.table import Table

from czarina_fleet.cost.ledger import entry_end, entry_host_hours, entry_share
from czarina_fleet.model.cost import LedgerEntry

GroupBy = Literal["worker", "host", "pool", "provider", "day"]
GROUP_BYS: tuple[GroupBy, ...] = ("worker", "host", "pool", "provider", "day")
IDLE_LABEL = "(idle capacity)"
DAY_S = 86400.0
LEDGER_CSV_COLUMNS = [
    "start", "end", "seconds", "host_id", "worker_id", "usd", "rate_per_hour", "share",
    "provider", "pool", "shape", "region", "spot",
]


@dataclass(frozen=True, slots=True)
class GroupTotal:
    key: str
    usd: float
    host_hours: float        # hours of host capacity carried (slot share x time)
    entries: int
    first: float             # earliest start, epoch seconds
    last: float              # latest end


def group_totals(entries: Iterable[LedgerEntry], by: GroupBy) -> list[GroupTotal]:
    """Totals per group, largest spend first (ties by key). `by="day"` splits entries
    at UTC midnights first."""
    items = rebucket(entries, DAY_S) if by == "day" else list(entries)
    key_of = _KEYS[by]
    acc: dict[str, list[LedgerEntry]] = defaultdict(list)
    for e in items:
        acc[key_of(e)].append(e)
    totals = [
        GroupTotal(
            key=k,
            usd=math.fsum(e.usd for e in es),
            host_hours=math.fsum(entry_host_hours(e) for e in es),
            entries=len(es),
            first=min(e.ts for e in es),
            last=max(entry_end(e) for e in es),
        )
        for k, es in acc.items()
    ]
    return sorted(totals, key=lambda t: (-t.usd, t.key))


def total_usd(entries: Iterable[LedgerEntry]) -> float:
    return math.fsum(e.usd for e in entries)


def rebucket(entries: Iterable[LedgerEntry], bucket_s: float) -> list[LedgerEntry]:
    """Entries cut at multiples of `bucket_s` (epoch-aligned, so hours and UTC days),
    then merged per (host, worker, bucket). Money is split in proportion to time, so
    the total is unchanged. Zero-length entries are dropped (they carry no money)."""
    # key -> [first start, last end, usd, a template entry]; entries are built once at
    # the end because a ledger can hold millions of per-tick rows.
    acc: dict[tuple[str, str | None, int], list[Any]] = {}
    for e in entries:
        if e.seconds <= 0:
            continue
        end = entry_end(e)
        bucket = math.floor(e.ts / bucket_s)
        pieces = ([(e.ts, end, e.usd)] if end <= (bucket + 1) * bucket_s
                  else _split(e, bucket_s))
        for start, stop, usd in pieces:
            key = (e.host_id, e.worker_id, math.floor(start / bucket_s))
            slot = acc.get(key)
            if slot is None:
                acc[key] = [start, stop, usd, e]
            else:
                slot[0], slot[1] = min(slot[0], start), max(slot[1], stop)
                slot[2] += usd
    merged = [replace(t, ts=a, seconds=b - a, usd=usd) for a, b, usd, t in acc.values()]
    return sorted(merged, key=lambda e: (e.ts, e.host_id, e.worker_id or ""))


def ledger_csv(entries: Iterable[LedgerEntry], out: TextIO) -> int:
    """The raw ledger as CSV (one row per entry, times in ISO 8601 UTC). Returns rows."""
    writer = csv.DictWriter(out, fieldnames=LEDGER_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for e in entries:
        row = asdict(e)
        del row["ts"]
        row.update(start=iso_utc(e.ts), end=iso_utc(entry_end(e)), usd=repr(e.usd),
                   rate_per_hour=repr(e.rate_per_hour), share=f"{entry_share(e):.6g}")
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        n += 1
    return n


def report_json(entries: Sequence[LedgerEntry], by: GroupBy | None = None) -> str:
    """A JSON document: total, optional groups, and every entry."""
    doc: dict[str, object] = {
        "currency": "USD",
        "total_usd": total_usd(entries),
        "period": _period(entries),
        "entries": [asdict(e) for e in entries],
    }
    if by is not None:
        doc["group_by"] = by
        doc["groups"] = [asdict(t) for t in group_totals(entries, by)]
    return json.dumps(doc, indent=2, sort_keys=False)


def render_table(entries: Sequence[LedgerEntry], by: GroupBy, title: str | None = None) -> Table:
    """A `rich` table of totals per group with a Total row, for `czarina cost report`."""
    label = {"worker": "Worker", "host": "Host", "pool": "Pool", "provider": "Provider",
             "day": "Day (UTC)"}[by]
    table = Table(title=title or f"Cost by {by}", show_footer=True)
    totals = group_totals(entries, by)
    table.add_column(label, footer="Total")
    table.add_column("Cost (USD)", justify="right", footer=_money(total_usd(entries)))
    table.add_column("Host-hours", justify="right",
                     footer=f"{math.fsum(t.host_hours for t in totals):.2f}")
    table.add_column("From", footer="")
    table.add_column("To", footer="")
    for t in totals:
        table.add_row(t.key, _money(t.usd), f"{t.host_hours:.2f}",
                      iso_utc(t.first), iso_utc(t.last))
    return table


def write_text(text: str, out: Path | TextIO | None) -> None:
    """Write to a file path, an open stream, or (None) standard output."""
    if isinstance(out, Path):
        out.write_text(text, encoding="utf-8")
    elif out is None:
        import sys
        sys.stdout.write(text)
    else:
        out.write(text)


def render_csv(entries: Iterable[LedgerEntry]) -> str:
    buf = io.StringIO()
    ledger_csv(entries, buf)
    return buf.getvalue()


def iso_utc(ts: float) -> str:
    """Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ` (the FOCUS date-time format)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(usd: float) -> str:
    return f"${usd:,.4f}" if abs(usd) < 1 else f"${usd:,.2f}"


def _period(entries: Sequence[LedgerEntry]) -> dict[str, str] | None:
    if not entries:
        return None
    return {"start": iso_utc(min(e.ts for e in entries)),
            "end": iso_utc(max(entry_end(e) for e in entries))}


def _split(e: LedgerEntry, bucket_s: float) -> list[tuple[float, float, float]]:
    """(start, end, usd) pieces cut at bucket edges. The last piece takes what the others
    leave (not its own product), because ts + seconds loses precision at epoch
    magnitudes and the money must add up exactly. If the worker left and came back
    within one bucket, the merged entry spans the gap (its share is the average)."""
    end = entry_end(e)
    pieces: list[tuple[float, float, float]] = []
    t, left = e.ts, e.usd
    while True:
        edge = (math.floor(t / bucket_s) + 1) * bucket_s
        if edge >= end:
            pieces.append((t, end, left))
            return pieces
        usd = e.usd * (edge - t) / e.seconds
        pieces.append((t, edge, usd))
        t, left = edge, left - usd


def _day(e: LedgerEntry) -> str:
    return datetime.fromtimestamp(e.ts, UTC).strftime("%Y-%m-%d")


_KEYS: dict[str, Callable[[LedgerEntry], str]] = {
    "worker": lambda e: e.worker_id or IDLE_LABEL,
    "host": lambda e: e.host_id,
    "pool": lambda e: e.pool or f"({e.provider})",
    "provider": lambda e: e.provider,
    "day": _day,
}
