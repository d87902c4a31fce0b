"""Rendering for people (rich tables) and for programs (JSON). No logic lives here.

Everything shown is what the user (or a host) wrote, printed literally: the console
interprets neither rich markup (`[bold]`) nor emoji codes (`:a:` in `start:a:local:4`).
Tables of more than `PLAIN_ROWS` rows are drawn as plain aligned text: rich lays out
each cell at a few milliseconds apiece, which for 100,000 workers is many minutes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from czarina_fleet.errors import printable
from czarina_fleet.model.actions import Action

PLAIN_ROWS = 500


def console() -> Console:
    # Piped output (files, CI logs, tests) gets room instead of truncated cells.
    width = None if sys.stdout.isatty() else 240
    return Console(highlight=False, soft_wrap=False, width=width, markup=False, emoji=False)


def literal(value: object) -> Text:
    """A cell or line shown exactly as written (no markup, no emoji codes)."""
    return Text("-" if value is None else str(value))


def table(title: str | None, columns: Sequence[str],
          rows: Sequence[Sequence[Any]]) -> Table | PlainTable:
    # Cells often come from hosts (commit subjects, errors): no escapes, no controls.
    cells = [["-" if v is None else printable(str(v)) for v in row] for row in rows]
    if len(cells) > PLAIN_ROWS:
        return PlainTable(title, list(columns), cells)
    t = Table(title=literal(title) if title is not None else None, title_justify="left",
              header_style="bold")
    for col in columns:
        t.add_column(literal(col))
    for row in cells:
        t.add_row(*(Text(v) for v in row))
    return t


class PlainTable:
    """Columns padded with spaces, one line per row; linear in the number of cells."""

    def __init__(self, title: str | None, columns: list[str], rows: list[list[str]]) -> None:
        self.title, self.columns, self.rows = title, columns, rows

    def lines(self) -> Iterator[str]:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        if self.title:
            yield self.title
        yield "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=False)).rstrip()
        for row in self.rows:
            yield "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        for line in self.lines():
            yield Segment(line)
            yield Segment.line()


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def warn(message: str) -> None:
    print(f"warning: {printable(message)}", file=sys.stderr)


def print_strangers(found: dict[str, list[str]]) -> None:
    """Look-alike sessions without this fleet's mark: said, never touched."""
    for host, names in sorted(found.items()):
        if names:
            print(f"{host}: not this fleet's, left untouched: {', '.join(names)}")


def print_plan(actions: Sequence[Action], errors: list[str], as_json: bool, title: str) -> None:
    """The actions of one plan (or one step), each with its reason, and its warnings."""
    if as_json:
        print_json({"actions": [{"kind": type(a).__name__, "describe": a.describe(),
                                 "reason": a.reason} for a in actions], "errors": errors})
        return
    if actions:
        console().print(table(title, ["#", "Action (and why)"], [
            (i + 1, a.describe()) for i, a in enumerate(actions)]))
    elif errors:
        print("No action taken; see the warnings.")
    else:
        print("Nothing to do: the fleet matches the desired state.")
    for e in errors:
        print(f"warning: {e}", file=sys.stderr)
