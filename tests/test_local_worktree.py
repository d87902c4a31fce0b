"""Local workers' checkouts: real git worktrees on real branches."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from czarina_fleet.providers.local import (
    WorktreeError,
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
