"""Fleet scale benchmark (not a test): how many hosts one controller process keeps in one
reconcile interval, with real SSH connections, the real probe command, store writes, cost
accrual and the event log.

For each N in --sizes (default 100, 300, 1000): N SSH endpoints on loopback (asyncssh
servers in a separate process, one port each, so the controller's CPU is measured
alone), each answering the real probe command with what 4 live workers' tmux and git
facts look like; N static hosts and 4N workers in a real SQLite store, all running. Then
--ticks steady-state controller ticks end to end: observe (probe every host over the
pooled connections), plan, act with nothing to do, store writes, cost accrual, events.

Reported per N: wall and CPU time per tick, CPU per host, time in the store, commits
per tick, actions planned (0 at steady state), one push-job round's CPU, the
controller's CPU per 15 s (a tick and a quarter of a push round), the endpoints'
process CPU per tick, peak RSS, open file descriptors, the first tick (which connects
every host) apart, and the growth exponent between sizes (1.0 = linear). Baseline in
the same run: the same connections each running one trivial command, concurrently (the
floor). `--profile FILE` writes a cProfile (CPU time) of the measured ticks to
FILE.<N> and of the first tick to FILE.first.<N>.

The first tick is also timed with `--baseline-connects` (16) connects at a time, in the
same run; `--ticks 0` times the first tick only; `--rtt-ms` delays each endpoint's
bytes (a relay in front of it) as a network between controller and hosts would.

Run:  .venv/bin/python bench/fleet_scale_bench.py [--sizes 100,300,1000] [--ticks 3]
      [--rtt-ms 50] [--endpoint-procs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import functools
import hashlib
import json
import logging
import math
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncssh

from czarina_fleet.clock import SystemClock
from czarina_fleet.config import load_config
from czarina_fleet.config.identity import fleet_identity
from czarina_fleet.controller.runtime.compose import open_fleet
from czarina_fleet.controller.runtime.cost_accrual import accrue_now
from czarina_fleet.controller.runtime.push_job import BranchPusher
from czarina_fleet.controller.state.store import Store
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.remote.ssh_pool import PoolSettings

WORKERS_PER_HOST = 4


# --- the hosts: one process, one listening port per host ------------------------------


def _probe_answer(command: str, mark: str) -> str:
    """What the probe script prints on a host whose workers (from the command's own
    arguments) all run in sessions carrying the fleet's mark, each on a clean branch
    that origin has (the format of remote/probe.py: a session line with its pane's
    pid, a CPU line per worker)."""
    args = shlex.split(command)
    workers = args[args.index("czarina-probe") + 4:]
    out = ["H\t0.42\t\t8123456\t0-3"]
    triples = [workers[i:i + 3] for i in range(0, len(workers) - 2, 3)]
    now = int(time.time())
    out += [f"A {now} {4000 + n} {mark}:1 czar-worker-{wid}"
            for n, (wid, _d, _k) in enumerate(triples)]
    for wid, _dir, known in triples:
        oid = hashlib.sha1(wid.encode()).hexdigest()
        out += [f"W\t{wid}", f"# branch.oid {oid}", f"# branch.head feat/{wid}",
                f"# branch.upstream origin/feat/{wid}", "# branch.ab +0 -0", "E"]
        if known != oid:
            out.append(f"C\t{oid}\t{now - 60}\twork in progress on {wid}")
        out.append(f"U\t{now - 30}")  # when its pane's processes last used CPU
    return "\n".join(out) + "\n"


async def _delayed(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
    """Copy src to dst, each chunk `delay` seconds late, in order: one way of a link."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def write() -> None:
        while True:
            due, data = await chunks.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                dst.close()
                return
            dst.write(data)

    writer = asyncio.create_task(write())
    try:
        while data := await src.read(65536):
            chunks.put_nowait((loop.time() + delay, data))
    except OSError:
        pass
    chunks.put_nowait((loop.time() + delay, b""))
    await writer


async def _relay(target: int, rtt: float) -> int:
    """A loopback port that forwards to `target` with `rtt` seconds of round trip (half
    each way): what a network between the controller and its hosts adds."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_delayed(reader, up_w, rtt / 2), _delayed(up_r, writer, rtt / 2),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    return int(server.sockets[0].getsockname()[1])


async def serve(hosts: int, mark: str, host_key: str, client_pub: str,
                rtt: float = 0.0) -> None:
    """Listen on `hosts` free loopback ports; print them (JSON) once all listen. With
    `rtt`, each port is a relay adding that round trip (seconds) before the server."""
    _raise_fd_limit()
    keys = asyncssh.read_authorized_keys(client_pub)

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command or ""
        process.stdout.write(_probe_answer(command, mark) if "czarina-probe" in command
                             else "")
        process.exit(0)

    ports = []
    for _ in range(hosts):
        server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key],
                                       authorized_client_keys=keys, process_factory=handle,
                                       encoding="utf-8", agent_forwarding=False,
                                       allow_scp=False, x11_forwarding=False)
        port = server.sockets[0].getsockname()[1]
        ports.append(await _relay(port, rtt) if rtt > 0 else port)
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


# --- the controller side ----------------------------------------------------------------


def _raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class StoreTimer:
    """Time spent in the store's public methods (outermost calls only)."""

    def __init__(self, store: Store) -> None:
        self.seconds, self._depth = 0.0, 0
        for name in dir(store):
            attr = getattr(store, name)
            if name.startswith("_") or not callable(attr) or name in ("transaction", "lock"):
                continue
            setattr(store, name, self._wrap(attr))

    def _wrap(self, fn: Any) -> Any:
        @functools.wraps(fn)
        def timed(*a: Any, **kw: Any) -> Any:
            self._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - t0
        return timed


def write_project(root: Path, ports: list[int], identity: Path) -> Path:
    hosts = len(ports)
    config = {
        "project": {"name": "scale"},
        "fleet": {
            "name": "scale", "repository_url": "https://git.invalid/scale.git",
            "hosts": [{"name": f"h{i}", "host": "127.0.0.1", "port": ports[i],
                       "user": "bench", "identity_file": str(identity),
                       "slots": WORKERS_PER_HOST} for i in range(hosts)],
            "scaling": {"max_workers": hosts * WORKERS_PER_HOST},
        },
        "workers": [{"id": f"w{i}-{k}", "agent": "claude", "branch": f"feat/w{i}-{k}",
                     "location": f"remote:h{i}"}
                    for i in range(hosts) for k in range(WORKERS_PER_HOST)],
    }
    path = root / ".czarina" / "config.json"
    path.write_text(json.dumps(config))
    return path


def seed_store(state: Path, ports: list[int]) -> None:
    """Every host ready and every worker running: the fleet a long-running controller
    keeps, so each measured tick has nothing to do but look."""
    store = Store(state, SystemClock())
    now = time.time() - 3600
    with store.transaction():
        for i, port in enumerate(ports):
            store.upsert_host(HostRecord(f"h{i}", "static", HostState.READY, now,
                                         WORKERS_PER_HOST, address="127.0.0.1",
                                         port=port), reason="bench")
            for k in range(WORKERS_PER_HOST):
                store.upsert_worker(WorkerRecord(f"w{i}-{k}", WorkerState.RUNNING, now, f"h{i}",
                                                 f"remote:h{i}", started_at=now), reason="bench")
    store.close()


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) processes have used: the endpoints' share of a tick."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def cold_start(root: Path, known_hosts: Path, connects: int) -> tuple[float, float]:
    """(wall, CPU) of a controller's first tick (it connects every host) with the pool
    connecting `connects` hosts at a time: the baseline the default is compared with."""
    cfg = load_config(root / ".czarina" / "config.json")
    async with open_fleet(cfg, root / ".czarina" / "fleet.db", SystemClock(),
                          known_hosts=str(known_hosts), controller=True,
                          pool_settings=PoolSettings(connects_in_flight=connects)) as fleet:
        w0, c0 = time.perf_counter(), time.process_time()
        first = await fleet.reconciler.reconcile_once()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if first.actions:
        print(f"  cold start ({connects} at a time) planned: {_kinds(first.actions)}",
              file=sys.stderr)
    return wall, cpu


async def measure(root: Path, hosts: int, ticks: int, known_hosts: Path,
                  server_pid: list[int], profile: Path | None = None,
                  baseline_connects: int | None = None) -> dict[str, Any]:
    cfg = load_config(root / ".czarina" / "config.json")
    state = root / ".czarina" / "fleet.db"
    base_start = (await cold_start(root, known_hosts, baseline_connects)
                  if baseline_connects else None)
    async with open_fleet(cfg, state, SystemClock(), known_hosts=str(known_hosts),
                          controller=True) as fleet:
        timer = StoreTimer(fleet.store)
        # The first tick connects every host: reported apart (a controller's start).
        starting = cProfile.Profile(time.process_time) if profile is not None else None
        if starting is not None:
            starting.enable()
        w0, c0, s0 = time.perf_counter(), time.process_time(), _cpu_of(server_pid)
        first = await fleet.reconciler.reconcile_once()
        first_wall, first_cpu = time.perf_counter() - w0, time.process_time() - c0
        first_served = _cpu_of(server_pid) - s0
        if starting is not None:
            starting.disable()
            starting.dump_stats(f"{profile}.first.{hosts}")
        if first.actions:
            print(f"  first tick planned: {_kinds(first.actions)}", file=sys.stderr)
        start = {"hosts": hosts, "first_wall_s": first_wall, "first_cpu_s": first_cpu,
                 "first_served_s": first_served, "first_actions": len(first.actions),
                 "connects": fleet.pool.settings.connects_in_flight,
                 "base_connects": baseline_connects, "base_start": base_start}
        if ticks == 0:  # --ticks 0: the start only
            return start
        walls, cpus, actions, store_s, commits, served = [], [], [], [], [], []
        profiler = cProfile.Profile(time.process_time) if profile is not None else None
        for _ in range(ticks):
            if profiler is not None:
                profiler.enable()
            before, committed, s0 = timer.seconds, fleet.store.commits, _cpu_of(server_pid)
            w0, c0 = time.perf_counter(), time.process_time()
            result = await fleet.reconciler.reconcile_once()
            accrue_now(fleet.store, fleet.clock)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            commits.append(fleet.store.commits - committed)
            served.append(_cpu_of(server_pid) - s0)
            if profiler is not None:
                profiler.disable()
            store_s.append(timer.seconds - before)
            actions.append(len(result.actions))
            if result.actions:
                print(f"  actions planned: {_kinds(result.actions)}", file=sys.stderr)
            errors = [*result.errors, *(r.error for r in result.failed)]
            if errors:
                print(f"  tick errors ({len(errors)}): {errors[:3]}", file=sys.stderr)
        if profiler is not None and profile is not None:
            profiler.dump_stats(f"{profile}.{hosts}")
        # The push job's round (every push_interval_s, 60 s by default): it probes every
        # host again for the workers' HEADs; nothing moved here, so nothing is pushed.
        pusher = BranchPusher(fleet.store, fleet.access, fleet.clock)
        c0 = time.process_time()
        pushed = await pusher.run_once()
        push_cpu = time.process_time() - c0
        if pushed.failed:
            print(f"  push round failures: {len(pushed.failed)}", file=sys.stderr)
        floors = []
        for _ in range(ticks):
            t0 = time.perf_counter()
            await asyncio.gather(*(fleet.pool.runner(h.host_id).run(["true"])
                                   for h in fleet.store.hosts()))
            floors.append(time.perf_counter() - t0)
        alive = sum(1 for p in (await fleet.probe_hosts()).values()
                    for s in p.sessions.values() if s.alive)
        return {
            "hosts": hosts, "workers": hosts * WORKERS_PER_HOST, "alive_seen": alive,
            "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
            "store_s": statistics.median(store_s), "floor_s": statistics.median(floors),
            "actions": max(actions), "commits": max(commits), "push_cpu_s": push_cpu,
            "served_cpu_s": statistics.median(served), "first_wall_s": first_wall,
            **start,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "fds": len(os.listdir("/proc/self/fd")),
        }


def _kinds(actions: list[Any]) -> dict[str, int]:
    kinds = collections.Counter(f"{type(a).__name__}: {a.reason}" for a in actions)
    return dict(kinds.most_common(5))


def run_size(hosts: int, ticks: int, work: Path, profile: Path | None = None,
             rtt: float = 0.0, baseline_connects: int | None = None,
             procs: int = 2) -> dict[str, Any]:
    base = work / f"n{hosts}"
    base.mkdir()
    host_key, client_key = base / "host_key", base / "client_key"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    root = base / "proj"
    (root / ".czarina").mkdir(parents=True)
    mark = fleet_identity(root)  # the sessions the hosts report carry it
    # The hosts' side of every connect (a key exchange, a login) costs more CPU than
    # the controller's: split over processes so it bounds the measure less.
    counts = [hosts // procs + (i < hosts % procs) for i in range(procs)]
    servers = [subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n), "--mark", mark, "--host-key",
         str(host_key), "--client-pub", str(client_key) + ".pub", "--rtt-ms",
         str(rtt * 1000)], stdout=subprocess.PIPE, text=True) for n in counts if n]
    try:
        ports: list[int] = []
        for server in servers:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("["):
                raise SystemExit("the SSH endpoints did not start")
            ports += json.loads(line)
        pub = host_key.with_suffix(".pub").read_text().split()
        known = base / "known_hosts"
        known.write_text("".join(f"[127.0.0.1]:{p} {pub[0]} {pub[1]}\n" for p in ports))
        write_project(root, ports, client_key)
        seed_store(root / ".czarina" / "fleet.db", ports)
        return asyncio.run(measure(root, hosts, ticks, known, [s.pid for s in servers],
                                   profile, baseline_connects))
    finally:
        for server in servers:
            server.terminate()
            server.wait()


PUSH_EVERY_TICKS = 4  # push_interval_s 60 s / reconcile_interval_s 15 s (the defaults)


def _report(row: dict[str, Any]) -> str:
    n = row["hosts"]
    if "wall_s" not in row:
        return f"N={n:5d} hosts\n  {_start(row)}"
    per_15s = row["cpu_s"] + row["push_cpu_s"] / PUSH_EVERY_TICKS
    return (f"N={n:5d} hosts, {row['workers']} workers ({row['alive_seen']} seen alive)\n"
            f"  tick: wall {row['wall_s']:.2f}s, cpu {row['cpu_s']:.2f}s "
            f"({1000 * row['cpu_s'] / n:.2f} ms/host), store {row['store_s']:.3f}s, "
            f"{row['commits']} commit(s), actions {row['actions']}\n"
            f"  floor {row['floor_s']:.2f}s (tick/floor {row['wall_s'] / row['floor_s']:.1f}); "
            f"push round cpu {row['push_cpu_s']:.2f}s; controller cpu per 15 s "
            f"{per_15s:.2f}s ({100 * per_15s / 15:.0f}% of a core); endpoints' cpu per tick "
            f"{row['served_cpu_s']:.2f}s\n"
            f"  rss {row['rss_mb']:.0f} MB, fds {row['fds']}; {_start(row)}")


def _start(row: dict[str, Any]) -> str:
    return (f"first tick (connects every host): wall {row['first_wall_s']:.1f}s, cpu "
            f"{row['first_cpu_s']:.1f}s, actions {row['first_actions']} ({row['connects']} "
            f"connects at a time; endpoints' cpu {row['first_served_s']:.1f}s)"
            + _start_baseline(row))


def _start_baseline(row: dict[str, Any]) -> str:
    if row["base_start"] is None:
        return ""
    wall, cpu = row["base_start"]
    return (f"\n  first tick with {row['base_connects']} connects at a time (same run): "
            f"wall {wall:.1f}s, cpu {cpu:.1f}s; wall ratio {row['first_wall_s'] / wall:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,300,1000")
    ap.add_argument("--ticks", type=int, default=3)
    ap.add_argument("--profile", type=Path, help="write a cProfile of the measured ticks "
                    "to PROFILE.<hosts>, and of the first tick (the connects) to "
                    "PROFILE.first.<hosts> (read them with python -m pstats)")
    ap.add_argument("--rtt-ms", type=float, default=0.0, help="round trip each host's "
                    "connection adds (a delaying relay in front of each endpoint)")
    ap.add_argument("--baseline-connects", type=int, default=16, help="also time a first "
                    "tick with this many connects at a time, in the same run (0: not)")
    ap.add_argument("--endpoint-procs", type=int, default=2, help="processes serving "
                    "the hosts' side")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mark", help=argparse.SUPPRESS)
    ap.add_argument("--host-key", help=argparse.SUPPRESS)
    ap.add_argument("--client-pub", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.mark, args.host_key, args.client_pub,
                          args.rtt_ms / 1000))
        return
    logging.basicConfig(level=logging.CRITICAL)  # failures are counted, not logged
    limit = _raise_fd_limit()
    sizes = [int(s) for s in args.sizes.split(",")]
    if max(sizes) * 2 + 64 > limit:
        raise SystemExit(f"open file limit {limit} is too low for {max(sizes)} hosts "
                         f"(raise it: ulimit -n {max(sizes) * 2 + 64})")
    rows = []
    with tempfile.TemporaryDirectory(prefix="czarina-scale-") as tmp:
        for n in sizes:
            row = run_size(n, args.ticks, Path(tmp), args.profile, args.rtt_ms / 1000,
                           args.baseline_connects or None, args.endpoint_procs)
            rows.append(row)
            print(_report(row), flush=True)
            if "alive_seen" in row and row["alive_seen"] != row["workers"]:
                raise SystemExit(f"{row['alive_seen']} of {row['workers']} sessions seen "
                                 "alive: probes timed out (the machine is too busy for "
                                 "this size), or the endpoints' answer (_probe_answer) no "
                                 "longer matches remote/probe.py")
    for a, b in zip(rows, rows[1:], strict=False) if args.ticks else ():
        k = math.log(b["cpu_s"] / a["cpu_s"]) / math.log(b["hosts"] / a["hosts"])
        print(f"growth {a['hosts']} -> {b['hosts']} hosts: cpu exponent {k:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
