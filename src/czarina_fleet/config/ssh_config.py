"""Host aliases from an OpenSSH client config, so `remote:ALIAS` can name them.

Only literal `Host` patterns count as aliases (no `*`, `?` or `!`): a wildcard block
sets options for many hosts but does not make a name reachable by itself.
"""

from __future__ import annotations

import re
from pathlib import Path

_HOST_LINE = re.compile(r"^\s*host(?:\s*=\s*|\s+)(.*)$", re.IGNORECASE)


def default_ssh_config() -> Path | None:
    try:
        return Path.home() / ".ssh" / "config"
    except (RuntimeError, KeyError):  # no home directory known: no aliases
        return None


def ssh_aliases(path: Path | None) -> frozenset[str]:
    """The literal Host names in `path`; an absent or unreadable file has none."""
    if path is None:
        return frozenset()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return frozenset()
    names: set[str] = set()
    for line in text.splitlines():
        m = _HOST_LINE.match(line)
        if not m:
            continue
        body = m.group(1).split("#", 1)[0]
        for pattern in body.split():
            pattern = pattern.strip('"')
            if pattern and not any(c in pattern for c in "*?!"):
                names.add(pattern)
    return frozenset(names)
