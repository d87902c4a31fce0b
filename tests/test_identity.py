"""The fleet's SSH identity: a login key, and host keys made before launch so the first
connection to a new host is verified. Checked against a real asyncssh server on
loopback that presents the pre-made host key (as cloud-init would install it)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import asyncssh
import pytest

from czarina_fleet.remote.hostkeys import HostKeyChanged, HostKeyUnknown
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.identity import fleet_identity
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool
from tests.fakes.ssh_server import AcceptAnyKey


def test_keys_are_private_stable_and_one_per_host(tmp_path: Path) -> None:
    ident = fleet_identity(tmp_path / ".czarina" / "fleet.db")
    login = ident.public_key
    assert login.startswith("ssh-ed25519 ") and ident.public_key == login
    assert stat.S_IMODE(ident.private_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ident.directory.stat().st_mode) == 0o700
    priv, pub = ident.host_keypair("p-1")
    assert ident.host_keypair("p-1") == (priv, pub)      # the same key on relaunch
    assert ident.host_keypair("p-2")[1] != pub
    assert ident.host_public_key("p-1") == pub and ident.host_public_key("p-9") is None
    assert ident.trust("10.0.0.5", 22, pub) and not ident.trust("10.0.0.5", 22, pub)
    assert ident.known_hosts.read_text() == f"10.0.0.5 {pub}\n"
    with pytest.raises(ValueError):
        ident.host_keypair("../../etc/x")




async def _echo(process: asyncssh.SSHServerProcess) -> None:  # type: ignore[type-arg]
    process.stdout.write("hello\n")
    process.exit(0)


async def _connect(ident_dir: Path, host_key_text: str, trusted: str | None) -> str:
    ident = fleet_identity(ident_dir / "fleet.db")
    ident.public_key  # noqa: B018  (make the login key)
    server = await asyncssh.create_server(
        AcceptAnyKey, "127.0.0.1", 0, server_host_keys=[asyncssh.import_private_key(host_key_text)],
        process_factory=_echo)
    port = server.sockets[0].getsockname()[1]
    if trusted is not None:
        ident.trust("127.0.0.1", port, trusted)
    pool = SshPool([SshHost("h", "127.0.0.1", user="czarina", port=port,
                            identity_file=str(ident.private_key_path),
                            known_hosts=str(ident.known_hosts))],
                   settings=PoolSettings(connect_timeout=5, ssh_config=()))
    try:
        result = await pool.run("h", ["echo", "hi"], timeout=5)
        return result.stdout
    finally:
        await pool.close()
        server.close()


def test_first_connection_to_a_launched_host_is_verified(tmp_path: Path) -> None:
    ident = fleet_identity(tmp_path / "fleet.db")
    priv, pub = ident.host_keypair("p-1")
    assert asyncio.run(_connect(tmp_path, priv, trusted=pub)) == "hello\n"


def test_a_host_presenting_another_key_is_refused(tmp_path: Path) -> None:
    ident = fleet_identity(tmp_path / "fleet.db")
    _, expected = ident.host_keypair("p-1")
    impostor, _ = ident.host_keypair("p-2")
    with pytest.raises(HostKeyChanged):
        asyncio.run(_connect(tmp_path, impostor, trusted=expected))
    with pytest.raises(HostKeyUnknown):  # nothing recorded: refused, not trusted
        asyncio.run(_connect(tmp_path / "other", impostor, trusted=None))


def test_the_keys_in_the_projects_czarina_folder_are_never_committed(tmp_path: Path) -> None:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              capture_output=True, text=True).stdout

    git("init", "-q")
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text("{}")
    ident = fleet_identity(tmp_path / ".czarina" / "fleet.db")
    assert ident.public_key.startswith("ssh-ed25519 ")
    ident.host_keypair("h1")
    ident.trust("10.0.0.1", 22, ident.host_keypair("h1")[1])
    git("add", "-A")
    staged = git("diff", "--cached", "--name-only").split()
    assert staged == [".czarina/config.json"]
