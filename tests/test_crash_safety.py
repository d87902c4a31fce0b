"""Crash safety: SIGKILL the controller at 30+ random points while it scales a lab fleet
up and down, restart it each time, and check the fleet it converges to.

The controller is the real CLI (`czarina controller run --interval 1`, and `czarina
scale --max N`, which converges by itself) on real lab hosts (network namespaces with
their own sshd). A watcher reads the store while the controller works; most kills are
aimed: the watcher waits until an intent of a chosen kind (launch, bootstrap, start,
stop, terminate) is open, then kills after a random delay, which lands inside the
provider call, the SSH bootstrap or the session start. The rest are killed after a
random time. Everything random comes from one seeded generator (CZARINA_CRASH_SEED).

After convergence: no worker runs twice (tmux sessions counted on every lab host and
here), no host is orphaned (lab namespaces <-> alive host records), no intent got two
hosts (the lab provider's launch log), and the store is consistent (no open intent,
every recorded transition legal and continuous).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from czarina_fleet.model.states import (
    HOST_ALIVE,
    HostState,
    WorkerState,
    check_host_transition,
    check_worker_transition,
)
from czarina_fleet.remote import netns
from tests.test_lab_cli import LabProject

pytestmark = [pytest.mark.netns, pytest.mark.timeout(400)]

KILLS = 42
# After an intent of this kind opens, kill within this many seconds: about how long its
# action takes here (a lab launch makes a user, a namespace and an sshd; a bootstrap is
# one SSH round trip), so the kill lands inside it.
AIM = {"launch": 0.25, "bootstrap": 0.06, "start": 0.2, "stop": 0.06, "terminate": 0.1}
MUST_LAND = ("launch", "bootstrap", "start")
# max_workers overrides, up and down in turn (3 kills each: one `scale`, two `run`)
MAXES = [3, 0, 2, 3, 1, 0, 3, 1, 2, 0, 3, 1, 0, 3]


@dataclass
class Watcher:
    """Polls the store for intents (a read-only connection, every few ms)."""

    db: Path
    seen: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (kind, status)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=0.05)
                rows = conn.execute("SELECT key, kind, status FROM intents").fetchall()
            except sqlite3.Error:
                rows = []  # busy: look again
            with self._lock:
                self.seen.update({k: (kind, status) for k, kind, status in rows})
            time.sleep(0.003)
        if conn is not None:
            conn.close()

    def new_since(self, before: set[str]) -> list[tuple[str, str]]:
        """(key, kind) of intents first seen after `before`, in the order they appeared."""
        with self._lock:
            return [(k, kind) for k, (kind, _st) in self.seen.items() if k not in before]


@dataclass
class Kill:
    command: str
    aimed_at: str        # an intent kind, or "time"
    landed_in: list[str]  # kinds of the intents the kill left open


def kill_round(p: LabProject, watcher: Watcher, rng: random.Random, argv: list[str],
               wanted: set[str]) -> Kill:
    """Run one controller process and SIGKILL it at a (seeded) random point: at the
    n-th intent it opens (at once at one of a kind still `wanted`), a random part of
    that action's usual length later; or, sometimes, after a random time."""
    nth, part = rng.randint(1, 3), rng.random()
    by_time = rng.random() < 0.15
    wait = rng.uniform(0.3, 3.0) if by_time else 3.0
    before = {key for key, _kind in watcher.new_since(set())}
    aimed = "time"
    with open(p.base / "controller.log", "ab") as log:
        proc = subprocess.Popen(p.argv(*argv), cwd=p.root, env=p.env, stdout=log, stderr=log)
    try:
        # Aim from the moment the controller holds the store's lock, not from its start:
        # on a loaded machine imports alone can take seconds.
        _wait_for_lock(p.state_dir / "fleet.db.lock", proc)
        deadline = time.monotonic() + wait
        while not by_time and time.monotonic() < deadline and proc.poll() is None:
            new = watcher.new_since(before)
            hit = next((kind for i, (_k, kind) in enumerate(new)
                        if kind in wanted or i + 1 == nth), None)
            if hit is not None:
                aimed = hit
                time.sleep(part * AIM.get(hit, 0.1))
                break
            time.sleep(0.002)
        if by_time:
            time.sleep(wait)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    left = open_intents(p.state_dir / "fleet.db")
    return Kill(argv[0], aimed, sorted({kind for _key, kind in left}))


def _wait_for_lock(lock: Path, proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    """Until `proc` holds its flock on `lock` (read from /proc/locks, without touching
    the lock, which would make the controller see it held) or exits."""
    inode = os.stat(lock).st_ino
    end = time.monotonic() + limit_s
    while proc.poll() is None and time.monotonic() < end:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "FLOCK" in fields and fields[-3].endswith(f":{inode}") and \
                    fields[fields.index("FLOCK") + 3] == str(proc.pid):
                return
        time.sleep(0.005)


def open_intents(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, kind FROM intents WHERE status='open'").fetchall()


def test_sigkill_at_random_points_while_scaling_a_lab_fleet(crash_project: LabProject) -> None:
    p = crash_project
    p.edit_config(lambda c: c["fleet"]["scaling"].update(idle_timeout_s=2, max_workers=3))
    seed = int(os.environ.get("CZARINA_CRASH_SEED", "20261126"))
    rng = random.Random(seed)
    assert p.czarina("controller", "run", "--once").returncode == 0  # creates the store
    watcher = Watcher(p.state_dir / "fleet.db")
    watcher.start()
    kills: list[Kill] = []
    landed: Counter[str] = Counter()
    try:
        for target in MAXES:
            for i in range(KILLS // len(MAXES)):
                argv = (["scale", "--max", str(target)] if i == 0
                        else ["controller", "run", "--interval", "1"])
                wanted = {k for k in MUST_LAND if landed[k] < 2}
                kills.append(kill_round(p, watcher, rng, argv, wanted))
                landed.update(kills[-1].landed_in)
    finally:
        watcher.stop()
    report = f"seed {seed}: " + "; ".join(
        f"{k.command}@{k.aimed_at}->{','.join(k.landed_in) or '-'}" for k in kills)
    print(report)  # with -s: where each kill was aimed and which actions it interrupted
    assert len(kills) >= 30
    # the kills landed inside the actions that matter, not only between them
    assert set(MUST_LAND) <= set(landed), report

    final = 3
    r = p.czarina("scale", "--max", str(final), timeout=180)
    assert r.returncode in (0, 1), r.stdout + r.stderr  # a step may fail; it converges on
    _converge(p)
    _check_fleet(p, final, report)


@pytest.fixture
def crash_project() -> Iterator[LabProject]:
    project = LabProject()
    try:
        yield project
    finally:
        keep = os.environ.get("CZARINA_CRASH_KEEP")  # a directory for the evidence
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(project.state_dir, keep, ignore=shutil.ignore_patterns("wt*"))
            if (project.base / "controller.log").exists():
                shutil.copy(project.base / "controller.log", keep)
        project.teardown()


def _converge(p: LabProject, limit: int = 40) -> None:
    """`--once` until two steps in a row, an idle timeout apart, have nothing to do."""
    quiet = 0
    for _ in range(limit):
        r = p.czarina("controller", "run", "--once")
        quiet = quiet + 1 if "Nothing to do" in r.stdout else 0
        if quiet == 2:
            return
        time.sleep(2.5)
    raise AssertionError(f"no convergence after {limit} steps:\n{r.stdout}\n{r.stderr}")


def _check_fleet(p: LabProject, final: int, report: str) -> None:
    db = p.state_dir / "fleet.db"
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        hosts = {r["host_id"]: r for r in conn.execute("SELECT * FROM hosts")}
        workers = {r["worker_id"]: r for r in conn.execute("SELECT * FROM workers")}
        intents = conn.execute("SELECT key, status FROM intents").fetchall()
        events = conn.execute("SELECT entity, entity_id, from_state, to_state, reason "
                              "FROM events ORDER BY seq").fetchall()
    why = report

    restarts = Counter(r for _e, _i, _o, _n, r in events if "restart" in r)
    print(dict(restarts))
    # the store: no open intent, every state legal, every transition legal and continuous
    assert [k for k, st in intents if st == "open"] == [], why
    for h in hosts.values():
        HostState(h["state"])
    for w in workers.values():
        WorkerState(w["state"])
    _check_events(events, hosts, workers, why)

    # no worker runs twice: one session per running worker, on its host, none elsewhere
    lab = {h.namespace: h for h in p.hosts()}
    sessions = p.sessions()
    everywhere = Counter(s for names in sessions.values() for s in names)
    assert all(n == 1 for n in everywhere.values()), (sessions, why)
    running = {wid: w["host_id"] for wid, w in workers.items() if w["state"] == "running"}
    assert len(running) == final, ({k: dict(w) for k, w in workers.items()}, why)
    by_host_id = {h.host_id: ns for ns, h in lab.items()}
    expected: dict[str, list[str]] = {ns: [] for ns in sessions}
    for wid, host_id in running.items():
        expected[by_host_id[host_id]].append(f"czar-worker-{wid}")
    assert {k: sorted(v) for k, v in sessions.items()} == \
        {k: sorted(v) for k, v in expected.items()}, why

    # no orphan: lab namespaces <-> alive host records; alive hosts are ready and busy
    alive = {hid: h for hid, h in hosts.items() if h["state"] in HOST_ALIVE}
    assert {h["instance_id"] for h in alive.values()} == set(lab), (dict(alive), lab, why)
    assert all(h["state"] == "ready" and lab[h["instance_id"]].host_id == hid
               for hid, h in alive.items()), why
    assert set(alive) == set(running.values()), "an idle host was not shut down " + why
    namespaces = set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout.split())
    launched = netns.launch_log(fleet=p.fleet)
    ours = {f"czlab-{e['index']}" for e in launched}
    taken = {h.namespace for h in netns.list_hosts()}  # now any fleet's (tests share N)
    assert (ours & namespaces) - taken == set(), "a namespace outlived its host " + why
    _check_no_stray_sshd(why)

    # no host launched twice for one intent, and the store knows every host made
    per_intent = Counter(e["intent_key"] for e in launched)
    assert all(n == 1 for n in per_intent.values()), (per_intent, why)
    assert {e["host_id"] for e in launched} <= set(hosts), why
    assert len({e["host_id"] for e in launched}) == len(launched), why


def _check_events(events: list[tuple[str, str, str | None, str | None, str]],
                  hosts: dict[str, sqlite3.Row], workers: dict[str, sqlite3.Row],
                  why: str) -> None:
    last: dict[tuple[str, str], str] = {}
    for entity, entity_id, old, new, reason in events:
        if entity not in ("host", "worker") or new is None:
            continue
        prev = last.get((entity, entity_id))
        if prev is not None and old is not None:
            assert old == prev, (entity, entity_id, prev, old, new, reason, why)
            check = check_host_transition if entity == "host" else check_worker_transition
            state = HostState if entity == "host" else WorkerState
            check(state(old), state(new))  # type: ignore[arg-type]
        last[(entity, entity_id)] = new
    for hid, h in hosts.items():
        assert last.get(("host", hid)) == h["state"], (hid, why)
    for wid, w in workers.items():
        assert last.get(("worker", wid)) == w["state"], (wid, why)


def _check_no_stray_sshd(why: str) -> None:
    """Every lab sshd running belongs to a lab host that exists (of any fleet)."""
    live = {h.state_dir for h in netns.list_hosts()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        config = [a.decode() for a in argv if a.endswith(b"/sshd_config")]
        if config and config[0].startswith(str(netns.LAB_ROOT)):
            assert str(Path(config[0]).parent) in live, (config, why)
