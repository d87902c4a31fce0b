"""`czarina controller run --for`: on a terminal (a real pseudo-terminal here) a live view
of workers, hosts, the last step and the time left; into a pipe, plain log lines."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path / "qs"
    shutil.copytree(REPO / "examples" / "quickstart", root)
    env = {**os.environ, "CZARINA_TMUX_SOCKET": f"czt-{uuid.uuid4().hex[:8]}",
           "STAND_IN_INTERVAL": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x.invalid",
           "COLUMNS": "120", "LINES": "60"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "qs"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    try:
        yield root, env
    finally:
        subprocess.run(["tmux", "-L", env["CZARINA_TMUX_SOCKET"], "kill-server"],
                       capture_output=True)


def run_on_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=child, stdout=child, stderr=child)
    os.close(child)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=60), ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def test_live_view_on_a_terminal_plain_logs_in_a_pipe(
        quickstart: tuple[Path, dict[str, str]]) -> None:
    root, env = quickstart
    czarina = [sys.executable, "-m", "czarina_fleet.cli.main"]
    code, screen = run_on_terminal([*czarina, "controller", "run", "--interval", "1",
                                    "--for", "5"], root, env)
    assert code == 0, screen
    assert "czarina controller run: fleet quickstart" in screen
    assert re.search(r"stops in [0-5]s", screen)
    assert re.search(r"backend\s+\S\s+running\s+\S\s+local", screen)  # the workers table
    assert re.search(r"local\s+\S\s+local\s+\S\s+ready\s+\S\s+2/", screen)  # the hosts table
    assert re.search(r"last step: \d+ actions, 0 failed", screen)
    assert "INFO plan: start worker backend on local" in screen  # log lines in the view
    assert "Traceback" not in screen

    piped = subprocess.run([*czarina, "controller", "run", "--interval", "1", "--for", "2"],
                           cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0
    assert "INFO czarina_fleet.controller: reconciled" in piped.stderr
    assert "stops in" not in piped.stdout + piped.stderr
    assert "\x1b[" not in piped.stdout + piped.stderr
