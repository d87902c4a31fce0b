"""Git credentials without secrets on hosts (issue 15, item 2).

A private origin served over SSH by lab host A, which accepts only a deploy key that
the controller holds (its git uses it through GIT_SSH_COMMAND, as a user's own setup
would). A worker on lab host B (no route to A at all) gets its checkout and its
checkpoints reach origin, through the controller; afterwards B holds no key file, no
remote URL and no agent socket.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.runtime.host_access import LiveHostAccess, _relay
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    ProjectInfo,
    StaticHost,
    WorkerSpec,
)
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState
from czarina_fleet.remote.git_relay import carries_credential, host_repo_url
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.ssh_pool import SshPool
from czarina_fleet.remote.tmux_target import TmuxTarget
from tests.fixtures.netns_hosts import LabHosts

BRANCH = "feat/relayed"


def _config(tmp_path: Path, url: str, b: object, transport: str = "controller") -> FleetConfig:
    host = StaticHost(name=b.host_id, host=b.address, user=b.user,  # type: ignore[attr-defined]
                      identity_file=b.identity_file, work_dir=b.work_dir)  # type: ignore[attr-defined]
    return FleetConfig(
        source=tmp_path / "config.json", format="json", project=ProjectInfo(),
        project_root=tmp_path,
        workers=[WorkerSpec(id="w1", branch=BRANCH, agent="sleeper",
                            location=parse_location(f"remote:{host.name}"))],
        fleet=FleetSettings(hosts=[host], repository_url=url, base_branch="main",
                            git_transport=transport,  # type: ignore[arg-type]
                            agents={"sleeper": "sleep 600"}))


def _origin_git(origin: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", "--git-dir", str(origin), *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.netns
@pytest.mark.timeout(180)
def test_checkpoints_reach_a_private_origin_and_the_host_keeps_no_secret(
        lab_hosts: LabHosts, git_origin: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = lab_hosts.make(2)
    # origin on A, readable over SSH with the deploy key only
    origin = Path(a.home) / "origin.git"
    shutil.copytree(git_origin, origin)
    subprocess.run(["chown", "-R", f"{a.user}:{a.user}", str(origin)], check=True)
    deploy = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy",
                    "-f", str(deploy)], check=True)
    Path(a.state_dir, "authorized_keys").write_text(Path(f"{deploy}.pub").read_text())
    monkeypatch.setenv("GIT_SSH_COMMAND", (
        f"ssh -i {deploy} -o IdentitiesOnly=yes -o BatchMode=yes "
        f"-o UserKnownHostsFile={a.known_hosts} -o StrictHostKeyChecking=yes"))
    url = f"ssh://{a.user}@{a.address}{origin}"
    cfg = _config(tmp_path, url, b)
    store = Store(tmp_path / "fleet.db", FakeClock())
    tmux = TmuxTarget(socket_name=f"czt-{uuid.uuid4().hex[:8]}")
    access = LiveHostAccess(cfg, store, SshPool(), tmux=tmux, known_hosts=b.known_hosts)
    host = HostRecord(b.host_id, "static", HostState.READY, 0.0, 2, address=b.address,
                      user=b.user, work_dir=b.work_dir)
    runner = access.runner(host)
    checkout = f"{b.work_dir}/origin/w1"

    async def scenario() -> tuple[str, str]:
        try:
            spec = cfg.worker("w1")
            assert spec is not None
            await access.start_worker(host, spec)
            made = await runner.run(["git", "-C", checkout, "commit", "-q", "--allow-empty",
                                     "-m", "work on B"])
            assert made.ok, made.stderr
            pushed = await access.push_worker(host, "w1")
            await runner.run(["sh", "-c", f"echo draft > {checkout}/notes.txt"])
            await access.checkpoint_worker(host, "w1")
            head = (await runner.run(["git", "-C", checkout, "rev-parse", "HEAD"])).stdout
            return pushed or "", head.strip()
        finally:
            await access.pool.close()
            store.close()

    uid = int(subprocess.run(["id", "-u", b.user], capture_output=True, text=True).stdout)
    before = _agent_traces(uid)  # a lab user id is reused: judge only what appears now
    pushed, head = asyncio.run(scenario())
    # both saves reached origin: the pushed commit, then the checkpoint on top of it
    assert _origin_git(origin, "log", "-1", "--format=%s", pushed) == "work on B"
    assert _origin_git(origin, "rev-parse", f"refs/heads/{BRANCH}") == head
    assert "checkpoint" in _origin_git(origin, "log", "-1", "--format=%s", head)
    # ... started from main (the base branch), fetched by the controller
    main = _origin_git(origin, "rev-parse", "refs/heads/main")
    assert _origin_git(origin, "merge-base", "--is-ancestor", main, head) == ""
    # B keeps no secret: no key file, no remote URL, no agent socket
    bare = Path(b.work_dir) / "origin.git"
    assert (bare / "HEAD").exists()
    assert "url" not in (bare / "config").read_text() and a.address not in (
        bare / "config").read_text()
    for root, _dirs, files in os.walk(b.home):
        for name in files:
            path = Path(root, name)
            if path.is_file() and not path.is_symlink() and "objects" not in path.parts:
                assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert _agent_traces(uid) - before == set()


def _agent_traces(uid: int) -> set[Path]:
    """What a forwarded agent leaves: sshd makes its socket in /tmp/ssh-XXXX/, owned by
    the user (a walk of all /tmp takes minutes on a busy test machine)."""
    return {p for p in Path("/tmp").glob("ssh-*") if _owner(p) == uid}


def _owner(path: Path) -> int | None:
    try:
        return path.lstat().st_uid
    except OSError:
        return None


def test_a_credential_in_the_url_forces_the_relay(tmp_path: Path) -> None:
    class B:
        host_id, address, user, identity_file, work_dir = "b", "10.0.0.9", "u", None, "~/w"

    token = "https://x-access-token:s3cr3t@example.invalid/me/repo.git"
    assert carries_credential(token) and not carries_credential("git@example.invalid:me/r")
    assert _relay(_config(tmp_path, token, B, transport="host")) is not None
    assert _relay(_config(tmp_path, "https://example.invalid/r.git", B, "host")) is None
    assert _relay(_config(tmp_path, "https://example.invalid/r.git", B)) is not None
    ssh = SshHost("b", "2001:db8::1", user="u")
    assert host_repo_url(ssh, "~/w/r.git") == "ssh://[2001:db8::1]/~/w/r.git"
    assert host_repo_url(ssh, "/srv/r.git") == "ssh://[2001:db8::1]/srv/r.git"
