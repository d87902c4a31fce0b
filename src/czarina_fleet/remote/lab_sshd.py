"""A lab host's processes: its OpenSSH sshd (config, host key, started inside the host's
network namespace), and the killing of what runs there, always by PID (sshd and its
per-connection children, the lab user's own processes). The namespaces and host
records themselves are remote/netns.py's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from czarina_fleet.remote.lab_command import LabError, run

if TYPE_CHECKING:
    from czarina_fleet.remote.netns import LabHost

SSHD = "/usr/sbin/sshd"


def start_sshd(host: LabHost, client_pub: str, hide_git: bool,
               tools_dir: str | None = None) -> int:
    """Write the host's sshd config (and its host key, once) and start sshd inside its
    namespace, listening on its address only; returns sshd's PID. Only the lab's
    client key logs in, as the host's user."""
    state = Path(host.state_dir)
    key = state / "ssh_host_ed25519_key"
    if not key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    (state / "authorized_keys").write_text(client_pub)
    pub = (state / "ssh_host_ed25519_key.pub").read_text().split()
    Path(host.known_hosts).write_text(f"{host.address} {pub[0]} {pub[1]}\n")
    path = str(state / "bin") if hide_git else "/usr/local/bin:/usr/bin:/bin"
    path_line = f"SetEnv PATH={path}\n" if hide_git else ""
    if tools_dir is not None:
        path_line = f"SetEnv PATH={tools_dir}:{path}\n"
    (state / "sshd_config").write_text(
        f"HostKey {key}\nPidFile {state / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {state / 'authorized_keys'}\n"
        "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin no\nStrictModes no\n"
        f"AllowUsers {host.user}\nMaxStartups 200\nMaxSessions 200\nLogLevel ERROR\n"
        f"{path_line}"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = open(state / "sshd.log", "ab")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.namespace, SSHD, "-D", "-e", "-f",
         str(state / "sshd_config"), "-o", f"ListenAddress={host.address}"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    return proc.pid  # `ip netns exec` execs sshd: the same PID


def kill_sshd(host: LabHost) -> None:
    """Kill the host's sshd and its per-connection children (open sessions drop, as
    when a machine's sshd dies); processes the user left running are kept."""
    if host.sshd_pid:
        for pid in [*descendants(host.sshd_pid), host.sshd_pid]:
            kill_pid(pid)


def descendants(root_pid: int) -> list[int]:
    """Every process below `root_pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_user_processes(user: str) -> None:
    """Kill every process the lab user `user` runs (its tmux server, agents)."""
    # Only our lab user runs these (its tmux server, agents): found by uid, killed by PID.
    done = run("id", "-u", user, check=False)
    if done.returncode != 0:
        return
    uid = int(done.stdout)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    kill_pid(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue


def kill_pid(pid: int) -> None:
    """SIGKILL one process by PID (gone already is fine) and reap it if it is ours."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # reap it if it is our child
    except ChildProcessError:
        pass


def wait_for_port(address: str, port: int, timeout: float) -> None:
    """Return once `address:port` accepts a connection; LabError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LabError(f"sshd on {address}:{port} did not come up within {timeout:.0f}s")
