"""Which repository remote hosts clone, and whether they can.

By default it is what the user already has: the project's `origin` remote (its fetch
URL to clone, its push URL for the checkpoints and branch pushes). `fleet.repository_url`
(config.json) or `FLEET_REPOSITORY_URL` (config.sh) names another; then
`fleet.repository_push_url` / `FLEET_REPOSITORY_PUSH_URL` may give its push URL.

`repository_for(cfg)` asks git (`git remote get-url`, so `insteadOf` rewrites apply);
`clone_problems(cfg, repo)` says, per worker placed away from this machine, why it
cannot start (no URL; a local path that does not exist, or that cloud hosts cannot see)
or when it can only if the host shares this machine's filesystem.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from czarina_fleet.errors import MissingTool, redact_credentials
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.model.location import CloudLocation, PoolLocation, RemoteLocation

# Providers whose hosts run on this machine and see its filesystem (lab: namespaces).
SAME_MACHINE_PROVIDERS = frozenset({"lab", "fake", "local"})
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:(?!//)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
URL_SETTING = {"json": "fleet.repository_url", "shell": "FLEET_REPOSITORY_URL"}


@dataclass(frozen=True, slots=True)
class Repository:
    fetch_url: str | None   # what hosts clone (None: nothing to clone)
    push_url: str | None    # where their pushes go (None: the fetch URL)
    source: str             # where the URL came from, for messages

    @property
    def shown(self) -> str:
        """The URL for people: a token in it is never shown."""
        return redact_credentials(self.fetch_url) if self.fetch_url else "none"


def repository_for(cfg: FleetConfig) -> Repository:
    """The configured URL, else the project's origin remote (made absolute when it is a
    relative path), else no URL, with the reason in `source`."""
    setting = URL_SETTING[cfg.format]
    if cfg.fleet.repository_url:
        return Repository(cfg.fleet.repository_url, cfg.fleet.repository_push_url, setting)
    root = Path(cfg.project_root)
    if shutil.which("git") is None:
        return Repository(None, None, f"git is not installed here, so the origin remote of "
                          f"{root} cannot be read; {MissingTool('git').install_hint}")
    fetch = _git_remote_url(root, push=False)
    if fetch is None:
        return Repository(None, None, f"no {setting} and no origin remote in {root}")
    push = _git_remote_url(root, push=True)
    return Repository(_absolute(fetch, root), _absolute(push, root) if push else None,
                      f"origin remote of {root}")


def _git_remote_url(root: Path, *, push: bool) -> str | None:
    argv = ["git", "-C", str(root), "remote", "get-url", *(["--push"] if push else []),
            "origin"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):  # no git here: then no origin either
        return None
    url = done.stdout.strip()
    return url if done.returncode == 0 and url else None


def is_local_path(url: str) -> bool:
    """A path or file:// URL (what only machines seeing this filesystem can clone)."""
    if url.lower().startswith("file://"):
        return True
    return not _SCHEME.match(url) and not _SCP_LIKE.match(url)


def local_path(url: str) -> Path:
    return Path(url[len("file://"):] if url.lower().startswith("file://") else url)


def _absolute(url: str, root: Path) -> str:
    if is_local_path(url) and not url.lower().startswith("file://"):
        path = Path(url).expanduser()
        return str(path if path.is_absolute() else (root / path).resolve())
    return url


def placements(cfg: FleetConfig) -> dict[str, str]:
    """Worker id -> the provider of the hosts its configured location names (static for
    remote:, the pool's provider, the cloud of a cloud shape); local, auto and k8s
    workers are left out (auto may stay on this machine)."""
    providers = {p.name: p.provider for p in cfg.fleet.pools}
    placed: dict[str, str] = {}
    for w in cfg.workers:
        loc = w.location
        if isinstance(loc, RemoteLocation):
            placed[w.id] = "static"
        elif isinstance(loc, PoolLocation) and loc.pool in providers:
            placed[w.id] = providers[loc.pool]
        elif isinstance(loc, CloudLocation):
            placed[w.id] = loc.cloud
    return placed


def clone_problems(cfg: FleetConfig, repo: Repository) -> tuple[list[str], list[str]]:
    """(cannot start, may not start) messages for the workers placed away from this
    machine (see `placements`)."""
    placed = placements(cfg)
    setting = URL_SETTING[cfg.format]
    blocked: list[str] = []
    notes: list[str] = []
    if not placed:
        return blocked, notes
    names = ", ".join(sorted(placed))
    if repo.fetch_url is None:
        blocked.append(
            f"workers {names} cannot start: remote hosts need a repository to clone and "
            f"there is none ({repo.source}); add the remote (git remote add origin URL) "
            f"or set {setting}")
        return blocked, notes
    if not is_local_path(repo.fetch_url):
        return blocked, notes
    path = local_path(repo.fetch_url)
    if not path.exists():
        blocked.append(f"workers {names} cannot start: the repository to clone, {path} "
                       f"({repo.source}), does not exist; fix the origin remote or {setting}")
        return blocked, notes
    far = sorted(w for w, p in placed.items() if p not in SAME_MACHINE_PROVIDERS
                 and p != "static")
    static = sorted(w for w, p in placed.items() if p == "static")
    fix = f"set {setting} to a URL they can reach (ssh://... or https://...)"
    if far:
        blocked.append(f"workers {', '.join(far)} cannot start: the repository is the local "
                       f"path {path} ({repo.source}), which cloud hosts cannot reach; {fix}")
    if static:
        notes.append(f"workers {', '.join(static)} clone the local path {path} "
                     f"({repo.source}): this works only where their hosts see that path "
                     f"(this machine, a shared filesystem); `czarina doctor` checks it; "
                     f"otherwise {fix}")
    return blocked, notes
