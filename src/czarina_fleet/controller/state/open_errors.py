"""What to tell the user when the state database cannot be opened or read.

Three different situations look alike to sqlite ("unable to open database file",
"attempt to write a readonly database", "database disk image is malformed"), and each
needs a different fix: make the directory writable, recover the file, or point --state
elsewhere. Recovering a damaged database keeps what only it holds (scale overrides, the
cost ledger); moving it away is safe too: the controller rebuilds the rest from the
sessions, worktrees and hosts that carry the fleet's identity.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path


def state_problem(path: Path, error: BaseException) -> str:
    """One message naming `path`, what is wrong with it, and what to do."""
    not_writable = _not_writable(path)
    if not_writable is not None:
        return f"the state database {path} cannot be written: {read_only(not_writable)}"
    text = str(error)
    if isinstance(error, sqlite3.DatabaseError) and (
            "malformed" in text or "not a database" in text or "corrupt" in text):
        return (f"the state database {path} is damaged ({text}). Keep a copy, then "
                f"recover it: sqlite3 {path} .recover | sqlite3 {path}.recovered && mv "
                f"{path}.recovered {path}. Or move it away (mv {path} {path}.broken): the "
                "next `czarina controller run --once` rebuilds the records from what runs, "
                "adopting every session, worktree and host that carries the fleet's "
                "identity (.czarina/fleet-id), starting or stopping none of them; only "
                "scale overrides and the cost ledger are lost")
    return (f"cannot use the state database {path} ({text}); check the path (--state) "
            "and its permissions")


def read_only(where: Path) -> str:
    """`where` cannot be written, why (a read-only filesystem, or permissions), and the
    fix for each."""
    if _on_read_only_fs(where):
        return (f"{where} is on a read-only filesystem; remount it read-write, or keep the "
                "state elsewhere with --state PATH")
    return (f"{where} is read-only for you; make it writable (chmod u+w {where}), or keep "
            "the state elsewhere with --state PATH")


def unwritable_problem(error: OSError) -> str | None:
    """For a write refused (read-only filesystem, permissions) the message and fix;
    None for any other OSError."""
    if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not error.filename:
        return None
    target = Path(os.fsdecode(error.filename))
    where = target if target.exists() else target.parent
    return f"cannot write {target}: {read_only(where)}"


def _not_writable(path: Path) -> Path | None:
    """The file or directory that stops us writing the database, if any."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.parent):
        if candidate.exists():
            if not os.access(candidate, os.W_OK) or _on_read_only_fs(candidate):
                return candidate
            if candidate == path.parent:
                return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent if not os.access(parent, os.W_OK) else None


def _on_read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
