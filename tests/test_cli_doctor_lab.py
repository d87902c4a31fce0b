"""`czarina doctor` through the real CLI against real SSH hosts (lab hosts in network
namespaces): one ready host, one whose key is not in known_hosts, one without git.
Needs root, like every lab test."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from czarina_fleet.remote import lab_sshd, netns
from tests.fixtures.netns_hosts import LabHosts

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


class DoctorProject:
    """A scratch project (readable by lab users) with its own HOME and origin."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="czarina-doctor-", dir="/tmp"))
        self.base.chmod(0o755)
        self.root = self.base / "proj"
        self.root.mkdir()
        self.home = self.base / "home"
        (self.home / ".ssh").mkdir(parents=True, mode=0o700)
        self.origin = self.base / "origin.git"
        self.env = {**os.environ, **GIT_ENV, "HOME": str(self.home)}
        self.env.pop("CZARINA_DEBUG", None)
        self.git("init", "-q", "-b", "main")
        self.git("commit", "-q", "--allow-empty", "-m", "init")
        subprocess.run(["git", "clone", "-q", "--bare", str(self.root), str(self.origin)],
                       check=True, capture_output=True)
        subprocess.run(["chmod", "-R", "a+rX", str(self.origin)], check=True)

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.root, env=self.env, check=True,
                       capture_output=True)

    def write_config(self, hosts: list[dict[str, Any]], workers: list[dict[str, Any]]) -> None:
        (self.root / ".czarina").mkdir(exist_ok=True)
        (self.root / ".czarina" / "config.json").write_text(json.dumps({
            "project": {"name": "doc"},
            "workers": workers,
            "fleet": {"repository_url": str(self.origin), "hosts": hosts,
                      "agents": {"stand-in": "bash bin/stand-in-agent.sh"}},
        }))

    def czarina(self, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-m", "czarina_fleet.cli.main", *args],
                              cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=120)


@pytest.fixture
def project() -> Iterator[DoctorProject]:
    if os.geteuid() != 0:
        pytest.fail("doctor lab tests need root (network namespaces, sshd)")
    p = DoctorProject()
    try:
        yield p
    finally:
        shutil.rmtree(p.base, ignore_errors=True)


def static(name: str, h: netns.LabHost) -> dict[str, Any]:
    return {"name": name, "host": h.address, "user": h.user, "identity_file": h.identity_file,
            "work_dir": h.work_dir}


def by_subject(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for c in report["checks"]:
        found.setdefault(c["subject"], {})[c["check"]] = c
    return found


def test_doctor_finds_unknown_key_and_missing_git_and_says_how_to_fix(
        project: DoctorProject, lab_hosts: LabHosts) -> None:
    good, unknown = lab_hosts.make(2)
    (nogit,) = lab_hosts.make(1, hide_git=True)
    known = Path(good.known_hosts).read_text() + Path(nogit.known_hosts).read_text()
    (project.home / ".ssh" / "known_hosts").write_text(known)  # not `unknown`'s key
    project.write_config(
        [static("good", good), static("unknown", unknown), static("nogit", nogit)],
        [{"id": f"w-{n}", "agent": "stand-in", "branch": f"feat/{n}", "location": f"remote:{n}"}
         for n in ("good", "unknown", "nogit")])

    r = project.czarina("doctor", "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    checks = by_subject(report)
    assert report["blocked_workers"] == ["w-nogit", "w-unknown"]

    ready = checks["host good"]
    assert set(ready) == {"resolves", "reachable", "host key", "login", "git", "tmux",
                          "agent bash", "work dir", "clone"}
    assert all(c["ok"] is True for c in ready.values()), ready
    assert str(project.origin) in ready["clone"]["detail"]

    key = checks["host unknown"]
    assert key["reachable"]["ok"] is True and key["host key"]["ok"] is False
    assert "run: czarina hosts trust unknown" in key["host key"]["detail"]
    assert key["git"]["ok"] is None and key["clone"]["ok"] is None

    bare = checks["host nogit"]
    assert bare["host key"]["ok"] is True and bare["tmux"]["ok"] is True
    assert bare["git"]["ok"] is False and "git is not installed" in bare["git"]["detail"]
    assert "apt-get install" in bare["git"]["detail"]
    assert bare["clone"]["ok"] is None
    assert not (project.root / ".czarina" / "fleet.db").exists()  # doctor writes nothing

    # the table, then each problem in full on one line (a command to copy is not wrapped)
    r = project.czarina("doctor")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    trust = next(line for line in lines if line.startswith("1. host unknown: host key:"))
    assert trust.endswith("run: czarina hosts trust unknown")
    assert any(line.startswith("2. host nogit: git: git is not installed") for line in lines)
    assert lines[-1] == "2 problem(s); workers blocked: w-nogit, w-unknown"

    # the command doctor gave works (with the fingerprint it showed), then doctor agrees
    sha = re.search(r"SHA256:[A-Za-z0-9+/=]+", trust)
    assert sha is not None
    r = project.czarina("hosts", "trust", "unknown", "--fingerprint", sha.group(0))
    assert r.returncode == 0, r.stdout + r.stderr
    checks = by_subject(json.loads(project.czarina("doctor", "--json").stdout))
    assert all(c["ok"] is True for c in checks["host unknown"].values())


def test_unreachable_host_and_unreadable_repository(project: DoctorProject,
                                                   lab_hosts: LabHosts) -> None:
    (up,) = lab_hosts.make(1)
    (down,) = lab_hosts.make(1)
    lab_sshd.kill_sshd(down)
    (project.home / ".ssh" / "known_hosts").write_text(Path(up.known_hosts).read_text())
    project.write_config([static("up", up), static("down", down)],
                         [{"id": "a", "agent": "stand-in", "branch": "feat/a",
                           "location": "remote:up"},
                          {"id": "b", "agent": "stand-in", "branch": "feat/b",
                           "location": "auto"}])
    project.origin.chmod(0o700)  # root's: the lab user cannot read it
    report = json.loads(project.czarina("doctor", "--json").stdout)
    checks = by_subject(report)
    assert checks["host down"]["reachable"]["ok"] is False
    assert "cannot connect" in checks["host down"]["reachable"]["detail"]
    assert checks["host down"]["host key"]["ok"] is None
    clone = checks["host up"]["clone"]
    assert clone["ok"] is False and "cannot read" in clone["detail"]
    # `auto` may land on either host: it is blocked by both; `a` only by its own
    assert report["blocked_workers"] == ["a", "b"]
    assert report["workers"]["host down"] == ["b"]


def test_a_name_that_does_not_resolve_is_named_with_the_tailscale_hint(
        project: DoctorProject) -> None:
    # Run in a network namespace of its own with no route anywhere: the lookup fails
    # without any packet leaving this machine.
    project.write_config([{"name": "gpu", "host": f"gpu-{uuid.uuid4().hex[:6]}.tail.invalid"}],
                         [{"id": "ml", "agent": "stand-in", "branch": "feat/ml",
                           "location": "remote:gpu"}])
    r = project.czarina("doctor", "--json", prefix=("unshare", "--net"))
    assert r.returncode == 1, r.stderr
    checks = by_subject(json.loads(r.stdout))["host gpu"]
    assert checks["resolves"]["ok"] is False
    assert "does not resolve" in checks["resolves"]["detail"]
    assert "tailscale status" in checks["resolves"]["detail"]
    assert checks["reachable"]["ok"] is None


def test_no_repository_and_a_relayed_one(project: DoctorProject, lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)
    (project.home / ".ssh" / "known_hosts").write_text(Path(host.known_hosts).read_text())
    worker = [{"id": "a", "agent": "stand-in", "branch": "feat/a", "location": "remote:h"}]
    project.write_config([static("h", host)], worker)
    config = project.root / ".czarina" / "config.json"
    data = json.loads(config.read_text())
    del data["fleet"]["repository_url"]  # and the project has no origin remote
    config.write_text(json.dumps(data))
    clone = by_subject(json.loads(project.czarina("doctor", "--json").stdout))["host h"]["clone"]
    assert clone["ok"] is False
    assert "no origin remote" in clone["detail"] and "git remote add origin" in clone["detail"]

    data["fleet"].update(repository_url=str(project.origin), git_transport="controller")
    config.write_text(json.dumps(data))
    r = project.czarina("doctor", "--json")
    clone = by_subject(json.loads(r.stdout))["host h"]["clone"]
    assert clone["ok"] is None and "the controller fetches and pushes" in clone["detail"]
    assert r.returncode == 0, r.stdout


def test_lab_pool_checks_what_making_lab_hosts_needs(project: DoctorProject) -> None:
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "lab" / ".czarina",
                    project.root / ".czarina")
    r = project.czarina("doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    lab = by_subject(json.loads(r.stdout))["pool lab"]
    assert set(lab) == {"root", "ip", "useradd", "ssh-keygen", "runuser", "sshd"}
    assert all(c["ok"] for c in lab.values()), lab
    # the same pool, checked by someone who is not root: blocked, and says why
    r = project.czarina("doctor", "--json", prefix=("setpriv", "--reuid=65534",
                                                     "--regid=65534", "--clear-groups"))
    assert r.returncode == 1, r.stdout + r.stderr
    root = by_subject(json.loads(r.stdout))["pool lab"]["root"]
    assert root["ok"] is False and "need root" in root["detail"]


def test_trust_command_works_for_a_literal_remote_host(project: DoctorProject,
                                                       lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)
    literal = f"{host.user}@{host.address}"
    project.write_config([], [{"id": "a", "agent": "stand-in", "branch": "feat/a",
                               "location": f"remote:{literal}"}])
    key = by_subject(json.loads(project.czarina("doctor", "--json").stdout))[
        f"host {literal}"]["host key"]
    assert key["ok"] is False and key["detail"].endswith(f"run: czarina hosts trust {literal}")
    sha = re.search(r"SHA256:[A-Za-z0-9+/=]+", key["detail"])
    assert sha is not None
    r = project.czarina("hosts", "trust", literal, "--fingerprint", sha.group(0))
    assert r.returncode == 0, r.stdout + r.stderr
    known = (project.home / ".ssh" / "known_hosts").read_text()
    assert known.startswith(f"{host.address} ssh-ed25519 ")
    checks = by_subject(json.loads(project.czarina("doctor", "--json").stdout))[f"host {literal}"]
    assert checks["host key"]["ok"] is True  # known now; logging in needs a key HOME lacks
    assert checks["login"]["ok"] is False and "authentication failed" in checks["login"]["detail"]
