"""Property: the store is a cache of the world. A running local fleet (real tmux, real git
worktrees, the real controller in process, restarted between operations) whose state
database is deleted, emptied or rolled back to an older copy at random points keeps
its sessions: after each loss the next step stops and restarts nothing it did not
have to, fails nothing, and after convergence the records match the sessions, every
session is marked as the fleet's, and no intent is left open.

Examples come from the repeatable profile (tests/conftest.py); HYPOTHESIS_PROFILE=explore
draws new ones.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from czarina_fleet.clock import SystemClock
from czarina_fleet.config import load_config
from czarina_fleet.controller.runtime.compose import open_fleet
from czarina_fleet.model.states import WorkerState
from czarina_fleet.remote.tmux_target import TmuxTarget
from tests.fixtures.quickstart import QUICKSTART

pytestmark = pytest.mark.timeout(900)
WORKERS = 2  # the quickstart's backend and docs

Op = tuple[str, int]
OPS = st.lists(st.one_of(
    st.tuples(st.just("step"), st.just(0)),
    st.tuples(st.just("scale"), st.integers(0, WORKERS)),
    st.tuples(st.just("delete"), st.just(0)),
    st.tuples(st.just("empty"), st.just(0)),
    st.tuples(st.just("rollback"), st.integers(0, 5)),
), min_size=2, max_size=7)


@dataclass
class World:
    root: Path
    socket: str

    @property
    def db(self) -> Path:
        return self.root / ".czarina" / "fleet.db"

    @property
    def fleet_id(self) -> str:
        return (self.root / ".czarina" / "fleet-id").read_text().strip()

    def panes(self) -> dict[str, tuple[str, str]]:
        """session -> (pane pid, fleet mark), on the fleet's tmux server."""
        r = subprocess.run(["tmux", "-L", self.socket, "list-panes", "-a", "-F",
                            "#{session_name} #{pane_pid} #{@czarina_fleet}"],
                           capture_output=True, text=True)
        rows = [line.split(" ") for line in r.stdout.splitlines()] if r.returncode == 0 else []
        return {row[0]: (row[1], row[2]) for row in rows}

    def drop_db(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)

    def reset(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        self.drop_db()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("prop") / "proj"
    shutil.copytree(QUICKSTART, root)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "q"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                       env={**env, "PATH": "/usr/bin:/bin"})
    w = World(root, f"czt-{uuid.uuid4().hex[:8]}")
    yield w
    w.reset()


async def _step(w: World, max_workers: int | None = None) -> tuple[int, int]:
    """One controller run (open, one reconcile step, close); returns (actions, failed)."""
    cfg = load_config(w.root / ".czarina" / "config.json")
    async with open_fleet(cfg, w.db, SystemClock(), tmux=TmuxTarget(socket_name=w.socket),
                          controller=True) as fleet:
        if max_workers is not None:
            fleet.store.set_overrides(max_workers=max_workers)
        result = await fleet.reconciler.reconcile_once()
        assert not result.errors, result.errors
        return len(result.actions), len(result.failed)


def _allowed(w: World) -> int:
    """How many workers the store's overrides allow (what a loss may legitimately stop)."""
    try:
        with sqlite3.connect(w.db) as conn:
            row = conn.execute("SELECT value FROM overrides WHERE name='max_workers'"
                               ).fetchone()
    except sqlite3.Error:  # empty or missing: no override
        row = None
    value = json.loads(row[0]) if row else None
    return WORKERS if value is None else min(WORKERS, int(value))


async def _run(w: World, ops: list[Op]) -> dict[str, int]:
    figures = {"losses": 0, "kills_after_loss": 0, "failed": 0, "duplicates": 0}
    snapshots: list[bytes] = []
    for kind, arg in ops:
        if kind in ("step", "scale"):
            _actions, failed = await _step(w, arg if kind == "scale" else None)
            figures["failed"] += failed
            snapshots.append(w.db.read_bytes() if w.db.exists() else b"")
            continue
        before = w.panes()
        w.drop_db()
        if kind == "empty":
            w.db.write_bytes(b"")
        elif kind == "rollback" and snapshots:
            w.db.write_bytes(snapshots[arg % len(snapshots)])
        figures["losses"] += 1
        keep = len(before) <= _allowed(w)  # nothing of this may be stopped
        _actions, failed = await _step(w)
        figures["failed"] += failed
        after = w.panes()
        if keep:
            figures["kills_after_loss"] += sum(1 for s, p in before.items() if after.get(s) != p)
    for _ in range(8):  # converge
        actions, failed = await _step(w)
        figures["failed"] += failed
        if actions == 0:
            break
    else:
        raise AssertionError("no convergence in 8 steps")
    return figures


def _check_converged(w: World) -> int:
    cfg = load_config(w.root / ".czarina" / "config.json")

    async def records() -> tuple[set[str], int]:
        async with open_fleet(cfg, w.db, SystemClock(),
                              tmux=TmuxTarget(socket_name=w.socket)) as fleet:
            running = {r.worker_id for r in fleet.store.workers()
                       if r.state == WorkerState.RUNNING and r.host_id == "local"}
            return running, len(fleet.store.open_intents())

    running, open_intents = asyncio.run(records())
    panes = w.panes()
    assert {f"czar-worker-{r}" for r in running} == set(panes), (running, panes)
    assert {mark for _pid, mark in panes.values()} <= {w.fleet_id}
    assert open_intents == 0
    return len(panes) - len(set(panes))


TOTALS: dict[str, int] = {}


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_state_loss_at_random_points_converges_without_kills(world: World,
                                                              ops: list[Op]) -> None:
    world.reset()
    figures = asyncio.run(_run(world, [("step", 0), *ops]))
    figures["duplicates"] = _check_converged(world)
    for k, v in figures.items():
        TOTALS[k] = TOTALS.get(k, 0) + v
    print(f"ops {ops}: {figures}; totals {TOTALS}")
    assert figures["kills_after_loss"] == 0, ops
    assert figures["failed"] == 0, ops
