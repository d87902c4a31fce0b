"""Git branch-name rules (`git check-ref-format --branch`), in Python.

A worker's branch is later passed to git on remote hosts; rejecting a bad name while
loading the config gives the user a line number instead of a failure at start time.
"""

from __future__ import annotations

_FORBIDDEN_CHARS = set(" ~^:?*[\\")


def branch_name_problem(name: str) -> str | None:
    """Why `name` is not a valid git branch name, or None when it is."""
    if not name:
        return "is empty"
    if name == "HEAD":
        return 'is "HEAD", which git reserves'
    if name.startswith("-"):
        return 'starts with "-"'
    if name == "@":
        return 'is "@", which git reserves'
    for ch in name:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "contains a control character"
        if ch in _FORBIDDEN_CHARS:
            shown = "a space" if ch == " " else f'"{ch}"'
            return f"contains {shown}"
    if ".." in name:
        return 'contains ".."'
    if "@{" in name:
        return 'contains "@{"'
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return 'has an empty path component (leading, trailing or double "/")'
    if name.endswith("."):
        return 'ends with "."'
    for part in name.split("/"):
        if part.startswith("."):
            return f'has a component starting with "." ("{part}")'
        if part.endswith(".lock"):
            return f'has a component ending with ".lock" ("{part}")'
    return None
