"""The worker operations, in one import: start/stop/inject/capture/list (tmux.py),
the one-round-trip probe (probe.py), preflight and checkout (bootstrap.py), and the
argv that attaches a terminal to a worker's session."""

from __future__ import annotations

import shlex
from dataclasses import replace

from czarina_fleet.remote.bootstrap import (
    Preflight,
    PreflightError,
    checkout_path,
    preflight,
    prepare_checkout,
)
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.jump import config_paths, proxy_jump_for
from czarina_fleet.remote.probe import probe_host
from czarina_fleet.remote.tmux import (
    RemoteOperationError,
    capture_pane,
    inject_task,
    list_sessions,
    start_worker,
    stop_worker,
)
from czarina_fleet.remote.tmux_target import DEFAULT_TMUX, TmuxTarget
from czarina_fleet.remote.validate import check_branch, check_worker_id, session_name

__all__ = [
    "DEFAULT_TMUX", "Preflight", "PreflightError", "RemoteOperationError", "SshHost",
    "TmuxTarget", "attach_argv", "capture_pane", "check_branch", "check_worker_id",
    "checkout_path", "inject_task", "list_sessions", "preflight", "prepare_checkout",
    "probe_host", "session_name", "start_worker", "stop_worker",
]


def attach_argv(
    host: SshHost | None, worker_id: str, tmux: TmuxTarget = DEFAULT_TMUX
) -> list[str]:
    """The argv to exec for `czarina attach`: `tmux attach` here (host None), or
    `ssh -t HOST -- tmux attach` for a remote worker. Host keys are checked as always,
    the jump host's too (the SSH config's ProxyJump is resolved here so that our
    strict ProxyCommand replaces it), and nothing is forwarded."""
    target = "=" + session_name(worker_id)
    tmux_argv = tmux.argv("attach-session", "-t", target)
    if host is None:
        return tmux_argv
    if host.proxy_jump is None:
        host = replace(host, proxy_jump=proxy_jump_for(host, config_paths(None)))
    return ["ssh", "-t", *host.openssh_args(), "--", host.address, shlex.join(tmux_argv)]
