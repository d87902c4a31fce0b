"""Git without secrets on hosts: the controller moves the objects itself.

With `fleet.git_transport: "controller"` (and always when `repository_url` carries a
credential) no host ever talks to origin. The controller keeps a bare mirror of origin
(`.czarina/git/<repo>.git`), fetched and pushed with the controller's own git
credentials (your ssh-agent, credential helper or the token in the URL: they stay on
this machine):

- clone/fetch: the controller fetches origin into the mirror, then pushes the mirror's
  branches into the host's bare clone as `refs/remotes/origin/*` over SSH;
- checkpoint/push: the host only commits; the controller fetches the worker's branch
  from the host's bare clone and pushes that exact commit to origin (never forced).

The SSH it runs for hosts is our own: the fleet's key, the host's known_hosts, host keys
checked strictly, nothing forwarded (`SshHost.openssh_args`). The host's clone has no
remote URL, no credential helper and never sees a token or an agent socket.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from pathlib import Path

from czarina_fleet.errors import redact_credentials
from czarina_fleet.remote.branch_save import SaveFailed
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.validate import check_branch, check_path, check_repo_url, repo_name

RELAY_TIMEOUT = 600.0


class RelayFailed(SaveFailed):
    """A git transfer through the controller failed; the message says which and why."""


def carries_credential(url: str) -> bool:
    """True when `url` holds a secret (`https://user:TOKEN@`, `https://TOKEN@`)."""
    return redact_credentials(url) != url


def host_repo_url(host: SshHost, path: str) -> str:
    """`ssh://ADDRESS/PATH` of a repository on a host (`~/x` -> `/~/x`); user, port
    and keys come from the ssh command (GIT_SSH_COMMAND)."""
    check_path(path, "repository path on the host")
    address = f"[{host.address}]" if ":" in host.address else host.address
    where = "/~/" + path[2:] if path.startswith("~/") else path
    return f"ssh://{address}{where if where.startswith('/') else '/' + where}"


class GitRelay:
    """The controller-side mirror of one origin repository."""

    def __init__(self, repo_url: str, directory: Path, timeout: float = RELAY_TIMEOUT) -> None:
        self.repo_url = check_repo_url(repo_url)
        self.mirror = directory / f"{repo_name(repo_url)}.git"
        self.timeout = timeout
        self._lock = asyncio.Lock()  # one git at a time on the mirror

    async def to_host(self, host: SshHost, bare: str) -> None:
        """Fetch origin, then push every branch into the host's bare clone as
        `refs/remotes/origin/<branch>` (what the checkout and catch-up read)."""
        async with self._lock:
            await self._ensure_mirror()
            await self._git("fetch", "-q", "--prune", self.repo_url,
                            "+refs/heads/*:refs/heads/*")
            await self._git("push", "-q", "--force", host_repo_url(host, bare),
                            "refs/heads/*:refs/remotes/origin/*", ssh=host)

    async def to_origin(self, host: SshHost, bare: str, branch: str, head: str) -> None:
        """Fetch `branch` from the host's bare clone and push commit `head` to origin's
        `branch` (fast-forward only: a diverged origin branch is reported)."""
        check_branch(branch)
        if not head or not all(c in "0123456789abcdef" for c in head):
            raise RelayFailed(f"{host.host_id}: no commit to push for {branch}")
        async with self._lock:
            await self._ensure_mirror()
            await self._git("fetch", "-q", host_repo_url(host, bare),
                            f"+refs/heads/{branch}:refs/czarina/{host.host_id}/{branch}",
                            ssh=host)
            await self._git("push", "-q", self.repo_url, f"{head}:refs/heads/{branch}")
            await self._git("update-ref", f"refs/heads/{branch}", head)

    async def _ensure_mirror(self) -> None:
        if not (self.mirror / "HEAD").exists():
            self.mirror.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            await self._git("init", "-q", "--bare", str(self.mirror), cwd=self.mirror.parent)

    async def _git(self, *args: str, ssh: SshHost | None = None,
                   cwd: Path | None = None) -> str:
        env = dict(os.environ)
        if ssh is not None:  # our ssh for hosts; origin uses the user's own git setup
            env["GIT_SSH_COMMAND"] = shlex.join(["ssh", "-o", "BatchMode=yes",
                                                 *ssh.openssh_args()])
            env["GIT_SSH_VARIANT"] = "ssh"
        argv = ["git", *([] if cwd else ["--git-dir", str(self.mirror)]), *args]
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RelayFailed(f"git {args[0]} timed out after {self.timeout:.0f}s") from None
        if proc.returncode != 0:
            where = f" ({ssh.host_id})" if ssh is not None else ""
            why = err.decode(errors="replace").strip()[-400:] or f"exit {proc.returncode}"
            raise RelayFailed(redact_credentials(f"git {args[0]}{where} failed: {why}"))
        return out.decode(errors="replace")
