"""tmux formats and terminal output (issue 15, item 6): `#` in a value tmux expands
never runs a command; text from hosts and agents is shown, never acted on by the
terminal."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from czarina_fleet.cli.render import table
from czarina_fleet.errors import printable
from czarina_fleet.remote.runner import LocalRunner
from czarina_fleet.remote.tmux import start_worker, stop_worker
from czarina_fleet.remote.tmux_target import TmuxTarget


def test_a_hash_in_the_work_directory_runs_nothing(tmp_path: Path, private_tmux: TmuxTarget,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # `czt-pwn` (on the tmux server's PATH) would leave a marker if tmux ran it.
    marker = tmp_path / "PWNED"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "czt-pwn").write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    (bin_dir / "czt-pwn").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    workdir = tmp_path / "c#-proj #(czt-pwn) #{session_name}"
    workdir.mkdir()
    where = tmp_path / "cwd.txt"

    async def scenario() -> None:
        runner = LocalRunner()
        await start_worker(runner, worker_id="w1", workdir=str(workdir),
                           agent_command=f"pwd > '{where}'; sleep 30", task_text=None,
                           tmux=private_tmux)
        for _ in range(100):
            if where.exists() and where.read_text():
                break
            await asyncio.sleep(0.05)
        await stop_worker(runner, "w1", private_tmux)

    asyncio.run(scenario())
    assert not marker.exists()
    assert where.read_text().strip() == str(workdir)  # the literal directory
    assert subprocess.run(["tmux", "-V"], capture_output=True).returncode == 0


def test_printable_strips_what_a_terminal_would_act_on() -> None:
    hostile = ("ok\x1b]52;c;cHduZWQ=\x07 \x1b[2J\x1b[31mred\x1b[0m\x1bc\x9b1m"
               "\u202eevil\u2066\x00\x08\r\x7f tab\tline\n")
    assert printable(hostile) == "ok red1mevil tab\tline\n"
    assert printable("naïve ✓ 日本") == "naïve ✓ 日本"


def test_table_cells_are_text_not_markup_nor_escapes() -> None:
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False).print(table(
        "t", ["Subject"], [["[link=http://x.invalid]fix[/link] \x1b]0;title\x07done"]]))
    shown = out.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown
    assert "[link=http://x.invalid]fix[/link] done" in shown
