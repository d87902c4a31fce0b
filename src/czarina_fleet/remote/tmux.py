"""Worker sessions in tmux, written once against `CommandRunner`.

Every command is an argv list: the worker id, work directory and task text are single
argv elements (or stdin), never parsed by a shell. Over SSH the runner quotes the argv
with `shlex.join`, so the remote login shell sees each element as one literal word.
The agent command is the one exception by design: it is the user's configured command
line and runs as the session's shell command.
"""

from __future__ import annotations

from dataclasses import dataclass

from czarina_fleet.errors import FleetError, redact_credentials
from czarina_fleet.remote.runner import CommandResult, CommandRunner
from czarina_fleet.remote.validate import (
    check_path,
    check_socket_name,
    check_task_text,
    check_worker_id,
    session_name,
    worker_id_of_session,
)

TMUX_TIMEOUT = 15.0
_NO_SERVER = ("no server running", "error connecting", "No such file or directory")


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


@dataclass(frozen=True, slots=True)
class TmuxTarget:
    """Which tmux server to talk to: the user's default, a named socket (`-L`) or a
    socket path (`-S`). Tests and lab hosts use their own so they never collide."""

    socket_name: str | None = None
    socket_path: str | None = None

    def __post_init__(self) -> None:
        if self.socket_name is not None and self.socket_path is not None:
            raise ValueError("give a tmux socket name or a socket path, not both")
        if self.socket_name is not None:
            check_socket_name(self.socket_name)
        if self.socket_path is not None:
            check_path(self.socket_path, "tmux socket path")

    def argv(self, *args: str) -> list[str]:
        """`tmux [-L name | -S path] args...`"""
        return ["tmux", *self.socket_args(), *args]

    def socket_args(self) -> list[str]:
        if self.socket_name is not None:
            return ["-L", self.socket_name]
        if self.socket_path is not None:
            return ["-S", self.socket_path]
        return []


DEFAULT_TMUX = TmuxTarget()


def tmux_literal(value: str) -> str:
    """`value` as tmux reads it back after format expansion. tmux expands formats in
    some arguments (`new-session -c` in 3.x: `#(cmd)` there RUNS cmd, `#{...}` is
    replaced): `##` is tmux's escape for a literal `#`. Every value we pass where tmux
    expands formats goes through here; the others (`-s`, `-t`, `-e`) take validated
    ids only, which hold no `#`."""
    return value.replace("#", "##")


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
) -> None:
    """Start `czar-worker-<id>` in `workdir` running `agent_command`, then inject the
    task (if any). Raises RemoteOperationError if the session exists or tmux fails."""
    name = session_name(worker_id)
    check_path(workdir, "work directory")
    if not agent_command.strip():
        raise ValueError(f"worker {worker_id}: the agent command is empty")
    task_text = check_task_text(task_text) if task_text and task_text.strip() else None
    result = await runner.run(
        tmux.argv(
            "new-session", "-d", "-s", name, "-c", tmux_literal(workdir),
            "-x", "200", "-y", "50",
            "-e", f"CZARINA_WORKER_ID={worker_id}", agent_command,
        ),
        timeout=TMUX_TIMEOUT,
    )
    if not result.ok:
        raise RemoteOperationError(runner.host_id, f"could not start tmux session {name}", result)
    if task_text:
        await inject_task(runner, worker_id, task_text, tmux)


async def inject_task(
    runner: CommandRunner, worker_id: str, text: str, tmux: TmuxTarget = DEFAULT_TMUX
) -> None:
    """Paste `text` into the worker's pane and press Enter. The text travels on stdin
    (`load-buffer -`), so no character of it is ever parsed by a shell or by tmux."""
    check_worker_id(worker_id)
    text = check_task_text(text)  # a task never acts as a keystroke, never empty
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
    runner: CommandRunner, worker_id: str, tmux: TmuxTarget = DEFAULT_TMUX
) -> bool:
    """Kill the worker's session. Returns False if it was already gone (not an error)."""
    result = await runner.run(
        tmux.argv("kill-session", "-t", _session_target(worker_id)), timeout=TMUX_TIMEOUT
    )
    if result.ok:
        return True
    if "can't find session" in result.stderr or _no_server(result):
        return False
    raise RemoteOperationError(runner.host_id, f"could not stop {worker_id}", result)


async def capture_pane(
    runner: CommandRunner, worker_id: str, lines: int = 50, tmux: TmuxTarget = DEFAULT_TMUX
) -> str:
    """The last `lines` lines of the worker's pane (history included)."""
    if not 1 <= lines <= 100_000:
        raise ValueError(f"lines must be between 1 and 100000, not {lines}")
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


async def list_sessions(runner: CommandRunner, tmux: TmuxTarget = DEFAULT_TMUX) -> set[str]:
    """Worker ids with a live `czar-worker-<id>` session (other sessions are ignored)."""
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
