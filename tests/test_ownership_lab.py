"""A running lab fleet (real network-namespace hosts with their own sshd, real tmux and
git, the real CLI) loses its state database at several points, deleted, emptied or
replaced by an older copy: each next `controller run --once` exits 0 and adopts every
host and session by its mark, with no second host, no second session and no healthy
worker restarted. A second fleet with the same display name and worker ids shares the
machine and is never adopted, typed into or torn down. Needs root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from czarina_fleet.remote import netns
from tests.test_lab_cli import LabProject, converge

pytestmark = [pytest.mark.netns, pytest.mark.timeout(600)]


@pytest.fixture
def two_labs() -> Iterator[tuple[LabProject, LabProject]]:
    a = LabProject()
    b = LabProject()
    try:
        yield a, b
    finally:
        a.teardown()
        b.teardown()


def panes(p: LabProject) -> dict[str, str]:
    """`<namespace>/<session>` -> pane pid, for every worker session on p's lab hosts."""
    found: dict[str, str] = {}
    for h in _own_hosts(p):
        r = subprocess.run(["runuser", "-u", h.user, "--", "tmux", "-L", p.socket,
                            "list-panes", "-a", "-F", "#{session_name} #{pane_pid}"],
                           capture_output=True, text=True, env={**p.env, "HOME": "/"})
        for line in r.stdout.splitlines():
            name, pid = line.split()
            found[f"{h.namespace}/{name}"] = pid
    return found


def _own_hosts(p: LabProject) -> list[netns.LabHost]:
    fleet_id = (p.state_dir / "fleet-id").read_text().strip()
    return [h for h in netns.list_hosts() if h.fleet_id == fleet_id]


def working(p: LabProject) -> bool:
    rows = p.json("status")["workers"]
    return all(r["status"] in ("working", "idle") and r["host"] for r in rows)


def lose(p: LabProject, how: str, older: Path | None = None) -> None:
    db = p.state_dir / "fleet.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if how == "emptied":
        db.write_bytes(b"")
    elif how == "older copy":
        assert older is not None
        shutil.copy(older, db)


def once(p: LabProject) -> str:
    r = p.czarina("controller", "run", "--once")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_state_lost_at_several_points_of_a_running_lab_fleet(
        two_labs: tuple[LabProject, LabProject]) -> None:
    a, b = two_labs
    # b: the same display name and worker ids as a, on the same machine
    b.fleet = a.fleet
    b.edit_config(lambda c: c["fleet"].update(name=a.fleet))
    for p in (a, b):
        p.edit_config(lambda c: c["fleet"]["scaling"].update(idle_timeout_s=3600))
        converge(p, lambda p=p: working(p), "three workers working")
    a_hosts = {h.namespace for h in _own_hosts(a)}
    b_hosts = {h.namespace for h in _own_hosts(b)}
    assert len(a_hosts) == len(b_hosts) == 2 and not a_hosts & b_hosts
    a_panes, b_panes = panes(a), panes(b)
    assert len(a_panes) == len(b_panes) == 3
    older = a.base / "older.db"
    shutil.copy(a.state_dir / "fleet.db", older)
    launches = len(netns.launch_log(fleet=a.fleet))  # both fleets' (one name)
    figures = Counter[str]()

    for how in ("deleted", "emptied", "deleted"):
        lose(a, how)
        out = once(a)
        assert "adopt host" in out and "launch" not in out, out
        figures["steps"] += 1
        converge(a, lambda: working(a), f"adopted after the store was {how}", rounds=4)
        now = panes(a)
        figures["restarted"] += sum(1 for k, pid in a_panes.items() if now.get(k) != pid)
        figures["extra_sessions"] += len(set(now) - set(a_panes))
        assert {h.namespace for h in _own_hosts(a)} == a_hosts
        assert len(netns.launch_log(fleet=a.fleet)) == launches  # no second host

    # an older copy, from before a scale-down: its intent (three workers) comes back
    assert a.czarina("scale", "--max", "1").returncode == 0
    lose(a, "older copy", older)
    once(a)
    converge(a, lambda: working(a), "three workers again after the rollback", rounds=6)
    sessions = Counter(k.split("/", 1)[1] for k in panes(a))
    assert sessions == Counter({"czar-worker-backend": 1, "czar-worker-docs": 1,
                                "czar-worker-tests": 1})
    assert len(netns.launch_log(fleet=a.fleet)) == launches

    # b saw a's hosts as look-alikes (same name, another identity): reported, untouched
    assert panes(b) == b_panes and {h.namespace for h in _own_hosts(b)} == b_hosts
    once(b)
    foreign = {e["entity_id"] for e in b.json("events", "--limit", "1000")
               if e["entity"] == "foreign"}
    assert {k.split("/")[-1] for k in foreign} >= a_hosts, foreign
    figures["cross_touches"] = int(panes(b) != b_panes)
    print(f"figures: {dict(figures)}")
    assert figures["restarted"] == 0 and figures["extra_sessions"] == 0
    assert figures["cross_touches"] == 0
    rows = {r["worker"]: r["host"] for r in a.json("status")["workers"]}
    assert set(rows.values()) <= {h.host_id for h in _own_hosts(a)}
    assert json.loads(a.czarina("hosts", "--json").stdout)  # the records were rebuilt

    # each fleet's clone on its hosts lives in its own directory, marked as its own
    fleet_id = (a.state_dir / "fleet-id").read_text().strip()
    for h in _own_hosts(a):
        bare = Path(h.work_dir, fleet_id, "origin.git")
        mark = subprocess.run(["git", "config", "--file", str(bare / "config"),
                               "czarina.fleet"],
                              capture_output=True, text=True).stdout.strip()
        assert mark == fleet_id, (bare, mark)

    # and with its store lost once more, stop-all still finds and stops every session,
    # in one step, and only a's
    lose(a, "deleted")
    r = a.czarina("controller", "run", "--once", "--stop-all")
    assert r.returncode == 0, r.stdout + r.stderr
    assert panes(a) == {} and panes(b) == b_panes
