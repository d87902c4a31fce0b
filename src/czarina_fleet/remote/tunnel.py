"""Hosts behind NAT that dial in: a persistent reverse SSH tunnel to the controller.

A host with no inbound route (home NAT, no bastion) opens the connection itself: it
logs in to the controller's machine's sshd with a key of its own and asks for one
remote forward, `127.0.0.1:PORT` there -> its own sshd. The controller then reaches it
at `127.0.0.1:PORT` like any static host, its host key verified as always.

The key the host uses may do nothing else. Its `authorized_keys` line on the controller
says so: `restrict` (no shell pty, no agent, X11 or port forwarding), then
`port-forwarding` with `permitlisten="127.0.0.1:PORT"` (OpenSSH 7.8+: that one listen
address only, on loopback, so no other host's port can be taken over) and a forced
`command="/bin/false"` in case a session is asked for.

The host runs the loop `dial_in_script` prints (reconnects after any drop; a systemd
unit or `autossh` does the same). Worker sessions live in tmux on the host, so a cut
tunnel only delays the controller; it does not disturb the worker.
"""

from __future__ import annotations

import re
import shlex

from czarina_fleet.remote.validate import check_path

_PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def authorized_keys_line(public_key: str, port: int, name: str) -> str:
    """The controller-side `authorized_keys` line for a dial-in host's tunnel key."""
    key = " ".join(public_key.split()[:2])
    if not _PUBLIC_KEY.match(key):
        raise ValueError("not one OpenSSH public key (type and base64)")
    if not 1024 <= port <= 65535 or not _NAME.match(name):
        raise ValueError(f"bad tunnel port {port} or host name {name!r}")
    return (f'restrict,port-forwarding,permitlisten="127.0.0.1:{port}",'
            f'command="/bin/false" {key} czarina-dial-in-{name}')


def dial_in_script(controller: str, port: int, *, key: str = "~/.ssh/czarina_tunnel",
                   ssh_port: int | None = None, known_hosts: str | None = None,
                   local_ssh: str = "127.0.0.1:22", retry_s: int = 5) -> str:
    """The loop a dial-in host runs: one reverse forward to the controller, opened
    again after any drop. The controller's host key is checked strictly."""
    check_path(controller, "controller address")
    argv = ["ssh", "-N", "-T", "-a", "-x", "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=3", "-o", "StrictHostKeyChecking=yes",
            "-i", key, "-R", f"127.0.0.1:{int(port)}:{local_ssh}"]
    if known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={check_path(known_hosts, 'known_hosts')}"]
    if ssh_port is not None:
        argv += ["-p", str(int(ssh_port))]
    ssh = shlex.join([*argv, controller])
    if key.startswith("~/"):  # left for the host's shell to expand
        ssh = ssh.replace(shlex.quote(key), '"$HOME"/' + shlex.quote(key[2:]))
    return f"while :; do\n  {ssh}\n  sleep {int(retry_s)}\ndone\n"
