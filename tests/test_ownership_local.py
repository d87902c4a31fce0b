"""Two projects on one machine with the same worker ids, through the real CLI with real
tmux and git: each fleet touches only what carries its own identity mark, and a lost
state database is rebuilt from the sessions and worktrees that carry it.

The projects use their fleets' own tmux servers (`-L czarina-<fleet id>`, the default,
no CZARINA_TMUX_SOCKET) except where a test forces one shared server on purpose; every
server is killed at teardown by its socket name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.quickstart import QUICKSTART, Project, wait_for

pytestmark = pytest.mark.timeout(300)


class Fleet(Project):
    """A quickstart copy whose tmux server is its fleet's own (or a forced shared one)."""

    def __init__(self, root: Path, shared_socket: str | None) -> None:
        super().__init__(root, "unused")
        if shared_socket is None:
            self.env.pop("CZARINA_TMUX_SOCKET")
        else:
            self.env["CZARINA_TMUX_SOCKET"] = shared_socket
        self.shared = shared_socket

    @property
    def fleet_id(self) -> str:
        return (self.root / ".czarina" / "fleet-id").read_text().strip()

    @property
    def tmux_socket(self) -> str:  # type: ignore[override]
        return self.shared or f"czarina-{self.fleet_id}"

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.tmux_socket, *args], capture_output=True,
                              text=True)

    def sessions(self) -> set[str]:
        r = self.tmux("list-sessions", "-F", "#{session_name}")
        return set(r.stdout.split()) if r.returncode == 0 else set()

    def panes(self) -> dict[str, str]:
        """session -> pane pid on this fleet's server (a restart changes the pid)."""
        r = self.tmux("list-panes", "-a", "-F", "#{session_name} #{pane_pid}")
        return dict(line.split() for line in r.stdout.splitlines()) if r.returncode == 0 else {}

    def received(self, worker: str) -> str:
        path = self.root / ".czarina" / "worktrees" / worker / "TASKS_RECEIVED.txt"
        return path.read_text() if path.exists() else ""

    def once(self, *extra: str) -> subprocess.CompletedProcess[str]:
        r = self.czarina("controller", "run", "--once", *extra)
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    def teardown(self) -> None:
        if (self.root / ".czarina" / "fleet-id").exists():
            self.tmux("kill-server")


def _fleet(base: Path, name: str, shared: str | None) -> Fleet:
    root = base / name
    shutil.copytree(QUICKSTART, root)
    f = Fleet(root, shared)
    f.git("init", "-q", "-b", "main")
    f.git("add", "-A")
    f.git("commit", "-q", "-m", "quickstart")
    return f


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Fleet, Fleet]]:
    a, b = _fleet(tmp_path, "a", None), _fleet(tmp_path, "b", None)
    yield a, b
    a.teardown()
    b.teardown()


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[Fleet, Fleet]]:
    socket = f"czt-{uuid.uuid4().hex[:8]}"
    a, b = _fleet(tmp_path, "a", socket), _fleet(tmp_path, "b", socket)
    yield a, b
    a.teardown()


BOTH = {"czar-worker-backend", "czar-worker-docs"}


def _marks(f: Fleet) -> dict[str, str]:
    r = f.tmux("list-sessions", "-F", "#{session_name} #{@czarina_fleet}")
    return dict(line.split(" ", 1) for line in r.stdout.splitlines())


@pytest.mark.parametrize("first", ["a", "b"])
def test_two_projects_same_worker_ids_never_touch_each_other(
        two: tuple[Fleet, Fleet], tmp_path: Path, first: str) -> None:
    a, b = two if first == "a" else two[::-1]
    a.once()
    b.once()
    assert a.fleet_id != b.fleet_id
    assert a.sessions() == b.sessions() == BOTH  # the same names, each on its own server
    assert set(_marks(a).values()) == {a.fleet_id} and set(_marks(b).values()) == {b.fleet_id}
    for f in (a, b):  # each worktree carries its fleet's mark, invisible to git status
        mark = f.root / ".git" / "worktrees" / "backend" / "czarina-fleet"
        assert mark.read_text().strip() == f.fleet_id
        assert "czarina-fleet" not in f.git("-C", ".czarina/worktrees/backend", "status",
                                            "--porcelain", "--ignored")
    wait_for(lambda: "/health" in a.received("backend") and b.received("backend"), "tasks")
    a_panes = a.panes()
    b.once()  # nothing of a's is adopted, stopped or started again

    task = tmp_path / "only-b.txt"
    task.write_text("for b only\n")
    assert b.czarina("inject", "backend", str(task)).returncode == 0
    wait_for(lambda: "for b only" in b.received("backend"), "b's injection")
    assert "for b only" not in a.received("backend")
    assert "stand-in agent" in b.czarina("logs", "backend").stdout

    r = b.czarina("scale", "--max", "1")  # b scales down: its docs goes, a's stays
    assert r.returncode == 0, r.stderr
    assert b.sessions() == {"czar-worker-backend"}
    assert a.panes() == a_panes

    stopped = b.once("--stop-all")
    assert "stop worker backend on local: --stop-all" in stopped.stdout + stopped.stderr
    assert "removed from the configuration" not in stopped.stdout + stopped.stderr
    assert b.sessions() == set()
    assert a.panes() == a_panes  # every one of a's agents still the same process
    a.once("--stop-all")
    assert a.sessions() == set()


def test_a_shared_tmux_server_refuses_the_other_fleets_sessions(
        shared: tuple[Fleet, Fleet], tmp_path: Path) -> None:
    a, b = shared
    a.once()
    wait_for(lambda: bool(a.received("backend")), "a's task")
    a_panes = a.panes()
    r = b.czarina("controller", "run", "--once")
    assert r.returncode == 1  # b cannot start: the names are taken by a's sessions
    assert "not this fleet's" in r.stderr and "left untouched" in r.stderr
    task = tmp_path / "t.txt"
    task.write_text("from b\n")
    inj = b.czarina("inject", "backend", str(task))
    assert inj.returncode != 0 and "not this fleet's" in inj.stderr
    assert b.czarina("logs", "backend").returncode != 0
    b.once("--stop-all")
    status = json.loads(b.czarina("status", "--json").stdout)
    assert sorted(status["not_ours"]["local"]) == [
        "czar-worker-backend (another fleet)", "czar-worker-docs (another fleet)"]
    assert a.panes() == a_panes
    assert "from b" not in a.received("backend")
    events = json.loads(b.czarina("events", "--json").stdout)
    assert any("left untouched" in e["reason"] for e in events)


def test_an_unmarked_look_alike_is_reported_never_stopped(
        shared: tuple[Fleet, Fleet]) -> None:
    a, _ = shared
    a.tmux("new-session", "-d", "-s", "czar-worker-docs", "sleep 600")
    pid = a.panes()["czar-worker-docs"]
    r = a.czarina("controller", "run", "--once")
    assert r.returncode == 1 and "not marked" in r.stderr  # docs cannot start there
    assert a.sessions() == BOTH
    hosts = json.loads(a.czarina("hosts", "--json").stdout)
    assert hosts[0]["not_ours"] == ["czar-worker-docs (unmarked)"]
    a.once("--stop-all")
    assert a.sessions() == {"czar-worker-docs"} and a.panes()["czar-worker-docs"] == pid


@pytest.mark.parametrize("loss", ["deleted", "emptied", "older copy"])
def test_a_lost_state_file_is_rebuilt_from_the_marks(two: tuple[Fleet, Fleet],
                                                      loss: str) -> None:
    a, b = two
    db = a.root / ".czarina" / "fleet.db"
    old = a.root.parent / "old.db"
    if loss == "older copy":  # a store from before docs ran
        config = a.root / ".czarina" / "config.json"
        full = config.read_text()
        a.edit_config(lambda d: d.update(workers=d["workers"][:1]))
        a.once()
        shutil.copy(db, old)
        config.write_text(full)
    a.once()
    b.once()
    wait_for(lambda: bool(a.received("docs")), "a's docs task")
    a_panes, b_panes = a.panes(), b.panes()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if loss == "emptied":
        db.write_bytes(b"")
    elif loss == "older copy":
        shutil.copy(old, db)
    r = a.once()
    assert "adopt worker docs" in r.stdout
    if loss != "older copy":
        assert "adopt worker backend" in r.stdout
    assert "start worker" not in r.stdout and "stop" not in r.stdout
    assert a.panes() == a_panes and b.panes() == b_panes  # nothing restarted anywhere
    again = a.once()
    assert "Nothing to do" in again.stdout
    rows = json.loads(a.czarina("status", "--json").stdout)["workers"]
    assert {w["worker"]: w["host"] for w in rows} == {"backend": "local", "docs": "local"}
    a.once("--stop-all")  # and the rebuilt fleet can be stopped
    assert a.sessions() == set() and b.panes() == b_panes
