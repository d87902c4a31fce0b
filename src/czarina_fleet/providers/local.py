"""The embedded default: workers on this machine.

Each local worker is a tmux session `czar-worker-<id>` on a git worktree of the project at
`.czarina/worktrees/<id>`, on its branch (created from the base branch when missing).
The inventory is one host, `local`, that is always there and costs nothing.

A worktree carries its fleet's identity in its git administrative directory
(`.git/worktrees/<id>/czarina-fleet`, invisible to the worker and to `git status`); one
marked for another fleet is neither used nor removed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from czarina_fleet.errors import redact_credentials
from czarina_fleet.remote.runner import CommandResult, CommandTimeout, LocalRunner
from czarina_fleet.remote.validate import check_branch, check_repo_url

WORKTREES_DIR = Path(".czarina") / "worktrees"
# Paths the fleet writes inside the user's project that git should not show as untracked.
_EXCLUDES = (".czarina/worktrees/", ".czarina/fleet.db*", ".czarina/fleet.lock",
             ".czarina/ssh/", ".czarina/fleet-id")


class WorktreeError(Exception):
    pass


MARK_FILE = "czarina-fleet"


async def prepare_worktree(
    project_root: Path, worker_id: str, branch: str, base_branch: str | None = None,
    owner: str | None = None,
) -> Path:
    """Make (or reuse) the worker's worktree at `.czarina/worktrees/<id>` on `branch`.

    `worker_id` and `branch` must already be validated (config loading does it);
    everything is passed to git as separate argv entries, never through a shell.
    Raises `WorktreeError` with git's message when git refuses.
    """
    root = project_root.resolve()
    async with _git_lock(root):  # one worktree change at a time (see _git_lock)
        return await _prepare(root, worker_id, branch, base_branch, owner)


_LOCKS: dict[tuple[int, Path], asyncio.Lock] = {}


def _git_lock(root: Path) -> asyncio.Lock:
    """Starts run concurrently, but one worker's `git worktree prune` reads the
    administrative directory another's `git worktree add` is still writing ("failed to
    read .git/worktrees/docs/commondir"): worktree changes of one project take turns."""
    key = (id(asyncio.get_running_loop()), root)
    return _LOCKS.setdefault(key, asyncio.Lock())


async def _prepare(root: Path, worker_id: str, branch: str, base_branch: str | None,
                   owner: str | None) -> Path:
    path = root / WORKTREES_DIR / worker_id
    git = LocalRunner(cwd=str(root))
    await _exclude_fleet_files(root)
    if (path / ".git").exists():
        await _claim(path, worker_id, owner)
        return path
    await git.run(["git", "worktree", "prune"])
    exists = await git.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"])
    if exists.ok:
        result = await git.run(["git", "worktree", "add", str(path), branch], timeout=120)
    else:
        base = base_branch or await default_branch(root)
        result = await git.run(
            ["git", "worktree", "add", "-b", branch, str(path), base], timeout=120
        )
    _raise_for(result, f"cannot make the worktree for worker {worker_id} at {path}")
    await _claim(path, worker_id, owner)
    return path


async def worktree_owner(path: Path) -> str | None:
    """The fleet id a worktree is marked with ("" when unmarked), None if no worktree."""
    found = await LocalRunner(cwd=str(path)).run(["git", "rev-parse", "--absolute-git-dir"])
    if not found.ok:
        return None
    mark = Path(found.stdout.strip()) / MARK_FILE
    return mark.read_text().strip() if mark.exists() else ""


async def _claim(path: Path, worker_id: str, owner: str | None) -> None:
    """Mark the worktree as `owner`'s; one in our project but unmarked (made before
    identities) is ours by place and gets the mark. Another fleet's: WorktreeError."""
    if owner is None:
        return
    found = await worktree_owner(path)
    if found is None:
        raise WorktreeError(f"{path} is not a git worktree")
    if found and found != owner:
        raise WorktreeError(f"the worktree of worker {worker_id} at {path} belongs to fleet "
                            f"{found}, not this one ({owner}): left untouched")
    if not found:
        git_dir = await LocalRunner(cwd=str(path)).run(["git", "rev-parse",
                                                        "--absolute-git-dir"])
        (Path(git_dir.stdout.strip()) / MARK_FILE).write_text(owner + "\n")


async def remove_worktree(project_root: Path, worker_id: str,
                          owner: str | None = None) -> None:
    """Remove the worktree directory but keep the branch (and so every commit). With
    `owner`, a worktree marked for another fleet is left alone."""
    root = project_root.resolve()
    path = root / WORKTREES_DIR / worker_id
    if path.exists():
        if owner is not None and (await worktree_owner(path)) not in (owner, ""):
            return
        git = LocalRunner(cwd=str(root))
        result = await git.run(["git", "worktree", "remove", "--force", str(path)])
        _raise_for(result, f"cannot remove the worktree of worker {worker_id}")


async def catch_up_worktree(path: Path, branch: str, url: str) -> str:
    """Fast-forward the worker's worktree to what `url` has of its branch: a worker that
    comes back from a remote host resumes from the checkpoints it pushed there. Never
    merges or discards. Returns "current" (nothing newer, or caught up), "absent" (no
    such branch there, or `url` unreachable) or "diverged" (both have commits: left as
    is, for a person to merge)."""
    git = LocalRunner(cwd=str(path))
    # Every local start asks, so it must never wait on a person or a dead remote: no
    # prompt (and the runner's own session has no terminal to prompt on), a short bound.
    try:
        got = await git.run(["git", "fetch", "--quiet", "--no-tags", check_repo_url(url),
                             f"refs/heads/{check_branch(branch)}"], timeout=30,
                            env={"GIT_TERMINAL_PROMPT": "0"})
    except CommandTimeout:
        return "absent"  # an unreachable origin must not keep a local worker down
    if not got.ok:
        return "absent"
    merged = await git.run(["git", "merge", "--quiet", "--ff-only", "FETCH_HEAD"])
    return "current" if merged.ok else "diverged"


async def push_branch(path: Path, branch: str, url: str) -> None:
    """Push the worktree's branch to `url` (never forced): a worker leaving this machine
    must find every commit on the host it moves to. Raises WorktreeError."""
    git = LocalRunner(cwd=str(path))
    pushed = await git.run(["git", "push", "--quiet", check_repo_url(url),
                            f"HEAD:refs/heads/{check_branch(branch)}"], timeout=300)
    _raise_for(pushed, f"cannot push {branch} to {redact_credentials(url)}")


async def default_branch(root: Path) -> str:
    """The branch new worker branches start from: the checked-out branch of the project."""
    git = LocalRunner(cwd=str(root))
    head = await git.run(["git", "symbolic-ref", "--quiet", "--short", "HEAD"])
    if head.ok and head.stdout.strip():
        return head.stdout.strip()
    commit = await git.run(["git", "rev-parse", "--verify", "HEAD"])
    _raise_for(commit, f"{root} has no commit to start worker branches from")
    return commit.stdout.strip()


async def _exclude_fleet_files(root: Path) -> None:
    git = LocalRunner(cwd=str(root))
    found = await git.run(["git", "rev-parse", "--git-common-dir"])
    _raise_for(found, f"{root} is not a git repository (run `git init` and commit once)")
    exclude = (root / found.stdout.strip() / "info" / "exclude").resolve()
    text = exclude.read_text() if exclude.exists() else ""
    missing = [line for line in _EXCLUDES if line not in text.splitlines()]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as f:
            f.write(("" if text.endswith("\n") or not text else "\n") + "\n".join(missing) + "\n")


def _raise_for(result: CommandResult, what: str) -> None:
    if not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise WorktreeError(f"{what}: {detail[-1] if detail else 'git failed'}")
