"""The one interface worker operations are written against: run an argv on a host.

`LocalRunner` runs it here with no shell; the SSH runner (`ssh_pool.py`) sends
`shlex.join(argv)` over a pooled connection. The tmux/git operations and the status
probe are written once, as argv builders, and work on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from czarina_fleet.errors import MissingTool


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class HostUnreachable(Exception):
    """The host could not be reached (connect failed, timed out, connection lost)."""


class CommandTimeout(Exception):
    pass


class CommandRunner(Protocol):
    host_id: str

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run argv; raise HostUnreachable or CommandTimeout, never hang."""
        ...


class LocalRunner:
    """Runs argv on this machine without a shell."""

    def __init__(self, host_id: str = "local", cwd: str | None = None) -> None:
        self.host_id = host_id
        self.cwd = cwd

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        full_env = {**os.environ, **env} if env else None
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None
                else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=full_env,
                # Its own process group, so a timeout kills the command's children too: a
                # grandchild holding stdout open would otherwise keep us waiting.
                start_new_session=True,
            )
        except FileNotFoundError:
            # the program (not the directory) is missing: say which, and how to get it
            if shutil.which(argv[0], path=(full_env or os.environ).get("PATH")) is None:
                raise MissingTool(argv[0]) from None
            raise
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout
            )
        except TimeoutError:
            _kill_group(proc.pid)
            # Drain to EOF so the pipes close with the loop still running.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.communicate(), 5)
            await proc.wait()
            raise CommandTimeout(f"{argv[0]} timed out after {timeout:.0f}s") from None
        return CommandResult(
            tuple(argv), proc.returncode or 0, out.decode(errors="replace"),
            err.decode(errors="replace"),
        )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
