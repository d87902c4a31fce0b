"""The fleet identity: made once, kept, never a display name, never overwritten."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from czarina_fleet.config.identity import FLEET_ID, fleet_identity, identity_path
from czarina_fleet.errors import UserError


def test_made_once_and_kept(tmp_path: Path) -> None:
    first = fleet_identity(tmp_path)
    assert FLEET_ID.match(first)
    assert identity_path(tmp_path).read_text().strip() == first
    assert fleet_identity(tmp_path) == first


def test_two_projects_get_different_ids(tmp_path: Path) -> None:
    assert fleet_identity(tmp_path / "a") != fleet_identity(tmp_path / "b")


def _make(path: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(fleet_identity(Path(path)))


def test_concurrent_first_uses_agree(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_make, args=(str(tmp_path), out)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    ids = {out.get() for _ in procs}
    assert ids == {fleet_identity(tmp_path)}
    assert [p.name for p in identity_path(tmp_path).parent.iterdir()] == ["fleet-id"]


def test_a_damaged_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    identity_path(tmp_path).parent.mkdir(parents=True)
    identity_path(tmp_path).write_text("My Fleet!\n")
    with pytest.raises(UserError) as e:
        fleet_identity(tmp_path)
    assert str(identity_path(tmp_path)) in str(e.value)
    assert "restore" in str(e.value)
    assert identity_path(tmp_path).read_text() == "My Fleet!\n"  # never overwritten
