"""The one-round-trip probe against real git checkouts and a real tmux server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from czarina_fleet.remote.probe import probe_argv, probe_host
from czarina_fleet.remote.probe_parse import parse_probe_output
from czarina_fleet.remote.runner import CommandResult, HostUnreachable, LocalRunner
from czarina_fleet.remote.tmux import start_worker
from czarina_fleet.remote.tmux_target import TmuxTarget
from tests.fixtures.netns_hosts import git

pytestmark = pytest.mark.timeout(60)


class CountingRunner(LocalRunner):
    def __init__(self) -> None:
        super().__init__("h1")
        self.calls = 0

    async def run(self, argv: Sequence[str], **kw: object) -> CommandResult:
        self.calls += 1
        return await super().run(argv, **kw)  # type: ignore[arg-type]


def make_checkout(path: Path, subject: str) -> str:
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=path)
    (path / "f").write_text("x\n")
    git("add", "f", cwd=path)
    git("commit", "-q", "-m", subject, cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


def test_probe_reads_every_worker_in_one_command(
    tmp_path: Path, private_tmux: TmuxTarget
) -> None:
    marker = tmp_path / "MARKER"
    dir_a = tmp_path / "a"
    dir_b = tmp_path / f"b $(touch {marker}); `touch {marker}`"
    hash_a = make_checkout(dir_a, "subject\twith tab; $(touch MARKER)")
    make_checkout(dir_b, "b work")
    (dir_b / "new1").write_text("u")
    (dir_b / "f").write_text("changed")
    runner = CountingRunner()
    workers = {"wa": str(dir_a), "wb": str(dir_b), "wc": str(tmp_path / "missing")}

    async def scenario() -> object:
        await start_worker(LocalRunner(), worker_id="wa", workdir=str(dir_a),
                           agent_command="sleep 60", task_text=None, tmux=private_tmux)
        await start_worker(LocalRunner(), worker_id="orphan", workdir=str(tmp_path),
                           agent_command="sleep 60", task_text=None, tmux=private_tmux)
        return await probe_host(runner, "h1", workers, tmux=private_tmux, now=123.0)

    probe = asyncio.run(scenario())
    assert runner.calls == 1
    assert probe.reachable and probe.host_id == "h1" and probe.probed_at == 123.0
    assert probe.cpus is not None and probe.cpus >= 1
    assert probe.load_1m is not None and probe.mem_free_mb is not None and probe.mem_free_mb > 0
    a, b, c = probe.sessions["wa"], probe.sessions["wb"], probe.sessions["wc"]
    assert a.alive and a.pane_activity is not None and a.pane_activity > 1e9
    assert a.last_commit is not None and a.last_commit.hash == hash_a
    assert a.last_commit.subject == "subject\twith tab; $(touch MARKER)"
    assert a.dirty_files == 0
    assert not b.alive and b.dirty_files == 2 and b.last_commit is not None
    assert b.last_commit.subject == "b work"
    assert not c.alive and c.last_commit is None
    # a live session nobody asked about is reported, so the controller can adopt it
    assert probe.sessions["orphan"].alive
    assert not marker.exists()


def test_probe_without_tmux_server_reports_sessions_dead(tmp_path: Path) -> None:
    make_checkout(tmp_path / "a", "one")
    probe = asyncio.run(probe_host(LocalRunner(), "h", {"wa": str(tmp_path / "a")},
                                   tmux=TmuxTarget(socket_name="czt-none-9"), now=1.0))
    assert probe.reachable and not probe.sessions["wa"].alive
    assert probe.sessions["wa"].last_commit is not None


class DownRunner:
    """The network boundary failing: what SshRunner raises for a host that is down."""

    host_id = "down"

    async def run(self, argv: Sequence[str], **kw: object) -> CommandResult:
        raise HostUnreachable("down: connection refused")


def test_unreachable_host_is_reported_not_raised() -> None:
    probe = asyncio.run(probe_host(DownRunner(), "down", {"w": "/x"}, now=5.0))
    assert not probe.reachable and "connection refused" in (probe.error or "")
    assert probe.sessions == {}


def test_probe_times_out_instead_of_hanging(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "tmux").write_text("#!/bin/sh\nexec sleep 30\n")
    (fake_bin / "tmux").chmod(0o755)

    class SlowTmuxRunner(LocalRunner):
        async def run(self, argv: Sequence[str], **kw: object) -> CommandResult:
            kw["env"] = {"PATH": f"{fake_bin}:/usr/bin:/bin"}
            return await super().run(argv, **kw)  # type: ignore[arg-type]

    probe = asyncio.run(probe_host(SlowTmuxRunner("slow"), "slow", {}, now=1.0, timeout=0.5))
    assert not probe.reachable and "timed out" in (probe.error or "")


def test_probe_argv_keeps_values_out_of_the_script() -> None:
    argv = probe_argv({"w1": "/d $(x)"}, TmuxTarget(socket_path="/tmp/s"))
    assert argv[:2] == ["sh", "-c"] and "$(x)" not in argv[2]
    assert argv[3:] == ["czarina-probe", "-S", "/tmp/s", "", "w1", "/d $(x)", ""]
    with pytest.raises(ValueError):
        probe_argv({"w;1": "/d"})


def test_parse_tolerates_garbage() -> None:
    probe = parse_probe_output("h", "H\tx\t\t\nA nope czar-worker-a\nA 5\nW\n", {"a": "/"}, 1.0)
    assert probe.reachable and probe.load_1m is None and probe.cpus is None
    assert probe.sessions["a"].alive is False


def test_commit_cache_skips_git_log_but_sees_new_commits(tmp_path: Path) -> None:
    path = tmp_path / "a"
    first = make_checkout(path, "one")
    cache: dict = {}
    runner = LocalRunner()
    workers = {"wa": str(path)}
    probe1 = asyncio.run(probe_host(runner, "h", workers, now=1.0, commits=cache))
    assert cache["wa"].hash == first and probe1.sessions["wa"].last_commit == cache["wa"]
    argv = probe_argv(workers, known=cache)
    assert argv[-1] == first  # the script is told what we already know
    again = asyncio.run(runner.run(argv))
    assert "\nC\t" not in again.stdout  # unchanged HEAD: no git log ran
    probe2 = asyncio.run(probe_host(runner, "h", workers, now=2.0, commits=cache))
    assert probe2.sessions["wa"].last_commit == probe1.sessions["wa"].last_commit
    (path / "g").write_text("new")
    git("add", "g", cwd=path)
    git("commit", "-q", "-m", "two", cwd=path)
    probe3 = asyncio.run(probe_host(runner, "h", workers, now=3.0, commits=cache))
    commit = probe3.sessions["wa"].last_commit
    assert commit is not None and commit.subject == "two" and cache["wa"] == commit


def test_cpu_use_of_a_workers_processes_is_seen_and_remembered_on_the_host(
    tmp_path: Path, private_tmux: TmuxTarget
) -> None:
    """A worker that prints nothing but computes (a build, a test run) is not idle: the
    probe sums its pane session's CPU ticks and keeps, in the checkout's git directory,
    when they last grew by more than 5% of a CPU."""
    busy, quiet = tmp_path / "busy", tmp_path / "quiet"
    make_checkout(busy, "b")
    make_checkout(quiet, "q")
    tree = tmp_path / "tree"  # a git worktree (as local workers have): .git is a file
    git("worktree", "add", "-q", "-b", "t", str(tree), cwd=quiet)
    workers = {"busy": str(busy), "quiet": str(quiet), "tree": str(tree)}
    runner = LocalRunner()

    async def scenario() -> tuple[object, object]:
        # the busy one spins (silently) in a child process, as a build would
        await start_worker(runner, worker_id="busy", workdir=str(busy),
                           agent_command="sh -c 'while :; do :; done'; true", task_text=None,
                           tmux=private_tmux)
        await start_worker(runner, worker_id="quiet", workdir=str(quiet),
                           agent_command="sleep 600", task_text=None, tmux=private_tmux)
        await start_worker(runner, worker_id="tree", workdir=str(tree),
                           agent_command="sleep 600", task_text=None, tmux=private_tmux)
        first = await probe_host(runner, "h", workers, tmux=private_tmux, now=1.0)
        # as if the quiet one had last used CPU a minute ago
        mark = quiet / ".git" / "czarina-cpu"
        ticks, then, at, *boot = mark.read_text().split()
        mark.write_text(f"{ticks} {then} {int(at) - 60} {' '.join(boot)}\n")
        await asyncio.sleep(2.5)  # the spinner uses far more than 5% of a CPU meanwhile
        return first, await probe_host(runner, "h", workers, tmux=private_tmux, now=2.0)

    first, second = asyncio.run(scenario())
    f_busy, f_quiet = first.sessions["busy"], first.sessions["quiet"]  # type: ignore[attr-defined]
    s_busy, s_quiet = second.sessions["busy"], second.sessions["quiet"]  # type: ignore[attr-defined]
    # the first probe has nothing to compare with: both count as busy now
    assert f_busy.cpu_activity is not None and f_quiet.cpu_activity is not None
    assert s_busy.cpu_activity is not None and s_busy.cpu_activity > f_busy.cpu_activity
    assert s_quiet.cpu_activity == f_quiet.cpu_activity - 60  # no CPU since: kept
    assert "czarina-cpu" not in git("status", "--porcelain", cwd=quiet)  # not in the tree
    assert second.sessions["tree"].cpu_activity is not None  # type: ignore[attr-defined]
    assert (quiet / ".git" / "worktrees" / "tree" / "czarina-cpu").is_file()
    assert git("status", "--porcelain", cwd=tree) == ""


def _tree_ticks(pid: int) -> tuple[int, list[str]]:
    """utime + stime of `pid` and its descendants, and their names, read by Python."""
    total, names, todo = 0, [], [pid]
    while todo:
        p = todo.pop()
        stat = Path(f"/proc/{p}/stat").read_text()
        fields = stat[stat.index(")") + 1:].split()
        total += int(fields[11]) + int(fields[12])
        names.append(stat[stat.index("(") + 1:stat.index(")")])
        todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return total, names


def test_the_cpu_ticks_summed_are_those_of_the_whole_process_tree(
    tmp_path: Path, private_tmux: TmuxTarget
) -> None:
    """The ticks the probe keeps in the mark are the sum over the pane's process tree,
    whether it reads each stat file with builtins (a few processes) or all of them with
    one `cat` (a larger tree): checked against /proc read here, on processes that used
    CPU and then sleep, so the sum holds still."""
    script = tmp_path / "tree.sh"
    script.write_text("n=$1\nwhile [ \"$n\" -gt 0 ]; do\n  n=$((n - 1))\n"
                      "  sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; "
                      "exec sleep 600' &\ndone\nwait\n")
    sizes = {"small": 1, "large": 14}  # 2 and 15 processes
    workers = {}
    for wid in sizes:
        make_checkout(tmp_path / wid, wid)
        workers[wid] = str(tmp_path / wid)
    runner = LocalRunner()

    async def scenario() -> dict[str, int]:
        for wid, n in sizes.items():
            await start_worker(runner, worker_id=wid, workdir=workers[wid],
                               agent_command=f"sh {script} {n}", task_text=None,
                               tmux=private_tmux)
        listing = await runner.run(private_tmux.argv(
            "list-windows", "-a", "-F", "#{pane_pid} #{session_name}"))
        pids = {line.split()[1].removeprefix("czar-worker-"): int(line.split()[0])
                for line in listing.stdout.splitlines()}
        expected: dict[str, int] = {}
        for wid, n in sizes.items():
            for _ in range(200):  # until every child has burned its loop and sleeps
                ticks, names = _tree_ticks(pids[wid])
                if names.count("sleep") == n:
                    expected[wid] = ticks
                    break
                await asyncio.sleep(0.05)
        for wid in sizes:  # a longer mark of another boot: the mark is rewritten in place
            (Path(workers[wid]) / ".git" / "czarina-cpu").write_text(
                "7 1 1 1 another-boot" + " " * 200 + "\nleft over\n")
        await probe_host(runner, "h", workers, tmux=private_tmux, now=1.0)
        return expected

    expected = asyncio.run(scenario())
    assert set(expected) == set(sizes)
    assert expected["large"] > 0  # the children did use CPU: the sum is not trivially 0
    for wid in sizes:
        mark = Path(workers[wid]) / ".git" / "czarina-cpu"
        first_line = mark.read_text().splitlines()[0].split()
        assert int(first_line[0]) == expected[wid], wid
        assert first_line[4] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_the_boot_time_is_read_from_proc_stat_once_per_boot_then_from_the_mark(
    tmp_path: Path, private_tmux: TmuxTarget
) -> None:
    """`now` is the boot time plus the uptime. /proc/stat, where the boot time is, is
    some 30 KB on a 96-CPU host and the shell reads it a byte per system call: the mark
    keeps the boot time with the boot's id, and a mark of this boot is used instead."""
    work = tmp_path / "w"
    make_checkout(work, "w")
    runner = LocalRunner()
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime "))
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    mark = work / ".git" / "czarina-cpu"

    async def probe() -> float:
        got = await probe_host(runner, "h", {"w": str(work)}, tmux=private_tmux, now=1.0)
        at = got.sessions["w"].cpu_activity
        assert at is not None
        return at

    async def scenario() -> tuple[float, float, float]:
        await start_worker(runner, worker_id="w", workdir=str(work), agent_command="sleep 600",
                           task_text=None, tmux=private_tmux)
        first = await probe()  # no mark yet: busy now, boot time from /proc/stat
        assert mark.read_text().split()[3:] == [str(btime), boot_id]
        # A mark of this boot whose boot time reads 1,000 s earlier: it is what counts
        # (a forged one only moves its own worker's clock). Its tick count is above the
        # process's (a new process): busy now, so the answer is that `now`.
        mark.write_text(f"999999999 0 0 {btime - 1000} {boot_id}\n")
        from_mark = await probe()
        # A mark of another boot: /proc/stat again, and the mark is rewritten.
        mark.write_text(f"999999999 0 0 {btime - 1000} another-boot\n")
        return first, from_mark, await probe()

    first, from_mark, other_boot = asyncio.run(scenario())
    assert abs(first - time.time()) < 5
    assert abs(from_mark - (first - 1000)) < 5
    assert abs(other_boot - first) < 5
    assert mark.read_text().split()[3:] == [str(btime), boot_id]


def test_parse_reads_cpu_activity_of_live_sessions_only() -> None:
    out = ("A 100 4242 f:1 czar-worker-a\nW\ta\n# branch.oid abc\nE\nU\t1700000000\n"
           "W\tb\nE\nU\t5\n")
    probe = parse_probe_output("h", out, {"a": "/a", "b": "/b"}, 1.0, owner="f")
    assert probe.sessions["a"].cpu_activity == 1_700_000_000.0
    assert probe.sessions["a"].pane_activity == 100.0
    assert probe.sessions["b"].cpu_activity is None  # its session is not alive
