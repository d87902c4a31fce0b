"""Host bootstrap: check the host has what workers need, and prepare a worker's checkout.

Both steps are fixed POSIX sh scripts whose inputs (work directory, repository URL,
worker id, branches) arrive as positional arguments after validation, never spliced
into the script text.

Checkout layout on a host (deterministic, so a restarted controller finds it again):

    <work_dir>/<fleet-id>/<repo>.git          one bare clone per repository and fleet
    <work_dir>/<fleet-id>/<repo>/<worker-id>  one git worktree per worker, on its branch

The fleet's identity in the path (`fleet_dir`, which callers pass as the work
directory) keeps two fleets sharing a host and a work directory out of each other's
clones (same repository, same worker ids); the clone also carries it as `git config
czarina.fleet`, and a clone marked for another fleet is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from czarina_fleet.errors import FleetError
from czarina_fleet.remote.runner import CommandRunner
from czarina_fleet.remote.tmux import RemoteOperationError
from czarina_fleet.remote.validate import (
    check_branch,
    check_path,
    check_repo_url,
    check_socket_name,
    check_worker_id,
    repo_name,
)

PREFLIGHT_TIMEOUT = 30.0
CHECKOUT_TIMEOUT = 600.0
MIN_GIT = (2, 20)
MIN_TMUX = (3, 0)
MIN_FREE_MB = 500

INSTALL_HINT = (
    "install it with your package manager (Debian/Ubuntu: sudo apt-get install -y git tmux; "
    "Fedora/RHEL: sudo dnf install -y git tmux; macOS: brew install git tmux)"
)

PREFLIGHT_SCRIPT = r"""
wd=$1
case $wd in "~") wd=$HOME ;; "~/"*) wd=$HOME/${wd#"~/"} ;; esac
printf 'workdir\t%s\n' "$wd"
printf 'git\t%s\n' "$(git --version 2>/dev/null)"
printf 'tmux\t%s\n' "$(tmux -V 2>/dev/null)"
if mkdir -p -- "$wd" 2>/dev/null && probe=$(mktemp "$wd/.czarina-write.XXXXXX" 2>/dev/null); then
  rm -f -- "$probe"; printf 'writable\tyes\n'
else
  printf 'writable\tno\n'
fi
printf 'free_kb\t%s\n' "$(df -Pk -- "$wd" 2>/dev/null | awk 'NR==2 {print $4}')"
exit 0
"""


class PreflightError(FleetError):
    """The host lacks something workers need; the message says what to install or fix."""


@dataclass(frozen=True, slots=True)
class Preflight:
    host_id: str
    work_dir: str                      # absolute, as the host resolved it
    git_version: str | None
    tmux_version: str | None
    writable: bool
    free_mb: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def preflight(
    runner: CommandRunner, work_dir: str, *, strict: bool = True
) -> Preflight:
    """Check git, tmux, the work directory and free disk on the host in one command.

    With `strict` (the default) raises PreflightError naming the host and every problem
    with its fix; otherwise returns the Preflight with `problems` filled in. Raises
    HostUnreachable / CommandTimeout when the host cannot be reached."""
    check_path(work_dir, "work directory")
    result = await runner.run(
        ["sh", "-c", PREFLIGHT_SCRIPT, "czarina-preflight", work_dir], timeout=PREFLIGHT_TIMEOUT
    )
    if not result.ok:
        raise RemoteOperationError(runner.host_id, "preflight check failed", result)
    facts = dict(
        line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line
    )
    found = Preflight(
        host_id=runner.host_id,
        work_dir=facts.get("workdir", work_dir),
        git_version=_version(facts.get("git", "")),
        tmux_version=_version(facts.get("tmux", "")),
        writable=facts.get("writable") == "yes",
        free_mb=int(facts["free_kb"]) // 1024 if facts.get("free_kb", "").isdigit() else None,
    )
    problems = _problems(found)
    checked = replace(found, problems=problems)
    if strict and problems:
        raise PreflightError(
            f"host {runner.host_id} is not ready for workers:\n  - " + "\n  - ".join(problems)
        )
    return checked


def _version(text: str) -> str | None:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return match.group(0) if match else None


def _tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _problems(p: Preflight) -> list[str]:
    problems: list[str] = []
    for tool, version, minimum in (("git", p.git_version, MIN_GIT),
                                   ("tmux", p.tmux_version, MIN_TMUX)):
        need = ".".join(map(str, minimum))
        if version is None:
            problems.append(f"{tool} is not installed (or not on PATH): {INSTALL_HINT}")
        elif _tuple(version)[:2] < minimum:
            problems.append(f"{tool} {version} is too old (need {need} or newer): {INSTALL_HINT}")
    if not p.writable:
        problems.append(f"work directory {p.work_dir} is not writable by this user: "
                        "create it and give the SSH user write access, or set work_dir")
    if p.free_mb is not None and p.free_mb < MIN_FREE_MB:
        problems.append(f"only {p.free_mb} MB free in {p.work_dir} "
                        f"(need {MIN_FREE_MB} MB): free some disk space")
    return problems


def fleet_dir(work_dir: str, owner: str | None) -> str:
    """The fleet's own directory under a host's work directory."""
    base = work_dir.rstrip("/") or "/"
    return base if owner is None else f"{base.rstrip('/')}/{check_socket_name(owner)}"


def checkout_path(work_dir: str, repo_url: str, worker_id: str) -> str:
    """Where a worker's checkout lives on its host (`~` is expanded by the host);
    `work_dir` is the fleet's own directory there (`fleet_dir`)."""
    return f"{work_dir.rstrip('/')}/{repo_name(repo_url)}/{check_worker_id(worker_id)}"


CHECKOUT_SCRIPT = r"""
set -eu
url=$1; wd=$2; name=$3; id=$4; branch=$5; base=$6; fetch=$7; push=${8:-}; owner=${9:-}
case $wd in "~") wd=$HOME ;; "~/"*) wd=$HOME/${wd#"~/"} ;; esac
mkdir -p -- "$wd/$name"
bare=$wd/$name.git
wt=$wd/$name/$id
# Serialize workers of one host on the shared clone: concurrent fetches race on refs.
if command -v flock >/dev/null 2>&1; then exec 9>"$wd/.$name.lock"; flock 9; fi
if [ -n "$owner" ] && [ -f "$bare/HEAD" ]; then
  mark=$(git -C "$bare" config --get czarina.fleet || true)
  if [ -n "$mark" ] && [ "$mark" != "$owner" ]; then
    echo "$bare belongs to fleet $mark, not this one: left untouched" >&2
    exit 4
  fi
fi
if [ "$fetch" = yes ]; then
  if [ ! -f "$bare/HEAD" ]; then
    git init -q --bare -- "$bare"
    git -C "$bare" remote add origin "$url"
  fi
  # pushes (checkpoints, branch pushes) go to the push URL when it differs
  if [ -n "$push" ]; then git -C "$bare" remote set-url --push origin "$push"; fi
  git -C "$bare" fetch -q --prune origin
fi  # else the controller pushed refs/remotes/origin/* here (git_relay.py)
if [ -n "$owner" ]; then git -C "$bare" config czarina.fleet "$owner"; fi
git -C "$bare" worktree prune
if [ ! -e "$wt/.git" ]; then
  if git -C "$bare" rev-parse -q --verify "refs/heads/$branch" >/dev/null; then
    git -C "$bare" worktree add -q "$wt" "$branch"
  elif git -C "$bare" rev-parse -q --verify "refs/remotes/origin/$branch" >/dev/null; then
    git -C "$bare" worktree add -q --track -b "$branch" "$wt" "origin/$branch"
  elif git -C "$bare" rev-parse -q --verify "refs/remotes/origin/$base" >/dev/null; then
    git -C "$bare" worktree add -q --no-track -b "$branch" "$wt" "origin/$base"
  else
    echo "neither branch $branch nor base branch $base exists in $url" >&2
    exit 3
  fi
fi
cur=$(git -C "$wt" symbolic-ref -q --short HEAD || true)
if [ "$cur" != "$branch" ]; then git -C "$wt" checkout -q "$branch"; fi
printf 'checkout\t%s\n' "$wt"
"""


async def prepare_checkout(
    runner: CommandRunner,
    *,
    repo_url: str,
    work_dir: str,
    worker_id: str,
    branch: str,
    base_branch: str,
    fetch: bool = True,
    push_url: str | None = None,
    owner: str | None = None,
) -> str:
    """Clone (or fetch) `repo_url` on the host and give the worker a worktree on `branch`,
    created from `origin/<base_branch>` when it exists neither locally nor remotely.
    An existing worktree is kept as is (its commits are the worker's). With `owner`
    (the fleet id) the clone is marked, and one marked for another fleet refused
    (module docstring). Returns the absolute checkout path. Raises ValueError for
    unsafe inputs and RemoteOperationError when git fails. `fetch=False`: the host
    does not contact origin (the controller has pushed origin's branches into the bare
    clone, see `prepare_bare`)."""
    argv = [
        "sh", "-c", CHECKOUT_SCRIPT, "czarina-checkout",
        check_repo_url(repo_url), check_path(work_dir, "work directory"), repo_name(repo_url),
        check_worker_id(worker_id), check_branch(branch), check_branch(base_branch),
        "yes" if fetch else "no",
        check_repo_url(push_url) if push_url else "",
        owner or "",
    ]
    result = await runner.run(argv, timeout=CHECKOUT_TIMEOUT)
    if not result.ok:
        raise RemoteOperationError(
            runner.host_id, f"could not prepare the checkout of {worker_id} on {branch}", result
        )
    for line in result.stdout.splitlines():
        if line.startswith("checkout\t"):
            return line.split("\t", 1)[1]
    raise RemoteOperationError(runner.host_id, "checkout script gave no path", result)


BARE_SCRIPT = r"""
set -eu
wd=$1; name=$2
case $wd in "~") wd=$HOME ;; "~/"*) wd=$HOME/${wd#"~/"} ;; esac
mkdir -p -- "$wd"
[ -f "$wd/$name.git/HEAD" ] || git init -q --bare -- "$wd/$name.git"
"""


def bare_path(work_dir: str, repo_url: str) -> str:
    """The host's shared bare clone (`~` is expanded by the host)."""
    return f"{work_dir.rstrip('/')}/{repo_name(repo_url)}.git"


async def prepare_bare(runner: CommandRunner, *, repo_url: str, work_dir: str) -> str:
    """Make the host's bare clone, with no remote: the controller fills it
    (git_relay.py). Returns its path as `bare_path` gives it."""
    argv = ["sh", "-c", BARE_SCRIPT, "czarina-bare", check_path(work_dir, "work directory"),
            repo_name(check_repo_url(repo_url))]
    result = await runner.run(argv, timeout=CHECKOUT_TIMEOUT)
    if not result.ok:
        raise RemoteOperationError(runner.host_id, "could not make the bare clone", result)
    return bare_path(work_dir, repo_url)
