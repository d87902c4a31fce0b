"""Worker sessions in tmux, written once against `CommandRunner`.

Every command is an argv list: the worker id, work directory and task text are single
argv elements (or stdin), never parsed by a shell. Over SSH the runner quotes the argv
with `shlex.join`, so the remote login shell sees each element as one literal word.
The agent command is the one exception by design: it is the user's configured command
line and runs as the session's shell command.

Ownership: a session the fleet starts carries its fleet id (config/identity.py) as the
session option `@czarina_fleet` (and `CZARINA_FLEET_ID` in its environment), set in the
same tmux command that makes it; `@czarina_ready` is set once its task was typed in.
Given `owner`, every operation here acts only on sessions carrying that mark: a
look-alike `czar-worker-<id>` session that is unmarked or another fleet's is never typed
into, read or stopped (`NotOurSession`). Which tmux server: tmux_target.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from czarina_fleet.errors import FleetError, redact_credentials
from czarina_fleet.remote.runner import CommandResult, CommandRunner
from czarina_fleet.remote.tmux_target import DEFAULT_TMUX, TmuxTarget, tmux_literal
from czarina_fleet.remote.validate import (
    check_path,
    check_socket_name,
    check_task_text,
    check_worker_id,
    session_name,
    worker_id_of_session,
)

TMUX_TIMEOUT = 15.0
# A client that connected while the server was exiting, because its last session had
# just been killed: CI saw "server exited unexpectedly" from a second kill-session (about
# 1 run in 200 on a loaded machine). It means the same as "no server running".
_SERVER_EXITING = ("server exited unexpectedly", "lost server")
# Every way a tmux client reports that no server is there.
_NO_SERVER = ("no server running", "error connecting", "No such file or directory",
              *_SERVER_EXITING)
_SESSION_GONE = ("can't find session", "no current target")
_SERVER_EXIT_RETRIES = (0.05, 0.2, 1.0)
OWNER_OPTION = "@czarina_fleet"
READY_OPTION = "@czarina_ready"


class RemoteOperationError(FleetError):
    """A command on a host failed; the message names the host and what failed."""

    def __init__(self, host_id: str, what: str, result: CommandResult | None = None) -> None:
        detail = ""
        if result is not None:
            detail = (result.stderr.strip() or result.stdout.strip())[-500:]
            detail = f" (exit {result.exit_status}: {detail})" if detail else ""
        super().__init__(redact_credentials(f"{host_id}: {what}{detail}"))
        self.host_id = host_id
        self.result = result


class NotOurSession(RemoteOperationError):
    """A `czar-worker-<id>` session exists but does not carry this fleet's mark."""


@dataclass(frozen=True, slots=True)
class SessionMark:
    owner: str   # the fleet id it carries, "" when unmarked
    ready: bool  # its task was typed in


def _session_target(worker_id: str) -> str:
    # "=" asks for an exact match: "czar-worker-a" must never select "czar-worker-ab".
    return "=" + session_name(worker_id)


def _pane_target(worker_id: str) -> str:
    return _session_target(worker_id) + ":"


async def start_worker(
    runner: CommandRunner,
    *,
    worker_id: str,
    workdir: str,
    agent_command: str,
    task_text: str | None,
    tmux: TmuxTarget = DEFAULT_TMUX,
    owner: str | None = None,
) -> None:
    """Start `czar-worker-<id>` in `workdir` running `agent_command`, marked as `owner`'s,
    then inject the task (if any). Idempotent for the owner: its own session already
    there is kept (and gets its task if a killed controller never typed it in).
    Raises NotOurSession if a session of that name is not the owner's, and
    RemoteOperationError if tmux fails."""
    name = session_name(worker_id)
    check_path(workdir, "work directory")
    if not agent_command.strip():
        raise ValueError(f"worker {worker_id}: the agent command is empty")
    task_text = check_task_text(task_text) if task_text and task_text.strip() else None
    env = ["-e", f"CZARINA_WORKER_ID={worker_id}"]
    mark: list[str] = []
    if owner is not None:
        env += ["-e", f"CZARINA_FLEET_ID={check_socket_name(owner)}"]
        # Same tmux command: the session never exists unmarked.
        mark = [";", "set-option", "-t", _pane_target(worker_id), OWNER_OPTION, owner]
    argv = tmux.argv("new-session", "-d", "-s", name, "-c", tmux_literal(workdir),
                     "-x", "200", "-y", "50", *env, agent_command, *mark)
    result = await runner.run(argv, timeout=TMUX_TIMEOUT)
    for pause in _SERVER_EXIT_RETRIES:
        # The server was exiting (its last session just stopped) as this client reached
        # it: nothing was made; the next try starts a fresh server.
        if result.ok or not any(m in result.stderr for m in _SERVER_EXITING):
            break
        await asyncio.sleep(pause)
        result = await runner.run(argv, timeout=TMUX_TIMEOUT)
    if not result.ok:
        if owner is None or "duplicate session" not in result.stderr:
            raise RemoteOperationError(runner.host_id, f"could not start tmux session {name}",
                                       result)
        found = (await session_marks(runner, tmux)).get(worker_id)
        _check_owner(runner, worker_id, owner, found)
        if found is not None and found.ready:
            return  # already running with its task: nothing to do
    if task_text:
        await inject_task(runner, worker_id, task_text, tmux)
    if owner is not None:
        await _set_ready(runner, worker_id, tmux)


async def _set_ready(runner: CommandRunner, worker_id: str, tmux: TmuxTarget) -> None:
    done = await runner.run(
        tmux.argv("set-option", "-t", _pane_target(worker_id), READY_OPTION, "1"),
        timeout=TMUX_TIMEOUT)
    if not done.ok:
        raise RemoteOperationError(runner.host_id, f"could not mark {worker_id} started", done)


def _check_owner(runner: CommandRunner, worker_id: str, owner: str,
                 found: SessionMark | None) -> None:
    if found is None or found.owner == owner:
        return
    whose = "another fleet's" if found.owner else "not marked as any fleet's"
    raise NotOurSession(
        runner.host_id, f"tmux session {session_name(worker_id)} is {whose}, not this "
        "fleet's: left untouched (stop it yourself if it is a leftover, or give this "
        "fleet its own tmux server: see docs/security.md)")


async def session_marks(runner: CommandRunner,
                        tmux: TmuxTarget = DEFAULT_TMUX) -> dict[str, SessionMark]:
    """Worker id -> the ownership mark of its `czar-worker-<id>` session, for every
    such session on the server (marked or not)."""
    result = await runner.run(
        tmux.argv("list-sessions", "-F",
                  f"#{{session_name}} #{{{OWNER_OPTION}}} #{{{READY_OPTION}}}"),
        timeout=TMUX_TIMEOUT)
    if not result.ok:
        if _no_server(result):
            return {}
        raise RemoteOperationError(runner.host_id, "could not list tmux sessions", result)
    marks: dict[str, SessionMark] = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(" ")
        wid = worker_id_of_session(name)
        if wid:
            owner, _, ready = rest.partition(" ")
            marks[wid] = SessionMark(owner.strip(), ready.strip() == "1")
    return marks


async def require_own(runner: CommandRunner, worker_id: str, owner: str | None,
                      tmux: TmuxTarget = DEFAULT_TMUX) -> None:
    """Raise NotOurSession unless the worker's session is `owner`'s (None: no check).
    A missing session passes: the operation itself then says it is not there."""
    if owner is not None:
        _check_owner(runner, worker_id, owner,
                     (await session_marks(runner, tmux)).get(worker_id))


async def inject_task(
    runner: CommandRunner, worker_id: str, text: str, tmux: TmuxTarget = DEFAULT_TMUX,
    owner: str | None = None,
) -> None:
    """Paste `text` into the worker's pane and press Enter. The text travels on stdin
    (`load-buffer -`), so no character of it is ever parsed by a shell or by tmux.
    With `owner`, only into that fleet's session (else NotOurSession)."""
    check_worker_id(worker_id)
    text = check_task_text(text)  # a task never acts as a keystroke, never empty
    await require_own(runner, worker_id, owner, tmux)
    buffer = f"czarina-task-{worker_id}"
    loaded = await runner.run(
        tmux.argv("load-buffer", "-b", buffer, "-"), input=text, timeout=TMUX_TIMEOUT
    )
    if not loaded.ok:
        raise RemoteOperationError(runner.host_id, f"could not load task for {worker_id}", loaded)
    pasted = await runner.run(
        tmux.argv("paste-buffer", "-d", "-p", "-b", buffer, "-t", _pane_target(worker_id)),
        timeout=TMUX_TIMEOUT,
    )
    if not pasted.ok:
        raise RemoteOperationError(
            runner.host_id, f"could not paste task into {session_name(worker_id)}", pasted
        )
    entered = await runner.run(
        tmux.argv("send-keys", "-t", _pane_target(worker_id), "Enter"), timeout=TMUX_TIMEOUT
    )
    if not entered.ok:
        raise RemoteOperationError(runner.host_id, f"could not press Enter in {worker_id}", entered)


async def stop_worker(
    runner: CommandRunner, worker_id: str, tmux: TmuxTarget = DEFAULT_TMUX,
    owner: str | None = None,
) -> bool:
    """Kill the worker's session. Returns False if it was already gone (not an error).
    With `owner`, a session that is not that fleet's counts as gone: it is never
    killed (the probe reports it)."""
    if owner is not None:
        found = (await session_marks(runner, tmux)).get(worker_id)
        if found is None or found.owner != owner:
            return False
    result = await runner.run(
        tmux.argv("kill-session", "-t", _session_target(worker_id)), timeout=TMUX_TIMEOUT
    )
    if result.ok:
        return True
    # "no current target": the session went between tmux resolving the target and
    # acting on it (two stops at once); gone all the same.
    if any(m in result.stderr for m in _SESSION_GONE) or _no_server(result):
        return False
    raise RemoteOperationError(runner.host_id, f"could not stop {worker_id}", result)


async def capture_pane(
    runner: CommandRunner, worker_id: str, lines: int = 50, tmux: TmuxTarget = DEFAULT_TMUX,
    owner: str | None = None,
) -> str:
    """The last `lines` lines of the worker's pane (history included); with `owner`,
    only of that fleet's session (else NotOurSession)."""
    if not 1 <= lines <= 100_000:
        raise ValueError(f"lines must be between 1 and 100000, not {lines}")
    await require_own(runner, worker_id, owner, tmux)
    result = await runner.run(
        tmux.argv("capture-pane", "-p", "-J", "-t", _pane_target(worker_id), "-S", f"-{lines}"),
        timeout=TMUX_TIMEOUT,
    )
    if not result.ok:
        raise RemoteOperationError(
            runner.host_id, f"could not read the pane of {worker_id}", result
        )
    kept = result.stdout.rstrip("\n").split("\n")
    return "\n".join(kept[-lines:]) + "\n"


async def list_sessions(runner: CommandRunner, tmux: TmuxTarget = DEFAULT_TMUX,
                        owner: str | None = None) -> set[str]:
    """Worker ids with a live `czar-worker-<id>` session (other sessions are ignored);
    with `owner`, only the sessions marked as that fleet's."""
    if owner is not None:
        return {w for w, m in (await session_marks(runner, tmux)).items() if m.owner == owner}
    result = await runner.run(
        tmux.argv("list-sessions", "-F", "#{session_name}"), timeout=TMUX_TIMEOUT
    )
    if not result.ok:
        if _no_server(result):
            return set()
        raise RemoteOperationError(runner.host_id, "could not list tmux sessions", result)
    ids = (worker_id_of_session(line.strip()) for line in result.stdout.splitlines())
    return {i for i in ids if i}


def _no_server(result: CommandResult) -> bool:
    return any(marker in result.stderr for marker in _NO_SERVER)
