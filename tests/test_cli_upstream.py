"""czarina-fleet beside upstream Czarina: the installed `czarina` and `czarina-fleet`
console scripts, run as processes with a fake upstream `czarina` (a shell script that
records its arguments) on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # the venv's bin: our console scripts
REPO = Path(__file__).resolve().parents[1]

FAKE_UPSTREAM = """#!/bin/sh
printf '%s\\n' "$@" > "$UPSTREAM_LOG"
exit 7
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    for name in ("czarina", "czarina-fleet"):
        assert (BIN / name).is_file(), f"{name} console script missing: run scripts/setup.sh"
    upstream = tmp_path / "upstream-bin"
    upstream.mkdir()
    script = upstream / "czarina"
    script.write_text(FAKE_UPSTREAM)
    script.chmod(0o755)
    ours = tmp_path / "our-bin"  # only our two commands, so PATH order is explicit
    ours.mkdir()
    for name in ("czarina", "czarina-fleet"):
        (ours / name).symlink_to(BIN / name)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CZARINA_")}
    return {**base, "UPSTREAM_LOG": str(tmp_path / "upstream.log"),
            "OURS": str(ours), "UPSTREAM": str(upstream),
            "PATH": f"{ours}:{upstream}:/usr/bin:/bin"}


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, cwd=REPO / "examples" / "quickstart",
                          capture_output=True, text=True, timeout=60)


def upstream_saw(env: dict[str, str]) -> list[str] | None:
    log = Path(env["UPSTREAM_LOG"])
    return log.read_text().splitlines() if log.exists() else None


def test_upstream_verbs_go_to_upstream_with_all_arguments(env: dict[str, str]) -> None:
    r = run(env, "czarina", "launch", "my project", "--flag")
    assert r.returncode == 7, r.stderr  # upstream's own exit status
    assert upstream_saw(env) == ["launch", "my project", "--flag"]


def test_global_options_before_an_upstream_verb_are_passed_on(env: dict[str, str]) -> None:
    r = run(env, "czarina", "--config", "x.json", "daemon", "start")
    assert r.returncode == 7
    assert upstream_saw(env) == ["--config", "x.json", "daemon", "start"]


def test_our_verbs_and_overlapping_verbs_stay_ours(env: dict[str, str]) -> None:
    r = run(env, "czarina", "config", "check", "--json")
    assert r.returncode == 0, r.stderr
    assert '"workers"' in r.stdout
    r = run(env, "czarina", "--version")
    assert r.stdout.startswith("czarina-fleet ")
    assert upstream_saw(env) is None


def test_czarina_fleet_never_forwards(env: dict[str, str]) -> None:
    r = run(env, "czarina-fleet", "launch")
    assert r.returncode == 2
    assert "invalid choice: 'launch'" in r.stderr
    assert upstream_saw(env) is None
    assert run(env, "czarina-fleet", "config", "check").returncode == 0


def test_upstream_first_on_path_is_untouched(env: dict[str, str]) -> None:
    env = {**env, "PATH": f"{env['UPSTREAM']}:{env['OURS']}:/usr/bin:/bin"}
    assert run(env, "czarina", "status").returncode == 7
    assert upstream_saw(env) == ["status"]
    assert run(env, "czarina-fleet", "config", "check").returncode == 0


def test_another_czarina_fleet_install_is_not_taken_for_upstream(
        env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "other-venv-bin"
    other.mkdir()
    shutil.copy(BIN / "czarina", other / "czarina")  # pip's wrapper, another venv
    env = {**env, "PATH": f"{env['OURS']}:{other}:{env['UPSTREAM']}:/usr/bin:/bin"}
    assert run(env, "czarina", "closeout").returncode == 7
    assert upstream_saw(env) == ["closeout"]


def test_no_upstream_is_a_clear_error(env: dict[str, str]) -> None:
    env = {**env, "PATH": f"{env['OURS']}:/usr/bin:/bin"}
    r = run(env, "czarina", "launch")
    assert r.returncode == 2
    assert '"launch" is not a czarina-fleet verb' in r.stderr
    assert "CZARINA_UPSTREAM" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_wrapper_that_leads_back_to_us_is_a_loop_error(
        env: dict[str, str], tmp_path: Path) -> None:
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec {env["OURS"]}/czarina "$@"\n')
    wrapper.chmod(0o755)
    r = run({**env, "CZARINA_UPSTREAM": str(wrapper)}, "czarina", "launch")
    assert r.returncode == 2
    assert "loop" in r.stderr


def test_upstream_may_call_czarina_again_as_a_child(env: dict[str, str], tmp_path: Path) -> None:
    # Upstream's own scripts run `czarina launch` as child processes: each is forwarded.
    script = Path(env["UPSTREAM"]) / "czarina"
    script.write_text('#!/bin/sh\nif [ "$1" = outer ]; then czarina inner; exit $?; fi\n'
                      'printf "%s\\n" "$@" > "$UPSTREAM_LOG"\nexit 7\n')
    r = run(env, "czarina", "outer")
    assert r.returncode == 7, r.stderr
    assert upstream_saw(env) == ["inner"]
