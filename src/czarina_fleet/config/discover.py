"""Finding the configuration file: the same search upstream Czarina does."""

from __future__ import annotations

from pathlib import Path

from czarina_fleet.config.paths import safe_exists
from czarina_fleet.errors import UserError

# In each directory, in this order.
CANDIDATES = (Path(".czarina/config.json"), Path("config.sh"), Path(".czarina/config.sh"))


def find_config(start: Path) -> Path:
    """The first candidate in `start` or its nearest parent that has one.

    Raises UserError naming every directory looked in when there is none.
    """
    start = start.absolute()
    searched: list[Path] = []
    for directory in (start, *start.parents):
        searched.append(directory)
        for candidate in CANDIDATES:
            path = directory / candidate
            if safe_exists(path) and path.is_file():
                return path
    names = ", ".join(str(c) for c in CANDIDATES)
    raise UserError(
        f"no configuration found: looked for {names} in {start} and its parents "
        f"({len(searched)} directories, up to {searched[-1]}); create .czarina/config.json "
        "or pass --config PATH"
    )
