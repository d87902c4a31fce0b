"""The push job and the branch saver on a real lab host: pushes only what moved, never
forces over a branch that diverged on origin, survives a dead host, and a reused
checkout catches up with origin."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from czarina_fleet.remote import lab_sshd, netns
from czarina_fleet.remote.branch_save import catch_up
from tests.fixtures.lab_fleet import BRANCH, lab, start_and_work
from tests.fixtures.netns_hosts import git
from tests.test_spot_recovery_lab import fleet_name

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]
__all__ = ["fleet_name"]  # a fixture used here, defined there (writable_origin: shared)


def origin_commit(origin: Path, work: Path, name: str, *, base: str | None = None) -> str:
    """Commit on BRANCH in a clone of origin and push it (forced only when `base` asks
    for a history of its own: the divergence a colleague's push would cause)."""
    if not work.exists():
        git("clone", "-q", str(origin), str(work))
    git("fetch", "-q", "origin", cwd=work)
    git("checkout", "-q", "-B", BRANCH, base or f"origin/{BRANCH}", cwd=work)
    (work / f"{name}.txt").write_text(name)
    git("add", f"{name}.txt", cwd=work)
    git("commit", "-q", "-m", name, cwd=work)
    git("push", "-q", "--force" if base else "--no-force", "origin", f"HEAD:{BRANCH}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def test_push_job_pushes_moves_only_never_forces_and_survives_a_dead_host(
        tmp_path: Path, writable_origin: Path, fleet_name: str) -> None:
    lb = lab(tmp_path, writable_origin, fleet_name)
    clone = tmp_path / "colleague"

    async def scenario() -> None:
        a, made = await start_and_work(lb)
        assert (await lb.pusher.run_once()).pushed == {"w1": made[-1]}

        # origin moves ahead (a fast-forward): a reused checkout catches up with it
        ahead = origin_commit(writable_origin, clone, "from origin")
        spec = lb.access.cfg.worker("w1")
        assert spec is not None
        runner = lb.access.runner(a)
        checkout = await lb.access._checkout(a, runner, spec)  # fetches, keeps the worktree
        assert await catch_up(runner, checkout, BRANCH) == ahead
        assert ahead in await lb.history(a)

        # origin diverges (someone force-pushed): the job reports it and overwrites nothing
        theirs = origin_commit(writable_origin, clone, "diverged", base="origin/main")
        ours = await lb.commit(a, "ours")
        report = await lb.pusher.run_once()
        assert "w1" in report.failed and "rejected" in report.failed["w1"]
        assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=writable_origin) == theirs
        assert lb.pusher.last_pushed["w1"] == made[-1] != ours

        # the host dies: the round ends with the failure reported, nothing raised
        (lab_host,) = [h for h in netns.list_hosts(fleet=fleet_name) if h.host_id == a.host_id]
        lab_sshd.kill_sshd(lab_host)
        await lb.access.pool.close()
        dead = await lb.pusher.run_once()
        assert list(dead.failed) == ["w1"] and dead.pushed == {}

    asyncio.run(scenario())
    subprocess.run(["rm", "-rf", str(clone)], check=False)
