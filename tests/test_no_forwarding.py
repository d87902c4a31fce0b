"""Nothing of this machine crosses to a host unless asked (issue 15, item 1).

A `~/.ssh/config` saying `ForwardAgent yes` (HOME points at a temp dir) and a running
ssh-agent holding a key; the lab host's sshd accepts agent forwarding (shown by a
control connection that asks for it). Neither the pool nor `czarina attach` may give
the host an agent socket. A jump host (an asyncssh server in-test) whose key is not
known is refused, even where the SSH config says `StrictHostKeyChecking no` for it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from czarina_fleet.remote.hostkeys import HostKeyUnknown
from czarina_fleet.remote.hosts import NO_FORWARDING_ARGS
from czarina_fleet.remote.ops import attach_argv
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool
from tests.fixtures.netns_hosts import LabHosts

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

FAST = PoolSettings(connect_timeout=5, backoff_base=0.01, backoff_max=0.01)
SHOW_AGENT = 'printf %s "${SSH_AUTH_SOCK:-none}"'


@pytest.fixture
def ssh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HOME with a forwarding-happy ~/.ssh/config, and a live ssh-agent holding a key."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    (home / ".ssh" / "config").write_text(
        "Host *\n  ForwardAgent yes\n  ForwardX11Trusted yes\n  SendEnv CZT_SECRET\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CZT_SECRET", "do-not-send")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        key = tmp_path / "user_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True,
                       capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield home
    finally:
        agent.kill()
        agent.wait()


def test_pool_forwards_no_agent_even_when_the_config_says_so(
        lab_hosts: LabHosts, ssh_home: Path) -> None:
    (host,) = lab_hosts.make(1)

    async def scenario() -> tuple[str, str, str]:
        pool = SshPool([host.ssh_host()], settings=FAST)
        try:
            ours = await pool.runner(host.host_id).run(["sh", "-c", SHOW_AGENT])
            env = await pool.runner(host.host_id).run(
                ["sh", "-c", 'printf %s "${CZT_SECRET:-none}"'])
        finally:
            await pool.close()
        # Control: the same server does accept forwarding from a client that asks.
        async with asyncssh.connect(host.address, username=host.user,
                                    client_keys=[host.identity_file],
                                    known_hosts=host.known_hosts,
                                    agent_forwarding=True) as conn:
            control = await conn.run(SHOW_AGENT, check=True)
        return ours.stdout, env.stdout, str(control.stdout)

    ours, env, control = asyncio.run(scenario())
    assert control.startswith("/tmp/"), control
    assert ours == "none"
    assert env == "none"


def test_attach_forwards_nothing(lab_hosts: LabHosts, ssh_home: Path) -> None:
    (host,) = lab_hosts.make(1)
    argv = attach_argv(host.ssh_host(), "w1")
    assert argv[0] == "ssh" and argv[-2] == host.address
    # The real ssh, with the forwarding config (OpenSSH reads the passwd home, not
    # HOME: hence -F), running a harmless command in place of `tmux attach`.
    config = str(ssh_home / ".ssh" / "config")
    ours = ["ssh", "-F", config, "-T", "-o", "BatchMode=yes", *argv[2:-1], SHOW_AGENT]
    done = subprocess.run(ours, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "none"
    # Control: without our options the agent does cross.
    n = len(NO_FORWARDING_ARGS)
    assert tuple(argv[2:2 + n]) == NO_FORWARDING_ARGS
    plain = ["ssh", "-F", config, "-T", "-o", "BatchMode=yes", *argv[2 + n:-1], SHOW_AGENT]
    leaked = subprocess.run(plain, capture_output=True, text=True, timeout=30)
    assert leaked.stdout.startswith("/tmp/"), (leaked.stdout, leaked.stderr)


class _Jump(asyncssh.SSHServer):
    """A jump host that lets anyone in and forwards TCP anywhere."""

    forwarded: list[tuple[str, int]] = []

    def begin_auth(self, username: str) -> bool:
        return False

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        self.forwarded.append((dest_host, dest_port))
        return True


def test_jump_host_key_is_verified_by_us(lab_hosts: LabHosts, ssh_home: Path) -> None:
    (host,) = lab_hosts.make(1)
    jump_key = asyncssh.generate_private_key("ssh-ed25519")
    _Jump.forwarded = []

    async def scenario() -> None:
        server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[jump_key],
                                       server_factory=_Jump)
        port = server.sockets[0].getsockname()[1]
        # The config sends the lab host through the jump and switches checking off
        # for the jump; the jump's key is in no known_hosts file.
        (ssh_home / ".ssh" / "config").write_text(
            f"Host bastion\n  HostName 127.0.0.1\n  Port {port}\n  User jumper\n"
            "  UserKnownHostsFile none\n  StrictHostKeyChecking no\n"
            f"Host {host.address}\n  ProxyJump bastion\n"
            "Host *\n  ForwardAgent yes\n")
        pool = SshPool([host.ssh_host()], settings=FAST)
        try:
            with pytest.raises(HostKeyUnknown) as refused:
                await pool.runner(host.host_id).run(["true"])
            assert "jump host bastion" in str(refused.value)
            assert jump_key.get_fingerprint("sha256") in str(refused.value)
            assert _Jump.forwarded == []
            # Once the jump's key is known, the host is reached through it.
            (ssh_home / ".ssh" / "known_hosts").write_text(
                f"[127.0.0.1]:{port} {jump_key.export_public_key().decode()}")
            await asyncio.sleep(0.05)  # past the (tiny) back-off
            done = await pool.runner(host.host_id).run(["sh", "-c", SHOW_AGENT])
            assert done.stdout == "none"
            assert _Jump.forwarded == [(host.address, 22)]
            # attach: the jump becomes a strict ProxyCommand, never the config's -J.
            argv = attach_argv(host.ssh_host(), "w1")
            proxy = next(a for a in argv if a.startswith("ProxyCommand="))
            assert "StrictHostKeyChecking=yes" in proxy and "-J" not in argv
            assert proxy.endswith(" -W %h:%p bastion")
        finally:
            await pool.close()
            server.close()

    asyncio.run(scenario())


def test_attach_through_an_unknown_jump_is_refused(lab_hosts: LabHosts,
                                                   ssh_home: Path) -> None:
    (host,) = lab_hosts.make(1)
    jump_key = asyncssh.generate_private_key("ssh-ed25519")
    _Jump.forwarded = []

    async def scenario() -> tuple[subprocess.CompletedProcess[str], ...]:
        server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[jump_key],
                                       server_factory=_Jump)
        port = server.sockets[0].getsockname()[1]
        ssh = host.ssh_host()
        from dataclasses import replace
        ssh = replace(ssh, proxy_jump=f"jumper@127.0.0.1:{port}")
        argv = attach_argv(ssh, "w1")
        cmd = ["ssh", "-F", "/dev/null", "-T", "-o", "BatchMode=yes", *argv[2:-1], "echo ok"]
        try:
            refused = await _run(cmd)
            # The lab host's known_hosts file (the host's own) also vouches for jumps.
            with open(host.known_hosts, "a") as fh:
                fh.write(f"[127.0.0.1]:{port} {jump_key.export_public_key().decode()}")
            allowed = await _run(cmd)
        finally:
            server.close()
        return refused, allowed

    refused, allowed = asyncio.run(scenario())
    assert refused.returncode != 0 and "ok" not in refused.stdout
    assert "Host key verification failed" in refused.stderr, refused.stderr
    assert allowed.returncode == 0 and allowed.stdout == "ok\n", allowed.stderr
    assert _Jump.forwarded == [(host.address, 22)]


async def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(),
                                       err.decode())
