"""Poll benchmark (not a test): the status of 12 workers on 6 real SSH hosts (network
namespaces, see czarina_fleet.remote.netns), measured three ways in one run:

  (a) one `ssh` subprocess per command, as the seed document sketches: `git log -1` and
      `tmux capture-pane` per worker, one after the other;
  (b) the same commands through OpenSSH ControlMaster multiplexing (masters warm);
  (c) the pooled one-round-trip probe (SshPool + probe_all), connections open;
  floor: one trivial command per host on the open pooled connections, concurrently.

Prints medians and the ratios (a)/(c), (b)/(c), (c)/floor. Targets: >= 100, >= 5, <= 3.
The OpenSSH client verifies host keys against a known_hosts file written here.
Run as root:  .venv/bin/python bench/poll_bench.py [--runs N] [--parts]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from czarina_fleet.remote import netns
from czarina_fleet.remote.bootstrap import prepare_checkout
from czarina_fleet.remote.probe import probe_argv
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool, probe_all
from czarina_fleet.remote.tmux import DEFAULT_TMUX, start_worker

HOSTS = 6
WORKERS_PER_HOST = 2


def make_origin(parent: Path) -> Path:
    seed = parent / "seed"
    seed.mkdir()
    env = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "README").write_text("bench\n")
    subprocess.run(["git", "-C", str(seed), "add", "README"], check=True)
    subprocess.run(["git", *env, "-C", str(seed), "commit", "-q", "-m", "bench"], check=True)
    origin = parent / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(origin)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(parent)], check=True)
    return origin


async def setup(pool: SshPool, hosts: list[netns.LabHost], origin: Path) -> dict[str, dict]:
    layout: dict[str, dict[str, str]] = {}

    async def one(host: netns.LabHost) -> None:
        runner = pool.runner(host.host_id)
        for k in range(WORKERS_PER_HOST):
            wid = f"{host.host_id}-w{k}"
            path = await prepare_checkout(runner, repo_url=str(origin), work_dir=host.work_dir,
                                          worker_id=wid, branch=f"feat/{wid}",
                                          base_branch="main")
            await start_worker(runner, worker_id=wid, workdir=path,
                               agent_command="exec sleep 100000", task_text=None)
            layout.setdefault(host.host_id, {})[wid] = path

    await asyncio.gather(*(one(h) for h in hosts))
    return layout


def ssh_base(host: netns.LabHost, known_hosts: Path) -> list[str]:
    return ["ssh", "-i", host.identity_file, "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-l", host.user]


def seed_style(hosts: list[netns.LabHost], layout: dict, known_hosts: Path,
               extra: list[str]) -> float:
    """(a)/(b): per worker, `git log -1` then `tmux capture-pane`, each its own ssh."""
    start = time.perf_counter()
    for host in hosts:
        base = [*ssh_base(host, known_hosts), *extra, host.address]
        for wid, path in layout[host.host_id].items():
            for command in (f"git -C {path} log -1 --format=%s/%ar/%h/%ct",
                            f"tmux capture-pane -p -t =czar-worker-{wid}:"):
                subprocess.run([*base, command], capture_output=True, check=True)
    return time.perf_counter() - start


def control_args(host: netns.LabHost, sockets: Path) -> list[str]:
    return ["-o", "ControlMaster=auto", "-o", f"ControlPath={sockets}/{host.index}",
            "-o", "ControlPersist=600"]


async def timed(coro_factory, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await coro_factory()
        times.append(time.perf_counter() - start)
    return times


async def pooled(pool: SshPool, layout: dict, runs: int,
                 parts: bool = False) -> tuple[list[float], list[float]]:
    async def probe() -> None:
        probes = await probe_all(pool, layout, now=time.time())
        assert all(p.reachable and all(s.alive for s in p.sessions.values()) for p in probes)

    async def floor() -> None:
        await asyncio.gather(*(pool.runner(h).run(["true"]) for h in layout))

    await probe()  # connections open, steady state from here
    probe_times = await timed(probe, runs)
    floor_times = await timed(floor, runs)
    if parts:
        await print_parts(pool, layout, runs)
    return probe_times, floor_times


async def print_parts(pool: SshPool, layout: dict, runs: int) -> None:
    """What the probe's parts cost, each run on every host concurrently like the probe:
    the process starts it is made of (`--parts`)."""
    def first_dir(h: str) -> str:
        return next(iter(layout[h].values()))

    def script(h: str, cpu: bool = True) -> list[str]:
        argv = probe_argv(layout[h], DEFAULT_TMUX, pool.commits.get(h))
        return argv if cpu else [a.replace("(*) cpu_ok=1 ;;", "(*) cpu_ok= ;;") for a in argv]

    parts = {
        "floor (login shell, `true`)": lambda h: ["true"],
        "+ sh": lambda h: ["sh", "-c", "true"],
        "tmux list-windows": lambda h: ["tmux", "list-windows", "-a"],
        "one git status": lambda h: ["git", "--no-optional-locks", "-C", first_dir(h),
                                     "status", "--porcelain=v2", "--branch"],
        "probe script without the CPU part": lambda h: script(h, cpu=False),
        "probe script": script,
    }
    # Interleaved, a run of every part in turn: a shared machine's load moves between
    # the parts of one round, not between a part's runs and the next part's.
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(runs):
        for name, argv_of in parts.items():
            start = time.perf_counter()
            await asyncio.gather(*(pool.runner(h).run(argv_of(h)) for h in layout))
            times[name].append(time.perf_counter() - start)
    for name, got in times.items():
        print(f"    {name:36s} median {statistics.median(got) * 1000:7.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of (c) and the floor")
    parser.add_argument("--seed-runs", type=int, default=3, help="runs of (a) and (b)")
    parser.add_argument("--parts", action="store_true", help="also time the probe's parts "
                        "(its process starts) on every host")
    args = parser.parse_args()
    fleet = f"bench-{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="czarina-bench-", dir="/tmp"))
    work.chmod(0o755)
    try:
        hosts = [netns.create_host(fleet, f"h{i + 1}") for i in range(HOSTS)]
        known_hosts = work / "known_hosts"
        known_hosts.write_text("".join(Path(h.known_hosts).read_text() for h in hosts))
        origin = make_origin(work)
        report(hosts, known_hosts, origin, work, args)
    finally:
        for host in netns.list_hosts(fleet=fleet):
            netns.destroy_host(host)
        shutil.rmtree(work, ignore_errors=True)


def report(hosts: list[netns.LabHost], known_hosts: Path, origin: Path, work: Path,
           args: argparse.Namespace) -> None:
    sockets = work / "cm"
    sockets.mkdir()

    async def pooled_part() -> tuple[dict, list[float], list[float]]:
        pool = SshPool([h.ssh_host() for h in hosts], settings=PoolSettings())
        try:
            layout = await setup(pool, hosts, origin)
            probe_times, floor_times = await pooled(pool, layout, args.runs, args.parts)
            return layout, probe_times, floor_times
        finally:
            await pool.close()

    layout, c_times, floor_times = asyncio.run(pooled_part())
    a_times = [seed_style(hosts, layout, known_hosts, []) for _ in range(args.seed_runs)]
    try:
        seed_style(hosts, layout, known_hosts, ["-o", "ControlMaster=auto", "-o",
                   f"ControlPath={sockets}/%C", "-o", "ControlPersist=600"])  # warm masters
        b_times = [seed_style(hosts, layout, known_hosts,
                              ["-o", "ControlMaster=auto", "-o", f"ControlPath={sockets}/%C",
                               "-o", "ControlPersist=600"]) for _ in range(args.seed_runs)]
    finally:
        for host in hosts:
            subprocess.run([*ssh_base(host, known_hosts), "-o", f"ControlPath={sockets}/%C",
                            "-O", "exit", host.address], capture_output=True, check=False)
    a, b, c = (statistics.median(t) for t in (a_times, b_times, c_times))
    floor = statistics.median(floor_times)
    workers = sum(len(w) for w in layout.values())
    print(f"{workers} workers on {len(hosts)} hosts")
    print(f"(a) ssh per command      median {a * 1000:9.1f} ms  ({args.seed_runs} runs)")
    print(f"(b) ControlMaster (warm) median {b * 1000:9.1f} ms  ({args.seed_runs} runs)")
    print(f"(c) pooled probe         median {c * 1000:9.1f} ms  ({args.runs} runs)")
    print(f"    floor (true per host) median {floor * 1000:8.1f} ms  ({args.runs} runs)")
    print(f"(a)/(c) = {a / c:7.1f}   target >= 100")
    print(f"(b)/(c) = {b / c:7.1f}   target >= 5")
    print(f"(c)/floor = {c / floor:5.2f}   target <= 3")


if __name__ == "__main__":
    main()
