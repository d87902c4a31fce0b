"""Hosts behind NAT that dial in (issue 15, item 7).

A lab host whose sshd listens on its own loopback only: the controller has no route to
it. It runs the loop `dial_in_script` prints, against an OpenSSH sshd standing for the
controller's machine (on the veth's outer address) that holds only the restricted
`authorized_keys_line`. The controller reaches the host through the tunnel, host key
verified; the tunnel is cut and comes back without disturbing the worker; the tunnel
key can open no other port and run no command.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from czarina_fleet.model.config import StaticHost
from czarina_fleet.remote import lab_sshd, netns
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.runner import CommandTimeout, HostUnreachable
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool
from czarina_fleet.remote.tmux import list_sessions, start_worker
from czarina_fleet.remote.tmux_target import TmuxTarget
from czarina_fleet.remote.tunnel import authorized_keys_line, dial_in_script
from tests.fixtures.netns_hosts import LabHosts

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

TUNNEL_PORT = 22000 + os.getpid() % 5000
FAST = PoolSettings(connect_timeout=3, keepalive_interval=1, keepalive_count_max=2,
                    backoff_base=0.1, backoff_max=0.5)


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(argv, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return found


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_host_behind_nat_is_reached_through_its_tunnel(lab_hosts: LabHosts,
                                                         tmp_path: Path) -> None:
    (h,) = lab_hosts.make(1)
    outer = f"{netns.NET_PREFIX}.{h.index}.1"  # this machine, as the host reaches it
    started: list[subprocess.Popen[bytes]] = []
    try:
        # The host's sshd on its own loopback only: no route from here.
        lab_sshd.kill_sshd(h)
        state = Path(h.state_dir)
        started.append(_start(["ip", "netns", "exec", h.namespace, lab_sshd.SSHD, "-D", "-e",
                               "-f", str(state / "sshd_config"), "-o",
                               "ListenAddress=127.0.0.1"], tmp_path / "host-sshd.log"))
        # The controller machine's sshd, holding only the tunnel key's restricted line.
        ctl_key_pub = _keygen(tmp_path / "ctl_host_key")
        tunnel_pub = _keygen(tmp_path / "tunnel_key")
        (tmp_path / "authorized_keys").write_text(
            authorized_keys_line(tunnel_pub, TUNNEL_PORT, "nat1") + "\n")
        (tmp_path / "ctl_sshd_config").write_text(
            f"HostKey {tmp_path / 'ctl_host_key'}\nPidFile {tmp_path / 'ctl.pid'}\n"
            f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin forced-commands-only\nAllowUsers root\nStrictModes no\n"
            "LogLevel ERROR\n")
        started.append(_start([lab_sshd.SSHD, "-D", "-e", "-f", str(tmp_path / "ctl_sshd_config"),
                               "-o", f"ListenAddress={outer}:2222"], tmp_path / "ctl.log"))
        known_ctl = tmp_path / "known_ctl"
        known_ctl.write_text(f"[{outer}]:2222 {' '.join(ctl_key_pub.split()[:2])}\n")
        loop = dial_in_script(f"root@{outer}", TUNNEL_PORT, key=str(tmp_path / "tunnel_key"),
                              ssh_port=2222, known_hosts=str(known_ctl), retry_s=1)
        dialer = _start(["ip", "netns", "exec", h.namespace, "sh", "-c", loop],
                        tmp_path / "dialer.log")
        started.append(dialer)

        host_key = (state / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{TUNNEL_PORT} {' '.join(host_key)}\n")
        ssh = SshHost("nat1", "127.0.0.1", user=h.user, port=TUNNEL_PORT,
                      identity_file=h.identity_file, known_hosts=str(known))
        asyncio.run(_scenario(ssh, h.address, dialer.pid, tmp_path))
    finally:
        for proc in started:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _scenario(ssh: SshHost, direct: str, dialer_pid: int, tmp_path: Path) -> None:
    assert not _port_open(direct, 22)  # no route to the host's sshd from here
    tmux = TmuxTarget(socket_name=f"czt-{uuid.uuid4().hex[:8]}")
    pool = SshPool([ssh], settings=FAST)
    runner = pool.runner("nat1")
    try:
        await _until_ok(runner)
        await start_worker(runner, worker_id="w1", workdir="/tmp", agent_command="sleep 600",
                           task_text=None, tmux=tmux)
        pane = await runner.run(tmux.argv("display-message", "-p", "-t", "=czar-worker-w1:",
                                          "#{pane_pid}"))
        # Cut the tunnel: the dialer's ssh dies; its loop dials again.
        for child in _children(dialer_pid):
            os.kill(child, signal.SIGKILL)
        with pytest.raises((HostUnreachable, CommandTimeout)):
            for _ in range(50):
                await runner.run(["true"], timeout=2)
                await asyncio.sleep(0.05)
        await _until_ok(runner)
        assert await list_sessions(runner, tmux) == {"w1"}
        again = await runner.run(tmux.argv("display-message", "-p", "-t", "=czar-worker-w1:",
                                           "#{pane_pid}"))
        assert again.stdout == pane.stdout and pane.stdout.strip().isdigit()
        await runner.run(tmux.argv("kill-server"))
    finally:
        await pool.close()
    _tunnel_key_may_do_nothing_else(tmp_path, direct)


async def _until_ok(runner: object) -> None:
    for _ in range(150):
        try:
            if (await runner.run(["true"], timeout=3)).ok:  # type: ignore[attr-defined]
                return
        except HostUnreachable:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the host never came back through its tunnel")


def _tunnel_key_may_do_nothing_else(tmp_path: Path, direct: str) -> None:
    outer = direct.rsplit(".", 1)[0] + ".1"
    base = ["ssh", "-T", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={tmp_path / 'known_ctl'}",
            "-o", "StrictHostKeyChecking=yes", "-i", str(tmp_path / "tunnel_key"), "-p", "2222"]
    other = subprocess.run([*base, "-N", "-o", "ExitOnForwardFailure=yes", "-R",
                            f"127.0.0.1:{TUNNEL_PORT + 1}:127.0.0.1:22", f"root@{outer}"],
                           capture_output=True, text=True, timeout=30)
    assert other.returncode != 0  # another listen port: refused
    shell = subprocess.run([*base, f"root@{outer}", "id"], capture_output=True, text=True,
                           timeout=30)
    assert "uid=" not in shell.stdout and shell.returncode != 0  # forced /bin/false


def test_dial_in_config_and_instructions(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="dials in"):
        StaticHost(name="nat1", host="nat.example", dials_in=True)
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(json.dumps({
        "project": {"name": "p"}, "workers": [],
        "fleet": {"hosts": [{"name": "nat1", "host": "127.0.0.1", "port": 22022,
                             "dials_in": True}]}}))
    run = [sys.executable, "-m", "czarina_fleet.cli.main", "hosts", "dial-in"]
    done = subprocess.run([*run, "nat1", "--controller", "me@203.0.113.7"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'permitlisten="127.0.0.1:22022"' in done.stdout
    assert "-R 127.0.0.1:22022:127.0.0.1:22 me@203.0.113.7" in done.stdout
    assert '"$HOME"/.ssh/czarina_tunnel' in done.stdout
    # `czarina hosts` shows the tunnel (the host is down here: its tunnel is not up)
    subprocess.run([*run[:3], "controller", "run", "--once"], cwd=tmp_path,
                   capture_output=True, timeout=60)
    shown = subprocess.run([*run[:3], "hosts", "--json"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    (row,) = json.loads(shown.stdout)
    assert row["host"] == "nat1" and row["tunnel"] == "127.0.0.1:22022"
    wrong = subprocess.run([*run, "nat2", "--controller", "me@x"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "dials_in" in wrong.stderr and "Traceback" not in (
        wrong.stderr)
