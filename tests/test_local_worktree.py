"""Local workers' checkouts: real git worktrees on real branches."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from czarina_fleet.providers.local import (
    WorktreeError,
    catch_up_worktree,
    prepare_worktree,
    remove_worktree,
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(cwd: Path, *args: str) -> str:
    import os

    out = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **GIT_ENV},
    )
    return out.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("hi\n")
    git(tmp_path, "add", "README")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_new_branch_is_created_from_the_checked_out_branch(project: Path) -> None:
    path = asyncio.run(prepare_worktree(project, "backend", "feat/v1-backend"))
    assert path == project.resolve() / ".czarina" / "worktrees" / "backend"
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "feat/v1-backend"
    assert git(path, "rev-parse", "HEAD") == git(project, "rev-parse", "main")
    # the fleet's own files do not show up as untracked in the user's project
    assert git(project, "status", "--porcelain") == ""


def test_existing_branch_keeps_its_commits(project: Path) -> None:
    git(project, "branch", "feat/old")
    git(project, "checkout", "-q", "feat/old")
    (project / "work.txt").write_text("done\n")
    git(project, "add", "work.txt")
    git(project, "commit", "-q", "-m", "work on old")
    tip = git(project, "rev-parse", "HEAD")
    git(project, "checkout", "-q", "main")
    path = asyncio.run(prepare_worktree(project, "old", "feat/old"))
    assert git(path, "rev-parse", "HEAD") == tip


def test_prepare_is_idempotent_and_remove_keeps_the_branch(project: Path) -> None:
    first = asyncio.run(prepare_worktree(project, "w1", "feat/w1"))
    (first / "x.txt").write_text("x\n")
    git(first, "add", "x.txt")
    git(first, "commit", "-q", "-m", "x")
    tip = git(first, "rev-parse", "HEAD")
    again = asyncio.run(prepare_worktree(project, "w1", "feat/w1"))
    assert again == first and git(again, "rev-parse", "HEAD") == tip
    asyncio.run(remove_worktree(project, "w1"))
    assert not first.exists()
    assert git(project, "rev-parse", "feat/w1") == tip


def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorktreeError, match="not a git repository"):
        asyncio.run(prepare_worktree(tmp_path, "w1", "feat/w1"))


def test_catch_up_fast_forwards_never_merges_and_survives_no_origin(
        project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    origin = tmp_path_factory.mktemp("origin") / "o.git"
    git(project, "init", "-q", "--bare", str(origin))
    path = asyncio.run(prepare_worktree(project, "w1", "feat/w1"))
    git(path, "push", "-q", str(origin), "feat/w1")
    # the worker runs elsewhere for a while: two commits reach origin only
    other = tmp_path_factory.mktemp("elsewhere") / "c"
    git(project, "clone", "-q", "-b", "feat/w1", str(origin), str(other))
    for n in (1, 2):
        (other / f"f{n}").write_text("x\n")
        git(other, "add", "-A")
        git(other, "commit", "-q", "-m", f"remote {n}")
    git(other, "push", "-q", "origin", "feat/w1")
    remote_head = git(other, "rev-parse", "HEAD")
    assert asyncio.run(catch_up_worktree(path, "feat/w1", str(origin))) == "current"
    assert git(path, "rev-parse", "HEAD") == remote_head
    # both sides move: left as it is, for a person to merge
    (path / "local").write_text("y\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "local")
    (other / "f3").write_text("z\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "remote 3")
    git(other, "push", "-q", "origin", "feat/w1")
    local_head = git(path, "rev-parse", "HEAD")
    assert asyncio.run(catch_up_worktree(path, "feat/w1", str(origin))) == "diverged"
    assert git(path, "rev-parse", "HEAD") == local_head
    # no such repository (origin gone, offline): nothing to catch up, no error
    missing = str(tmp_path_factory.mktemp("gone") / "nothing.git")
    assert asyncio.run(catch_up_worktree(path, "feat/w1", missing)) == "absent"
