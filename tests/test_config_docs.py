"""The examples in docs/config.md load as documented."""

from __future__ import annotations

import re
from pathlib import Path

from czarina_fleet.config import load_config
from czarina_fleet.model.location import AutoLocation, CloudLocation, RemoteLocation

DOC = Path(__file__).parent.parent / "docs" / "config.md"


def block(lang: str) -> str:
    [text] = re.findall(rf"```{lang}[^\n]*\n(.*?)```", DOC.read_text(), re.S)
    return text


def test_json_example_loads(tmp_path: Path) -> None:
    (tmp_path / ".czarina").mkdir()
    path = tmp_path / ".czarina" / "config.json"
    path.write_text(block("json"))
    cfg = load_config(path, ssh_config=tmp_path / "none")
    assert [w.id for w in cfg.workers] == ["architect", "ml", "backend", "qa", "ui"]
    assert cfg.worker("ml").location == RemoteLocation(host="gpu-server")  # type: ignore[union-attr]
    assert cfg.fleet.scaling.max_workers == 6 and cfg.fleet.pools[0].name == "spot-east"
    moves = cfg.fleet.rebalance
    assert (moves.load_high, moves.load_low, moves.worker_minute_usd) == (2.0, 1.2, 0.25)
    assert moves.consolidate and moves.max_moves_in_flight == 1  # the documented defaults
    assert cfg.project_root == tmp_path


def test_shell_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.sh"
    path.write_text(block("bash"))
    cfg = load_config(path, ssh_config=tmp_path / "none")
    assert [w.id for w in cfg.workers] == ["architect", "backend", "ml", "direct", "qa", "spot"]
    assert cfg.worker("qa").location == AutoLocation()  # type: ignore[union-attr]
    assert cfg.worker("direct").location == RemoteLocation(  # type: ignore[union-attr]
        host="2001:db8::1", user="ml", port=2222)
    assert isinstance(cfg.worker("spot").location, CloudLocation)  # type: ignore[union-attr]
    assert cfg.prompts_dir == tmp_path / "prompts"
    assert cfg.fleet.scaling.auto_scale and cfg.fleet.scaling.min_workers == 3
    assert [h.name for h in cfg.fleet.hosts] == ["build-server-1", "gpu-server"]


def test_hopper_example_reads_as_documented(tmp_path: Path) -> None:
    from czarina_fleet.hopper import read_hopper

    (tmp_path / "101.md").write_text(block("markdown"))
    (tmp_path / "archived").mkdir()
    (tmp_path / "archived" / "old.md").write_text("# Old\n")
    [item] = read_hopper(tmp_path).items
    assert item.title == "Enhancement #101: Fix Dashboard Refresh Bug"
    assert (item.priority, item.complexity, item.tags) == ("High", "Small", ("bugfix", "ux"))
    assert item.estimate_hours == (2.0, 4.0) and item.status == "Ready"
    assert item.assigned_to is None and item.waiting
