"""Living beside upstream Czarina, which installs its own `czarina` command.

czarina-fleet installs two commands: `czarina-fleet` (always ours, never forwards) and
`czarina`. When `czarina` is ours and is given a verb we do not have (`launch`, `init`,
`daemon`, `closeout`, ...), it hands the whole command line to upstream's `czarina`,
found like this:

1. `CZARINA_UPSTREAM`, if set, is the path of upstream's command (an empty value turns
   forwarding off);
2. else the first executable named `czarina` on PATH that is not czarina-fleet: not the
   file we were started as (same inode), and not any czarina-fleet console script (its
   first 2 KB import `czarina_fleet`: the wrapper pip writes, in whichever venv).

A loop (upstream's `czarina` turning out to exec us back) is caught by the process id:
forwarding execs in place, so a second forward in the same process means a loop, and
that is an error instead of a hang. Upstream spawning `czarina ...` as a child process
(a new pid) is forwarded normally.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from czarina_fleet.errors import UserError

FORWARDED_ENV = "CZARINA_FLEET_FORWARDED"  # holds the pid that last forwarded
UPSTREAM_ENV = "CZARINA_UPSTREAM"
OWN_MARKER = b"czarina_fleet"


def forwards(prog: str) -> bool:
    """Only the `czarina` command forwards; `czarina-fleet` and `python -m` never do."""
    return Path(prog).name == "czarina"


def unknown_verb(argv: Sequence[str], verbs: Sequence[str]) -> str | None:
    """The verb of argv if it is one we do not have. Global options (`--config PATH`,
    `--state PATH`) may come first; `--help`/`--version` alone are ours."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--state"):
            i += 2
            continue
        if arg.startswith("-"):
            if arg.startswith(("--config=", "--state=")):
                i += 1
                continue
            return None
        return None if arg in verbs else arg
    return None


def find_upstream(self_path: str | None, env: dict[str, str] | None = None) -> str | None:
    """Upstream's `czarina` (see the module docstring), or None."""
    env = dict(os.environ) if env is None else env
    if UPSTREAM_ENV in env:
        chosen = env[UPSTREAM_ENV]
        return chosen if chosen and os.access(chosen, os.X_OK) else None
    for folder in env.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder or ".", "czarina")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if _is_ours(candidate, self_path):
            continue
        return candidate
    return None


def _is_ours(candidate: str, self_path: str | None) -> bool:
    if self_path is not None:
        try:
            if os.path.samefile(candidate, self_path):
                return True
        except OSError:
            pass
    try:
        with open(candidate, "rb") as fh:
            return OWN_MARKER in fh.read(2048)
    except OSError:
        return True  # unreadable: not something we can vouch for as upstream


def forward(argv: Sequence[str], verb: str, ours: Sequence[str]) -> None:
    """Exec upstream's `czarina` with argv; returns only by raising UserError."""
    self_path = _self_path()
    upstream = find_upstream(self_path)
    known = ", ".join(sorted(ours))
    if upstream is None:
        raise UserError(f'"{verb}" is not a czarina-fleet verb (ours: {known}), and upstream '
                        "Czarina's `czarina` was not found on PATH to run it (or set "
                        f"{UPSTREAM_ENV}=/path/to/czarina)")
    if os.environ.get(FORWARDED_ENV) == str(os.getpid()):
        raise UserError(f"{upstream} leads back to czarina-fleet (a loop): point "
                        f"{UPSTREAM_ENV} at upstream Czarina's own czarina script")
    os.environ[FORWARDED_ENV] = str(os.getpid())
    os.execv(upstream, [upstream, *argv])


def _self_path() -> str | None:
    """The file this process was started as (argv[0], found on PATH if bare)."""
    import shutil

    prog = sys.argv[0] if sys.argv else ""
    if not prog:
        return None
    if os.sep in prog:
        return prog
    return shutil.which(prog)
