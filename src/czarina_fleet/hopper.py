"""Read the hopper: the Markdown backlog in `.czarina/hopper/` (upstream's
`hopper.project_hopper`).

Each `*.md` file is one item: a title line (`# Enhancement #101: Fix Dashboard Refresh
Bug`), metadata lines (`**Priority:** High`, `**Complexity:** Small`, `**Tags:** bugfix,
ux`, `**Estimate:** 2-4 hours`, and optionally `**Status:**`, `**Assigned To:**`), then
free text. Done items live under `archived/` and are skipped, as are README files.
Sub-directories other than `archived/` are read (phase folders).

Reading never fails on one bad file: a file that cannot be read, or has no title, is
reported in `HopperScan.problems` (naming the file and what to change) and the rest is
read. A hopper directory that does not exist is simply empty: a fresh project has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from czarina_fleet.model.hopper import DONE_STATUSES, HopperItem

ARCHIVE_DIR = "archived"
DEFAULT_HOPPER = Path(".czarina") / "hopper"
_TITLE = re.compile(r"^#\s+(?P<title>\S.*?)\s*#*\s*$")
# `**Key:** value`, `**Key**: value`, optionally as a list item (`- **Key:** value`).
_META = re.compile(r"^\s*(?:[-*+]\s+)?\*\*(?P<key>[A-Za-z][A-Za-z _-]{0,40}?)\s*(?::\*\*|\*\*\s*:)"
                   r"\s*(?P<value>.*?)\s*$")
_RANGE = re.compile(
    r"(?P<lo>\d+(?:\.\d+)?)\s*(?:(?:-|–|to)\s*(?P<hi>\d+(?:\.\d+)?))?\s*(?P<unit>[a-z]*)")
_UNIT_HOURS = {"m": 1 / 60, "min": 1 / 60, "mins": 1 / 60, "minute": 1 / 60,
               "minutes": 1 / 60, "h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0,
               "d": 8.0, "day": 8.0, "days": 8.0, "w": 40.0, "week": 40.0, "weeks": 40.0}


@dataclass(frozen=True, slots=True)
class HopperScan:
    items: list[HopperItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    archived: int = 0  # done items under archived/
    # The directory exists: the project uses the hopper (a project that does not has
    # none), even while it is empty (before the first item, after the last).
    in_use: bool = False

    @property
    def waiting(self) -> list[HopperItem]:
        return [i for i in self.items if i.waiting]


def assigned_workers(scan: HopperScan) -> frozenset[str]:
    """Workers an open item (not done) is assigned to (`**Assigned To:** api`, or `@api`):
    they have work, however quiet their pane."""
    return frozenset(i.assigned_to.strip().lstrip("@") for i in scan.items
                     if i.assigned_to and (i.status or "").strip().lower() not in DONE_STATUSES)


def hopper_dir(project_root: Path | str) -> Path:
    """Where a project's hopper is (the directory need not exist)."""
    return Path(project_root) / DEFAULT_HOPPER


def read_hopper(directory: Path) -> HopperScan:
    """Every item under `directory` (sorted by path), skipping `archived/` and READMEs."""
    if not directory.is_dir():
        return HopperScan()
    items: list[HopperItem] = []
    problems: list[str] = []
    archived = 0
    for path in sorted(directory.rglob("*.md")):
        rel = path.relative_to(directory)
        if rel.name.lower() == "readme.md":
            continue
        if ARCHIVE_DIR in rel.parts[:-1]:
            archived += 1
            continue
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{path}: cannot read this hopper item ({_why(err)}); "
                            f"save it as UTF-8 text or move it to {ARCHIVE_DIR}/")
            continue
        item = parse_item(text, rel.as_posix())
        if item is None:
            problems.append(f'{path}: no title line; start the file with "# <title>"')
            continue
        items.append(item)
    return HopperScan(items, problems, archived, in_use=True)


def parse_item(text: str, path: str) -> HopperItem | None:
    """One item from its Markdown text; None when it has no `# title` line."""
    title: str | None = None
    line_no = 1
    meta: dict[str, str] = {}
    in_code = False
    for n, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            continue
        if title is None:
            m = _TITLE.match(line)
            if m:
                title, line_no = m.group("title"), n
                continue
        m = _META.match(line)
        if m:
            key = _norm_key(m.group("key"))
            meta.setdefault(key, m.group("value").strip())
    if title is None:
        return None
    estimate = meta.get("estimate") or None
    return HopperItem(
        path=path,
        title=title,
        line=line_no,
        priority=meta.get("priority") or None,
        complexity=meta.get("complexity") or None,
        tags=_tags(meta.get("tags", "")),
        estimate=estimate,
        estimate_hours=parse_estimate(estimate) if estimate else None,
        status=meta.get("status") or None,
        assigned_to=_assignee(meta),
        metadata=meta,
    )


def parse_estimate(text: str) -> tuple[float, float] | None:
    """Hours as (low, high) from '2-4 hours', '1 day', '30 min', '3h', '1–2 weeks'.
    A number without a unit is hours. None when no number is found."""
    m = _RANGE.search(text.lower())
    if m is None:
        return None
    unit = m.group("unit") or "hours"
    factor = _UNIT_HOURS.get(unit)
    if factor is None:
        return None
    lo = float(m.group("lo")) * factor
    hi = float(m.group("hi")) * factor if m.group("hi") else lo
    return (min(lo, hi), max(lo, hi))


def _norm_key(key: str) -> str:
    return re.sub(r"[\s_-]+", "_", key.strip().lower())


def _tags(text: str) -> tuple[str, ...]:
    parts = (t.strip().strip("`").lstrip("#") for t in re.split(r"[,;]", text))
    return tuple(t for t in parts if t)


def _assignee(meta: dict[str, str]) -> str | None:
    for key in ("assigned_to", "assigned", "assignee", "owner", "worker"):
        value = meta.get(key, "").strip()
        if value and value.lower() not in {"-", "none", "unassigned", "n/a", "tbd"}:
            return value
    return None


def _why(err: Exception) -> str:
    if isinstance(err, UnicodeDecodeError):
        return f"not UTF-8 at byte {err.start}"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return type(err).__name__
