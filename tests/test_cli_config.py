"""`czarina config check` and the CLI's exit codes, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent / "data" / "upstream"  # upstream Czarina's files (MIT)
REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"


def czarina(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "czarina_fleet.cli.main", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, "HOME": str(cwd)},
    )


def test_config_check_json_lists_workers_as_structured_fields() -> None:
    r = czarina("config", "check", "--json", cwd=QUICKSTART)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [w["id"] for w in data["workers"]] == ["backend", "docs"]
    backend = data["workers"][0]
    assert backend["branch"] == "feat/quickstart-backend"
    assert backend["location"] == "local"
    assert backend["task_file"].endswith(".czarina/prompts/backend_TASKS.txt")
    assert Path(backend["task_file"]).is_file()


def test_config_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(
        (QUICKSTART / ".czarina" / "config.json").read_text()
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    r = czarina("config", "check", cwd=sub)
    assert r.returncode == 0, r.stderr
    assert "backend" in r.stdout and "feat/quickstart-docs" in r.stdout


UPSTREAM_CONFIGS = sorted(
    p.name for p in EXAMPLES.iterdir()
    if p.suffix in (".json", ".sh") and p.name != "config-schema.json"
)


@pytest.mark.parametrize("name", UPSTREAM_CONFIGS)
def test_every_upstream_example_checks(name: str, tmp_path: Path) -> None:
    r = czarina("--config", str(EXAMPLES / name), "config", "check", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["workers"], "every example defines workers"


def test_bad_config_exits_2_naming_file_line_and_fix(tmp_path: Path) -> None:
    cfg = tmp_path / "config.sh"
    cfg.write_text(
        'export WORKER_DEFINITIONS=(\n'
        '  "api|feat/api|api.txt|API|local"\n'
        '  "qa|feat/qa|qa.txt|QA|remot:gpu"\n'
        ')\n'
    )
    r = czarina("config", "check", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{cfg}:3" in r.stderr and '"qa"' in r.stderr
    assert 'did you mean "remote:gpu"' in r.stderr


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    r = czarina("status", cwd=tmp_path)
    assert r.returncode == 2
    assert "config" in r.stderr and "Traceback" not in r.stderr


def test_unknown_verb_and_bad_number_are_usage_errors(tmp_path: Path) -> None:
    assert czarina("frobnicate", cwd=tmp_path).returncode == 2
    r = czarina("scale", "--max", "-3", cwd=QUICKSTART)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_config_check_json_never_prints_a_token_in_the_repository_url(tmp_path: Path) -> None:
    data = json.loads((QUICKSTART / ".czarina" / "config.json").read_text())
    data.setdefault("fleet", {})["repository_url"] = (
        "https://x-access-token:ghp_s3cr3tT0ken@github.com/me/demo.git")
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(json.dumps(data))
    r = czarina("config", "check", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ghp_s3cr3tT0ken" not in r.stdout + r.stderr
    shown = json.loads(r.stdout)["fleet"]["repository_url"]
    assert shown == "https://x-access-token:***@github.com/me/demo.git"


def test_config_check_says_the_hopper_driven_timeouts(tmp_path: Path) -> None:
    config = json.loads((QUICKSTART / ".czarina" / "config.json").read_text())
    config["fleet"]["scaling"]["auto_scale"] = True
    (tmp_path / ".czarina").mkdir()
    (tmp_path / ".czarina" / "config.json").write_text(json.dumps(config))
    plain = czarina("config", "check", cwd=tmp_path)
    assert "idle shutdown after 900s, budget" in " ".join(plain.stdout.split())
    (tmp_path / ".czarina" / "hopper").mkdir()
    hopper = " ".join(czarina("config", "check", cwd=tmp_path).stdout.split())
    assert ("idle shutdown after 300s (hopper-driven: a worker without a task file is idle "
            "after 120s without an item)") in hopper
