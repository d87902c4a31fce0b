"""Docs cannot drift: every command example in docs/*.md and README.md is run here, or
says why it is not.

The convention (fenced code blocks; the first word of the info string is the language,
which is all a Markdown renderer looks at):

- ```` ```console ```` blocks are run. Each line starting with `$ ` is a command (run by
  bash); the lines after it, up to the next `$ ` line, are its expected output (stdout
  and stderr as a terminal would show them, trailing spaces ignored; a line `...`
  stands for any number of lines). A command with no output lines shown must merely
  succeed; `[exit N]` as the last output line expects exit status N.
  Where they run: by default in a scratch copy of `examples/quickstart` made a git
  repository (a private tmux server, a scratch HOME, our `czarina` first on PATH).
  Words after `console` change that: `project=repo` runs in this repository's root
  (for commands that only read it), `started` runs `czarina controller run --once`
  first so the example's workers are running.
- ```` ```bash ````, ```` ```sh ````, ```` ```shell ```` blocks are not run, and must say
  why in their info string: ```` ```bash no-run: needs AWS credentials ````.
- Other languages (json, python, markdown, toml, text, no language) are not commands;
  the config and hopper examples among them are loaded by tests/test_config_docs.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)
SHELLS = {"bash", "sh", "shell", "zsh"}
EXIT = re.compile(r"^\[exit (\d+)\]$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    words: tuple[str, ...]
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            info = m.group("info").split()
            body = "\n".join(line.removeprefix(m.group("indent"))
                             for line in m.group("body").splitlines())
            found.append(Block(page, text.count("\n", 0, m.start()) + 1,
                               info[0] if info else "", tuple(info[1:]), body))
    return found


CONSOLE = [b for b in blocks() if b.lang == "console"]


def test_every_shell_block_is_run_or_says_why_not() -> None:
    unmarked = [b.where for b in blocks() if b.lang in SHELLS
                and not (b.words and b.words[0] == "no-run:" and len(b.words) > 1)]
    assert not unmarked, ("shell blocks that are neither run (```console) nor marked "
                          f"```bash no-run: <why>: {unmarked}")
    assert CONSOLE, "no runnable examples found"


def commands(body: str) -> list[tuple[str, list[str]]]:
    """[(command, expected output lines)] of a console block."""
    out: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line.rstrip())
        elif line.strip():
            raise AssertionError(f"text before the first `$ ` command: {line!r}")
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", root)
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CZARINA_")}
    env.update(HOME=str(tmp_path / "home"), CZARINA_TMUX_SOCKET=f"czt-{uuid.uuid4().hex[:8]}",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               GIT_AUTHOR_NAME="docs", GIT_AUTHOR_EMAIL="docs@example.invalid",
               GIT_COMMITTER_NAME="docs", GIT_COMMITTER_EMAIL="docs@example.invalid",
               STAND_IN_INTERVAL="1")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "qs"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    try:
        yield root, env
    finally:
        subprocess.run(["czarina", "controller", "run", "--once", "--stop-all"], cwd=root,
                       env=env, capture_output=True, timeout=120)
        subprocess.run(["tmux", "-L", env["CZARINA_TMUX_SOCKET"], "kill-server"],
                       capture_output=True)


@pytest.mark.parametrize("block", CONSOLE, ids=[b.where for b in CONSOLE])
def test_console_example_runs_as_shown(block: Block, scratch: tuple[Path, dict[str, str]]
                                       ) -> None:
    root, env = scratch
    cwd = REPO if "project=repo" in block.words else root
    if "started" in block.words:
        r = subprocess.run(["czarina", "controller", "run", "--once"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    for command, expected in commands(block.body):
        want_exit = 0
        if expected and EXIT.match(expected[-1]):
            want_exit = int(EXIT.match(expected[-1]).group(1))  # type: ignore[union-attr]
            expected = expected[:-1]
        log = root.parent / "example.log"  # a file: a tmux server started may hold a pipe
        with log.open("w") as out:
            code = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=180).returncode
        text = log.read_text()
        shown = [line.rstrip() for line in text.rstrip("\n").splitlines()]
        assert code == want_exit, f"{block.where}: `{command}` exited {code}:\n{text}"
        if expected:
            assert matches(expected, shown), (
                f"{block.where}: `{command}` printed\n" + "\n".join(shown)
                + "\nbut the page shows\n" + "\n".join(expected))


def test_matcher() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["..."], [])
    assert not matches(["a", "d"], ["a", "b", "d"])
    assert not matches(["a"], ["a", "b"])


def test_quick_start_demo_runs(tmp_path: Path) -> None:
    """README's first quick-start command (the second, scripts/test.sh, is this suite)."""
    work = tmp_path / "demo"
    work.mkdir()
    socket = f"czt-{uuid.uuid4().hex[:8]}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CZARINA_")},
           "CZARINA_DEMO_SECONDS": "6", "CZARINA_DEMO_DIR": str(work),
           "CZARINA_TMUX_SOCKET": socket, "STAND_IN_INTERVAL": "1"}
    log = tmp_path / "demo.log"  # a file, not a pipe: tmux's server must not hold our end
    try:
        with log.open("w") as out:
            code = subprocess.run([str(REPO / "scripts" / "demo.sh")], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=600).returncode
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    text = log.read_text()
    assert code == 0, text
    status = text.split("== czarina status", 1)[1]
    assert re.search(r"backend\s+\S\s+(working|idle)", status), status
    assert re.search(r"docs\s+\S\s+(working|idle)", status), status
    assert f"The demo project is in {work}" in text
    assert "Traceback" not in text


def test_simulator_page_example_reports_what_the_page_says(tmp_path: Path) -> None:
    """docs/simulator.md's runnable trace, and the figures its text quotes."""
    import json

    page = (REPO / "docs" / "simulator.md").read_text()
    [trace] = [b for b in blocks() if b.page.name == "simulator.md" and b.lang == "json"]
    (tmp_path / "trace.json").write_text(trace.body)
    r = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "simulate",
                        "trace.json", "--json"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    start, scale = report["convergence"]
    assert start["converged_after_s"] == scale["converged_after_s"] == 90  # "90 s"
    assert "the first two workers run after 90 s" in page
    assert "the other two run 90 s later" in page
    [taken] = report["interruptions"]
    assert taken["at_s"] == 1800 and sorted(taken["workers"]) == ["w1", "w2"]
    assert taken["recovery_s"] == 90 and "both run again on a new host 90 s later" in page
    assert report["cost"]["peak_rate_per_hour"] <= 0.10
    assert f"about ${report['cost']['per_worker_hour_usd']:.4f}" in page
