"""`czarina hosts trust HOST`: the key is recorded only after its fingerprint is
confirmed; then the host is verified and reachable. A real asyncssh server on loopback
(in a thread) and the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from czarina_fleet.remote.hostkeys import fingerprint
from tests.fakes.ssh_server import AcceptAnyKey


async def _shell(process: asyncssh.SSHServerProcess) -> None:  # type: ignore[type-arg]
    # Enough of a host for the probe: it answers with host facts and no sessions.
    process.stdout.write("H\t0.10\t2\t1000\n")
    process.exit(0)


@pytest.fixture
def server() -> Iterator[tuple[int, asyncssh.SSHKey]]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        srv = await asyncssh.create_server(AcceptAnyKey, "127.0.0.1", 0, server_host_keys=[key],
                                           process_factory=_shell)
        holder["srv"] = srv
        holder["port"] = srv.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    yield int(holder["port"]), key  # type: ignore[call-overload]
    loop.call_soon_threadsafe(holder["srv"].close)  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_trust_needs_the_right_fingerprint(tmp_path: Path,
                                           server: tuple[int, asyncssh.SSHKey]) -> None:
    port, key = server
    client_key = tmp_path / "id_ed25519"
    client_key.write_bytes(asyncssh.generate_private_key("ssh-ed25519")
                           .export_private_key("openssh"))
    client_key.chmod(0o600)
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(json.dumps({
        "project": {"name": "t"},
        "workers": [{"id": "w", "agent": "claude", "branch": "feat/w", "location": "remote:box"}],
        "fleet": {"repository_url": "https://example.invalid/r.git",
                  "hosts": [{"name": "box", "host": "127.0.0.1", "port": port, "user": "u",
                             "identity_file": str(client_key)}]},
    }))
    env = {**os.environ, "HOME": str(tmp_path)}

    def czarina(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    sha = fingerprint(key).split()[-1]
    known = tmp_path / ".ssh" / "known_hosts"
    r = czarina("hosts", "trust", "box")  # no terminal, no --fingerprint: refuses
    assert r.returncode == 2 and sha in r.stderr and not known.exists()
    r = czarina("hosts", "trust", "box", "--fingerprint", "SHA256:not-it")
    assert r.returncode == 1 and not known.exists()
    r = czarina("hosts", "trust", "box", "--fingerprint", sha)
    assert r.returncode == 0, r.stderr
    assert known.read_text().strip() == (
        f"[127.0.0.1]:{port} {key.export_public_key().decode().strip()}")
    r = czarina("hosts", "trust", "nobox", "--fingerprint", sha)
    assert r.returncode == 2 and 'did you mean "box"' in r.stderr
