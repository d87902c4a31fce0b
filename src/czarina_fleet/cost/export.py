"""One entry point for `czarina cost report`: ledger entries in, a report out.

The CLI reads the entries (`Store.ledger(since, until)`), builds the hosts' fully
qualified resource ids (`cost/resource_ids.py`) and calls `export_report`. Nothing here
re-prices: it only reshapes the entries.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, TextIO

from rich.console import Console

from czarina_fleet.cost.focus import render_focus_csv
from czarina_fleet.cost.price_notes import PriceNote
from czarina_fleet.cost.report import GroupBy, render_csv, render_table, report_json, write_text
from czarina_fleet.model.cost import LedgerEntry

ReportFormat = Literal["table", "csv", "json", "focus"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("table", "csv", "json", "focus")


def export_report(
    entries: Sequence[LedgerEntry],
    fmt: ReportFormat,
    out: Path | TextIO | None = None,
    *,
    by: GroupBy = "worker",
    fleet: str = "czarina",
    resource_ids: Mapping[str, str] | None = None,
    prices: Mapping[str, PriceNote] | None = None,
    console: Console | None = None,
) -> None:
    """Write the report to `out` (a path, a stream, or None for standard output).

    - table: totals per `by` group with a Total row (rich; plain text into a file);
    - csv: the raw ledger, one row per entry;
    - json: total, groups per `by`, and every entry;
    - focus: FinOps FOCUS 1.2 CSV, one row per host, worker and hour (the controller's
      estimate, marked as such on every row: never add it to the provider's bill).
    `prices` (host id -> where its price came from, `cost/price_notes.py`) goes under
    the table, into the JSON ("prices") and into the FOCUS column x_PriceSource.
    Raises ValueError for an unknown format (the CLI's argument parser prevents it)."""
    notes = prices or {}
    if fmt == "table":
        table = render_table(entries, by)
        lines = [note.text() for _, note in sorted(notes.items())]
        footer = "Prices (recorded at launch):\n  " + "\n  ".join(lines) if lines else ""
        if out is None:
            shown = console or Console(markup=False, emoji=False)
            shown.print(table)
            if footer:
                shown.print(footer, markup=False, highlight=False)
            return
        recorder = Console(record=True, width=120, file=io.StringIO(), markup=False,
                           emoji=False)
        recorder.print(table)
        write_text(recorder.export_text() + (footer + "\n" if footer else ""), out)
    elif fmt == "csv":
        write_text(render_csv(entries), out)
    elif fmt == "json":
        doc = json.loads(report_json(entries, by))
        doc["prices"] = {h: note.as_dict() for h, note in sorted(notes.items())}
        write_text(json.dumps(doc, indent=2) + "\n", out)
    elif fmt == "focus":
        sources = {h: note.source for h, note in notes.items()}
        write_text(render_focus_csv(entries, fleet, resource_ids=resource_ids,
                                    price_sources=sources), out)
    else:
        raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(REPORT_FORMATS)}")

