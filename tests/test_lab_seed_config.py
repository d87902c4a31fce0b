"""The feature description's own config.sh (seed/DISTRIBUTED_WORKERS.md, "Configuration
Example"), given real hosts, runs its remote workers with no other configuration than
the project's `origin` remote (issue 9 item 1).

Three lab hosts (network namespaces, real sshd, each its own user) stand in for
build-server-1, build-server-2 and gpu-server: only the REMOTE_HOSTS addresses of the
example change. The user's ~/.ssh holds the key and the hosts' known keys, as it would.
`claude` is a stand-in script on every host's PATH (and here, for the local workers).
Needs root (like every lab test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from czarina_fleet.remote import netns
from tests.fixtures.netns_hosts import LabHosts

pytestmark = [pytest.mark.netns, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]
STAND_IN = REPO / "examples" / "quickstart" / "bin" / "stand-in-agent.sh"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}

# The example as the feature description writes it; {h1}.. are the lab hosts' user@address.
SEED_CONFIG = """\
# config.sh (v2.1+)

# Define remote hosts
export REMOTE_HOSTS=(
    "build-server-1:{h1}:22:{w1}"
    "build-server-2:{h2}:22:{w2}"
    "gpu-server:{h3}:22:{w3}"
)

# Worker definitions with remotes
export WORKER_DEFINITIONS=(
    # Local workers
    "architect|feat/v2.0-design|arch_TASKS.txt|Architecture|local"
    "docs|feat/v2.0-docs|docs_TASKS.txt|Documentation|local"

    # Remote workers
    "backend|feat/v2.0-api|api_TASKS.txt|Backend API|remote:build-server-1"
    "frontend|feat/v2.0-ui|ui_TASKS.txt|Frontend UI|remote:build-server-2"
    "ml|feat/v2.0-models|ml_TASKS.txt|ML Training|remote:gpu-server"

    # Auto-assign (Czar chooses based on load)
    "qa|feat/v2.0-testing|qa_TASKS.txt|Testing|auto"
)
"""
REMOTE = {"backend": "build-server-1", "frontend": "build-server-2", "ml": "gpu-server"}


class SeedProject:
    def __init__(self, lab: LabHosts) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="czarina-seed-", dir="/tmp"))
        self.base.chmod(0o755)  # lab users read the origin and the tools from here
        self.root, self.origin = self.base / "proj", self.base / "origin.git"
        self.pushes = self.base / "pushes.git"
        self.home, self.tools = self.base / "home", self.base / "tools"
        self.socket = f"czt-{uuid.uuid4().hex[:8]}"
        self.tools.mkdir()
        claude = self.tools / "claude"  # accepts claude's flags, behaves as the stand-in
        claude.write_text(f"#!/bin/sh\nexec bash {STAND_IN}\n")
        claude.chmod(0o755)
        shutil.copy(STAND_IN, self.base / "stand-in-agent.sh")
        self.hosts = lab.make(3, tools_dir=str(self.tools))
        self.env = {**os.environ, **GIT_ENV, "HOME": str(self.home),
                    "CZARINA_TMUX_SOCKET": self.socket, "STAND_IN_INTERVAL": "1",
                    "PATH": f"{self.tools}:{os.environ['PATH']}"}
        self._ssh_dir()
        self._repository()

    def _ssh_dir(self) -> None:
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        shutil.copy(netns.client_key(), ssh / "id_ed25519")
        (ssh / "id_ed25519").chmod(0o600)
        (ssh / "known_hosts").write_text("".join(Path(h.known_hosts).read_text()
                                                 for h in self.hosts))

    def _repository(self) -> None:
        self.root.mkdir()
        values = {}
        for i, h in enumerate(self.hosts, start=1):
            values[f"h{i}"], values[f"w{i}"] = f"{h.user}@{h.address}", h.work_dir
        (self.root / "config.sh").write_text(SEED_CONFIG.format(**values))
        prompts = self.root / "prompts"
        prompts.mkdir()
        for name in ("arch", "docs", "api", "ui", "ml", "qa"):
            (prompts / f"{name}_TASKS.txt").write_text(f"work on {name}\n")
        (self.root / ".gitignore").write_text(".czarina/\n")
        self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "seed example")
        for bare in (self.origin, self.pushes):  # every lab host is its own user:
            self.git("init", "-q", "--bare", "--shared=0777", str(bare))  # any lab user pushes
        self.git("remote", "add", "origin", str(self.origin))
        self.git("push", "-q", "origin", "main")
        subprocess.run(["chmod", "-R", "a+rwX", str(self.origin), str(self.pushes)],
                       check=True)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def czarina(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", *args],
                              cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=180)

    def on_host(self, host: netns.LabHost, *argv: str) -> str:
        return subprocess.run(["runuser", "-u", host.user, "--", *argv], capture_output=True,
                              text=True, env={**self.env, "HOME": host.home}).stdout.strip()

    def teardown(self) -> None:
        for h in self.hosts:
            subprocess.run(["runuser", "-u", h.user, "--", "tmux", "-L", self.socket,
                            "kill-server"], capture_output=True)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def seed(lab_hosts: LabHosts) -> Iterator[SeedProject]:
    project = SeedProject(lab_hosts)
    try:
        yield project
    finally:
        project.teardown()


def test_seed_config_sh_runs_remote_workers_from_the_origin_remote(seed: SeedProject) -> None:
    seed.git("remote", "set-url", "--push", "origin", str(seed.pushes))
    check = seed.czarina("config", "check")
    assert check.returncode == 0, check.stderr
    assert f"Repository remote hosts clone: {seed.origin} (origin remote of " in check.stdout
    assert f"push to {seed.pushes}" in check.stdout
    assert "cannot start" not in check.stderr

    deadline = time.monotonic() + 150
    while True:
        run = seed.czarina("controller", "run", "--once")
        status = seed.czarina("status", "--json")
        assert status.returncode == 0, status.stderr
        rows = {w["worker"]: w for w in json.loads(status.stdout)["workers"]}
        if all(rows[w]["status"] in ("working", "idle") for w in REMOTE):
            break
        assert time.monotonic() < deadline, (run.stdout, run.stderr, rows)
        time.sleep(1)
    assert "fleet.repository_url" not in run.stderr
    for (worker, host_name), host in zip(REMOTE.items(), seed.hosts, strict=True):
        assert rows[worker]["host"] == host_name
        sessions = seed.on_host(host, "tmux", "-L", seed.socket, "list-sessions", "-F",
                                "#{session_name}")
        assert f"czar-worker-{worker}" in sessions.split()
        # the host's bare clone: in the work dir, or the fleet's own directory under it
        clone = seed.on_host(host, "sh", "-c", f"ls -d {host.work_dir}/origin.git "
                             f"{host.work_dir}/*/origin.git 2>/dev/null | head -n 1")
        assert clone, f"no clone of origin under {host.work_dir}"
        assert seed.on_host(host, "git", "-C", clone, "remote", "get-url", "origin") == \
            str(seed.origin)
        assert seed.on_host(host, "git", "-C", clone, "remote", "get-url", "--push",
                            "origin") == str(seed.pushes)
        checkout = f"{clone.removesuffix('.git')}/{worker}"
        branch = seed.on_host(host, "git", "-C", checkout, "rev-parse", "--abbrev-ref", "HEAD")
        assert branch == {"backend": "feat/v2.0-api", "frontend": "feat/v2.0-ui",
                          "ml": "feat/v2.0-models"}[worker]


def _until(seed: SeedProject, done: object, seconds: float = 150) -> dict[str, dict]:
    deadline = time.monotonic() + seconds
    while True:
        run = seed.czarina("controller", "run", "--once")
        status = seed.czarina("status", "--json")
        assert status.returncode == 0, status.stderr
        rows = {w["worker"]: w for w in json.loads(status.stdout)["workers"]}
        if done(rows):  # type: ignore[operator]
            return rows
        assert time.monotonic() < deadline, "\n".join([
            json.dumps(rows, indent=1), seed.czarina("events", "--limit", "30").stdout,
            run.stderr[-3000:]])
        time.sleep(1)


def test_worker_moved_off_a_removed_host_to_local_runs_there(seed: SeedProject) -> None:
    _until(seed, lambda rows: rows["ml"]["status"] in ("working", "idle"))
    time.sleep(3)  # the stand-in agent commits every second: let it make some
    clone = seed.on_host(seed.hosts[2], "sh", "-c", f"ls -d {seed.hosts[2].work_dir}/*/origin")
    made_there = seed.on_host(seed.hosts[2], "git", "-C", f"{clone}/ml", "rev-parse", "HEAD")
    made_here = seed.git("rev-parse", "feat/v2.0-docs")  # docs runs locally
    config = seed.root / "config.sh"
    text = config.read_text()
    gpu = next(line for line in text.splitlines() if '"gpu-server:' in line)
    config.write_text(text.replace(gpu + "\n", "").replace(
        "ML Training|remote:gpu-server", "ML Training|local").replace(
        "Documentation|local", "Documentation|remote:build-server-2"))
    _until(seed, lambda rows: all(rows[w]["status"] in ("working", "idle")
                                   for w in ("ml", "docs"))
            and (rows["ml"]["host"], rows["docs"]["host"]) == ("local", "build-server-2"))
    # no commit lost either way: what the agent made on the removed host is in the local
    # branch, and what it made here is in the checkout on build-server-2
    seed.git("merge-base", "--is-ancestor", made_there, "feat/v2.0-models")
    b2 = seed.hosts[1]
    on_b2 = seed.on_host(b2, "sh", "-c", f"ls -d {b2.work_dir}/*/origin")
    assert seed.on_host(b2, "sh", "-c", f"git -C {on_b2}/docs merge-base "
                        f"--is-ancestor {made_here} HEAD && echo yes") == "yes"
    # the session on the removed host is gone, and the host is not kept as a place
    sessions = seed.on_host(seed.hosts[2], "tmux", "-L", seed.socket, "list-sessions", "-F",
                            "#{session_name}")
    assert "czar-worker-ml" not in sessions.split()
    hosts = json.loads(seed.czarina("hosts", "--json").stdout)
    names = {h["host"]: h for h in hosts["hosts"]} if isinstance(hosts, dict) else \
        {h["host"]: h for h in hosts}
    assert "gpu-server" not in names or names["gpu-server"]["state"] == "terminated", names
