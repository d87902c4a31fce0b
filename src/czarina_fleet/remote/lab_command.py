"""The lab's one way to run a system command (ip, useradd, ssh-keygen): argv without a
shell, and a failure raised as LabError naming the command and its stderr."""

from __future__ import annotations

import subprocess


class LabError(Exception):
    """A lab host could not be made (not root, no `ip`, sshd failed to start)."""


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done
