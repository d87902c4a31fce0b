"""Saving a worker's work where it survives its host: commit what is uncommitted (a
checkpoint) and push the branch to the fleet's origin.

One fixed POSIX sh script does both, in one round trip; the checkout directory, branch
and commit message arrive as positional arguments, never spliced into the script text.
It pushes the exact commit it resolved (`<hash>:refs/heads/<branch>`), so the hash it
reports is the one origin now has, even if the agent commits again meanwhile. It never
forces: a branch that diverged on origin is reported, not overwritten.

At most one save runs per worker at a time (the push job and a checkpoint before a move
could otherwise race on the same ref).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from czarina_fleet.errors import FleetError, redact_credentials
from czarina_fleet.remote.runner import CommandRunner
from czarina_fleet.remote.validate import check_branch, check_path

SAVE_TIMEOUT = 120.0

SAVE_SCRIPT = r"""
set -eu
commit=$1; push=$2; dir=$3; branch=$4; msg=$5
case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
cd -- "$dir"
if [ "$commit" = yes ]; then
  git add -A
  if ! git diff --cached --quiet; then
    git -c user.name=czarina-fleet -c user.email=fleet@czarina.invalid \
        commit -q --no-verify -m "$msg"
    printf 'committed\n'
  fi
fi
head=$(git rev-parse --verify HEAD)
if [ "$push" = yes ]; then
  git push -q origin "$head:refs/heads/$branch"
  # Tracking origin's branch lets the probe count what is not pushed yet (branch.ab).
  git rev-parse -q --verify '@{upstream}' >/dev/null 2>&1 ||
    git branch -q --set-upstream-to="origin/$branch" 2>/dev/null || true
fi
printf 'head\t%s\n' "$head"
"""

CATCH_UP_SCRIPT = r"""
dir=$1; branch=$2
case $dir in "~") dir=$HOME ;; "~/"*) dir=$HOME/${dir#"~/"} ;; esac
cd -- "$dir" || exit 0
git rev-parse -q --verify "refs/remotes/origin/$branch" >/dev/null || exit 0
git merge -q --ff-only "refs/remotes/origin/$branch" >/dev/null 2>&1 || echo diverged
git rev-parse --verify HEAD
"""


class SaveFailed(FleetError):
    """A commit or push of a worker's branch failed; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Saved:
    head: str          # the commit the branch points at (on origin, if pushed)
    committed: bool    # a checkpoint commit was made of uncommitted work
    pushed: bool


class BranchSaver:
    def __init__(self, timeout: float = SAVE_TIMEOUT) -> None:
        self.timeout = timeout
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def save(self, runner: CommandRunner, checkout: str, branch: str, *,
                   commit_message: str | None, push: bool) -> Saved:
        """Commit uncommitted work (when `commit_message` is given) and push the branch
        (when `push`). Raises SaveFailed (git failed, e.g. a non-fast-forward push) or
        HostUnreachable / CommandTimeout."""
        argv = ["sh", "-c", SAVE_SCRIPT, "czarina-save",
                "yes" if commit_message is not None else "no", "yes" if push else "no",
                check_path(checkout, "checkout directory"), check_branch(branch),
                commit_message or ""]
        lock = self._locks.setdefault((runner.host_id, checkout), asyncio.Lock())
        async with lock:
            result = await runner.run(argv, timeout=self.timeout)
        if not result.ok:
            what = "push" if push else "commit"
            why = result.stderr.strip()[-400:] or f"exit {result.exit_status}"
            raise SaveFailed(redact_credentials(
                f"{runner.host_id}: could not {what} {branch} from {checkout}: {why}"))
        lines = result.stdout.splitlines()
        head = next((ln.split("\t", 1)[1] for ln in lines if ln.startswith("head\t")), "")
        return Saved(head=head, committed="committed" in lines, pushed=push)


async def catch_up(runner: CommandRunner, checkout: str, branch: str) -> str | None:
    """Fast-forward a reused checkout to `origin/<branch>` (already fetched), so a worker
    that comes back to a host it ran on before resumes from everything pushed since.
    Never merges or discards: a diverged branch is left as is. Returns HEAD (None when
    there is no origin branch yet)."""
    argv = ["sh", "-c", CATCH_UP_SCRIPT, "czarina-catch-up",
            check_path(checkout, "checkout directory"), check_branch(branch)]
    result = await runner.run(argv, timeout=SAVE_TIMEOUT)
    lines = [ln for ln in result.stdout.splitlines() if ln and ln != "diverged"]
    return lines[-1] if result.ok and lines else None
