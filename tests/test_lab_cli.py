"""A lab fleet end to end through the real CLI: `czarina` as a subprocess launches
network-namespace hosts (the `lab` provider), bootstraps them over SSH with their host
keys verified through the fleet's own known_hosts, starts the stand-in agent there,
shows it in `status`, and shuts idle hosts down. Needs root (like every lab test).

`LabProject` is shared with tests/test_crash_safety.py.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from czarina_fleet.remote import netns
from tests.fixtures.quickstart import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "lab"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


class LabProject:
    """examples/lab copied to a scratch directory lab users can read, with its own
    bare origin, fleet name, HOME and tmux socket; torn down with every lab host."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            pytest.fail("lab fleet tests need root (network namespaces, sshd)")
        self.base = Path(tempfile.mkdtemp(prefix="czarina-labcli-", dir="/tmp"))
        self.base.chmod(0o755)  # lab users clone origin.git from here
        self.root = self.base / "proj"
        self.origin = self.base / "origin.git"
        self.home = self.base / "home"
        self.home.mkdir(mode=0o700)
        self.fleet = f"labt-{uuid.uuid4().hex[:8]}"
        self.socket = f"czt-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, **GIT_ENV, "HOME": str(self.home),
                    "CZARINA_TMUX_SOCKET": self.socket, "STAND_IN_INTERVAL": "1"}
        shutil.copytree(EXAMPLE, self.root)
        self.edit_config(lambda c: c["fleet"].update(
            name=self.fleet, repository_url=str(self.origin)))
        self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "lab example")
        self.git("clone", "-q", "--bare", str(self.root), str(self.origin))
        subprocess.run(["chmod", "-R", "a+rX", str(self.origin)], check=True)

    @property
    def state_dir(self) -> Path:
        return self.root / ".czarina"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def edit_config(self, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.root / ".czarina" / "config.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data, indent=2))

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "czarina_fleet.cli.main", *args]

    def czarina(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def json(self, *args: str) -> Any:
        r = self.czarina(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def hosts(self) -> list[netns.LabHost]:
        return netns.list_hosts(fleet=self.fleet)

    def sessions(self) -> dict[str, list[str]]:
        """Worker sessions (`czar-worker-*`) on every lab host of this fleet (on our
        socket and the lab user's default one) and on this machine (our socket: the
        default one is the user's own): where -> session names."""
        found: dict[str, list[str]] = {"local": self._tmux([], [["-L", self.socket]])}
        for h in self.hosts():
            found[h.namespace] = self._tmux(["runuser", "-u", h.user, "--"],
                                            [["-L", self.socket], []])
        return found

    def _tmux(self, prefix: list[str], sockets: list[list[str]]) -> list[str]:
        names: list[str] = []
        for sock in sockets:
            r = subprocess.run([*prefix, "tmux", *sock, "list-sessions", "-F",
                                "#{session_name}"], capture_output=True, text=True,
                               env={**self.env, "HOME": "/"})
            names += [n for n in r.stdout.split() if n.startswith("czar-worker-")]
        return names

    def teardown(self) -> None:
        for h in self.hosts():
            netns.destroy_host(h)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def lab_project() -> Iterator[LabProject]:
    project = LabProject()
    try:
        yield project
    finally:
        project.teardown()


def converge(p: LabProject, done: Callable[[], bool], what: str, rounds: int = 12) -> None:
    """`controller run --once` until `done()` (each step must succeed)."""
    for _ in range(rounds):
        r = p.czarina("controller", "run", "--once")
        assert r.returncode == 0, r.stdout + r.stderr
        if done():
            return
    raise AssertionError(f"not converged after {rounds} steps: {what}")


def test_lab_fleet_launches_bootstraps_runs_and_idles_out(lab_project: LabProject) -> None:
    p = lab_project
    p.edit_config(lambda c: c["fleet"]["scaling"].update(idle_timeout_s=2))

    def all_working() -> bool:
        rows = p.json("status")["workers"]
        return all(r["status"] in ("working", "idle") and r["host"] for r in rows)

    converge(p, all_working, "three workers working on lab hosts")
    rows = {r["worker"]: r for r in p.json("status")["workers"]}
    assert set(rows) == {"backend", "docs", "tests"}
    # two pool workers and one auto worker at 2 slots a host: two hosts
    hosts = p.json("hosts")
    assert sorted(h["host"] for h in hosts) == ["lab-1", "lab-2"]
    assert all(h["provider"] == "lab" and h["reachable"] and h["state"] == "ready"
               for h in hosts), hosts
    assert {r["host"] for r in rows.values()} <= {"lab-1", "lab-2"}
    assert rows["tests"]["location"] == "auto"

    # each worker runs in exactly one session, on the host the store says, none here
    sessions = p.sessions()
    assert sessions.pop("local") == []
    placed = {ns: sorted(s.removeprefix("czar-worker-") for s in names)
              for ns, names in sessions.items() if names}
    by_ns = {h.namespace: h.host_id for h in p.hosts()}
    expected: dict[str, list[str]] = {}
    for worker, row in rows.items():
        ns = next(n for n, hid in by_ns.items() if hid == row["host"])
        expected.setdefault(ns, []).append(worker)
    assert placed == {ns: sorted(ws) for ns, ws in expected.items()}

    # host keys: the fleet's known_hosts holds exactly what each lab host presents;
    # the user's ~/.ssh was never written
    lines = sorted((p.state_dir / "known_hosts").read_text().splitlines())
    keys = sorted(f"{h.address} " + " ".join(
        Path(h.state_dir, "ssh_host_ed25519_key.pub").read_text().split()[:2])
        for h in p.hosts())
    assert lines == keys
    assert not (p.home / ".ssh").exists()

    # the stand-in agent got its task and commits on the lab host
    def committed() -> bool:
        r = p.czarina("logs", "backend", "--lines", "200")
        return r.returncode == 0 and "task: Write the backend" in r.stdout
    wait_for(committed, "the backend's task reached its agent on the lab host")
    wait_for(lambda: (p.json("status")["workers"][0]["last_commit"] or "").startswith(
        "stand-in agent"), "a commit by the stand-in agent")

    # scale to zero: sessions stop, hosts go idle and are shut down, namespaces gone
    r = p.czarina("scale", "--max", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(names == [] for names in p.sessions().values())

    def hosts_gone() -> bool:
        time.sleep(1)
        return all(h["state"] == "terminated" for h in p.json("hosts"))
    converge(p, hosts_gone, "idle lab hosts terminated")
    assert p.hosts() == []
    idled = {e["entity_id"] for e in p.json("events", "--limit", "500")
             if e["entity"] == "host" and e["to_state"] == "terminating"
             and e["reason"].startswith("idle for")}
    assert idled == {"lab-1", "lab-2"}
    launched = netns.launch_log(fleet=p.fleet)
    assert len(launched) == 2 and len({e["intent_key"] for e in launched}) == 2


def test_a_changed_lab_host_key_is_refused(lab_project: LabProject) -> None:
    p = lab_project
    p.edit_config(lambda c: c["fleet"]["scaling"].update(max_workers=1))
    converge(p, lambda: any(h["state"] == "ready" for h in p.json("hosts")),
             "one lab host ready")
    # Someone else answers at the host's address: a different key than the provider
    # reported. The controller must refuse, not learn it.
    known = p.state_dir / "known_hosts"
    address, algo, _key = known.read_text().split()
    other = p.base / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    known.write_text(f"{address} {' '.join(Path(str(other) + '.pub').read_text().split()[:2])}\n")
    hosts = p.json("hosts")
    assert hosts[0]["reachable"] is False
    assert "CHANGED" in hosts[0]["error"]


def test_connect_facts_follow_reused_addresses_and_forget_gone_hosts(tmp_path: Path) -> None:
    """The fleet's known_hosts holds one line per address: a new host at an old
    address replaces it; a host its pool no longer lists is forgotten; a pool that
    could not be listed keeps its hosts."""
    from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
    from czarina_fleet.providers.base import ConnectInfo, Instance, InstanceState

    def inst(host_id: str, pool: str, address: str, key: str) -> Instance:
        return Instance(host_id, host_id, pool, InstanceState.RUNNING, "netns", "local", False,
                        connect=ConnectInfo(address, host_key=f"ssh-ed25519 {key} comment",
                                            identity_file="/keys/id"))

    facts = ConnectFacts(tmp_path)
    facts.learn({"lab": [inst("lab-1", "lab", "10.0.0.2", "AAA1"),
                         inst("lab-3", "lab", "10.0.0.3", "CCC3")],
                 "other": [inst("o-1", "other", "10.0.1.2", "BBB1")]})
    known = tmp_path / "known_hosts"
    assert known.read_text() == ("10.0.0.2 ssh-ed25519 AAA1\n10.0.0.3 ssh-ed25519 CCC3\n"
                                 "10.0.1.2 ssh-ed25519 BBB1\n")
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    # lab-1 and lab-3 gone, lab-2 got lab-1's address; "other" could not be listed
    facts.learn({"lab": [inst("lab-2", "lab", "10.0.0.2", "AAA2")]})
    again = ConnectFacts(tmp_path)  # what another verb reads
    assert known.read_text() == "10.0.0.2 ssh-ed25519 AAA2\n10.0.1.2 ssh-ed25519 BBB1\n"
    assert again.identity_file("lab-2") == "/keys/id"
    assert again.known_hosts_for("lab-2") == str(known)
    assert again.known_hosts_for("lab-1") is None and again.identity_file("lab-3") is None
    known.unlink()  # lost: written again from what is known
    again.learn({"lab": [inst("lab-2", "lab", "10.0.0.2", "AAA2")]})
    assert "AAA2" in known.read_text()
    assert ConnectFacts(None).known_hosts_for("lab-2") is None
