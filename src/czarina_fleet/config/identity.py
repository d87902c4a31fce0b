"""The fleet's identity: a random id made once per project and kept.

Everything the fleet makes carries it as an ownership mark (tmux sessions, worktrees and
clones, lab hosts, cloud resources), so the controller acts only on what is its own and
can find all of it again from the world alone. It is not the display name: two projects
may share a name (or two names may flatten to one cloud label); two ids never do.

It lives in `<project>/.czarina/fleet-id` (beside the config, not beside the state
database), so it survives a deleted, emptied or rolled back `fleet.db` and a state file
kept elsewhere (`--state`). It is never committed (the fleet adds it to the repository's
`.git/info/exclude`): a teammate's clone is another fleet. Copying the project directory
(or this one file) to a new machine carries the fleet, and with it everything it owns.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from czarina_fleet.errors import UserError

IDENTITY_FILE = Path(".czarina") / "fleet-id"
# A letter first, then lowercase letters and digits: valid as it is in every place the
# mark goes (tmux option and socket name, git config, AWS tag, GCP label, Azure tag).
FLEET_ID = re.compile(r"^[a-z][a-z0-9-]{7,62}$")


def identity_path(project_dir: Path) -> Path:
    return Path(project_dir) / IDENTITY_FILE


def fleet_identity(project_dir: Path) -> str:
    """The fleet id of the project at `project_dir`, made on first use and kept.

    Safe against concurrent first uses (the file is linked into place, never
    overwritten). Raises UserError (exit 2) when the file exists but is not an id,
    saying how to recover."""
    path = identity_path(project_dir)
    found = _read(path)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    new_id = "cf" + secrets.token_hex(8)
    tmp = path.with_name(f".fleet-id.{os.getpid()}.{secrets.token_hex(4)}")
    tmp.write_text(new_id + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    found = _read(path)
    assert found is not None
    return found


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the fleet identity: {e}", where=str(path)) from None
    if not FLEET_ID.match(text):
        raise UserError(
            f"not a fleet id ({text[:40]!r}): restore this file from a backup or the machine "
            "the fleet ran on; only delete it if nothing of the fleet runs any more (a new "
            "id makes the fleet a stranger to every session and host it made)",
            where=str(path))
    return text
