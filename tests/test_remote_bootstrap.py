"""Preflight and checkout preparation with real git, via LocalRunner."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from czarina_fleet.remote.bootstrap import (
    PreflightError,
    checkout_path,
    preflight,
    prepare_checkout,
)
from czarina_fleet.remote.runner import CommandResult, LocalRunner
from czarina_fleet.remote.tmux import RemoteOperationError
from tests.fixtures.netns_hosts import git

pytestmark = pytest.mark.timeout(120)


def test_preflight_on_this_machine(tmp_path: Path) -> None:
    found = asyncio.run(preflight(LocalRunner("here"), str(tmp_path / "work")))
    assert found.ok and found.writable
    assert found.git_version and found.tmux_version
    assert found.free_mb is not None and found.free_mb > 0
    assert found.work_dir == str(tmp_path / "work")


class PathRunner(LocalRunner):
    """A LocalRunner whose commands see only the tools linked into one directory."""

    def __init__(self, host_id: str, bin_dir: Path) -> None:
        super().__init__(host_id)
        self.bin_dir = bin_dir

    async def run(self, argv: Sequence[str], **kw: object) -> CommandResult:
        kw["env"] = {"PATH": str(self.bin_dir)}
        return await super().run(argv, **kw)  # type: ignore[arg-type]


def test_preflight_names_host_and_missing_git(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "tmux", "mkdir", "mktemp", "rm", "df", "awk"):
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", bin_dir / tool)
    runner = PathRunner("gpu-1", bin_dir)
    with pytest.raises(PreflightError) as caught:
        asyncio.run(preflight(runner, str(tmp_path / "w")))
    message = str(caught.value)
    assert "gpu-1" in message and "git is not installed" in message
    assert "apt-get install" in message and "tmux" not in message.split("git is")[0]
    lenient = asyncio.run(preflight(runner, str(tmp_path / "w"), strict=False))
    assert not lenient.ok and lenient.git_version is None and lenient.tmux_version


def test_preflight_unwritable_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    found = asyncio.run(preflight(LocalRunner(), str(blocker / "sub"), strict=False))
    assert not found.writable and any("not writable" in p for p in found.problems)


def test_checkout_new_existing_and_again(tmp_path: Path, git_origin: Path) -> None:
    work = tmp_path / "work"
    runner = LocalRunner()

    async def prep(worker: str, branch: str) -> str:
        return await prepare_checkout(runner, repo_url=str(git_origin), work_dir=str(work),
                                      worker_id=worker, branch=branch, base_branch="main")

    new = asyncio.run(prep("w1", "feat/new-one"))
    assert new == str(work / "origin" / "w1") == checkout_path(str(work), str(git_origin), "w1")
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=new) == "feat/new-one"
    assert git("log", "-1", "--format=%s", cwd=new) == "second on main"

    existing = asyncio.run(prep("w2", "feat/existing"))
    assert git("log", "-1", "--format=%s", cwd=existing) == "feature work"

    # a worker's own commit survives a second prepare (a controller restart)
    Path(new, "mine.txt").write_text("m")
    git("add", "mine.txt", cwd=new)
    git("-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "mine", cwd=new)
    assert asyncio.run(prep("w1", "feat/new-one")) == new
    assert git("log", "-1", "--format=%s", cwd=new) == "mine"


def test_concurrent_checkouts_on_one_host(tmp_path: Path, git_origin: Path) -> None:
    runner = LocalRunner()

    async def scenario() -> list[str]:
        return list(await asyncio.gather(*(
            prepare_checkout(runner, repo_url=str(git_origin), work_dir=str(tmp_path / "wd"),
                             worker_id=f"w{i}", branch=f"feat/w{i}", base_branch="main")
            for i in range(4)
        )))

    paths = asyncio.run(scenario())
    assert len(set(paths)) == 4
    for i, path in enumerate(paths):
        assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=path) == f"feat/w{i}"


def test_checkout_with_missing_base_fails_clearly(tmp_path: Path, git_origin: Path) -> None:
    with pytest.raises(RemoteOperationError, match="nor base branch nope"):
        asyncio.run(prepare_checkout(LocalRunner(), repo_url=str(git_origin),
                                     work_dir=str(tmp_path / "wd"), worker_id="w", branch="feat/x",
                                     base_branch="nope"))


@pytest.mark.parametrize("field,value", [
    ("branch", "$(touch MARKER)"), ("branch", "-b"), ("worker_id", "a;touch MARKER"),
    ("repo_url", "--upload-pack=touch MARKER"), ("work_dir", "-x"), ("base_branch", "`id`"),
])
def test_hostile_checkout_inputs_run_nothing(
    tmp_path: Path, git_origin: Path, field: str, value: str
) -> None:
    args = {"repo_url": str(git_origin), "work_dir": str(tmp_path), "worker_id": "w",
            "branch": "feat/x", "base_branch": "main", field: value}
    with pytest.raises(ValueError):
        asyncio.run(prepare_checkout(LocalRunner(cwd=str(tmp_path)), **args))
    assert not (tmp_path / "MARKER").exists()
    assert not (tmp_path / "origin").exists()
