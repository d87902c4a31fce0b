"""Config loading benchmark: does checking a configuration grow linearly with its workers?

Writes a config.json and a config.sh of N and 10*N workers (default 10,000 and
100,000), then times what `czarina config check` does with each: load and validate
(`load_config`), look for task files, merge the desired state, look every worker up by
id, and lay out the worker table. Prints the seconds of each size and the scaling
exponent log(t_big / t_small) / log(10): 1.0 is linear, 2.0 quadratic. The baseline is
the small size measured in the same run, so the exponent means the same on any machine.
With --cli it also runs the real `czarina config check` on the big config.json.

    .venv/bin/python bench/config_bench.py [--workers N] [--runs R] [--cli]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from czarina_fleet.cli.render import PlainTable, table
from czarina_fleet.config import check_task_files, load_config, task_path
from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.model.fleet import Overrides

HOSTS = ("build-1", "build-2", "gpu")


def write_configs(base: Path, n: int) -> tuple[Path, Path]:
    base.mkdir(parents=True, exist_ok=True)
    workers = [{"id": f"w{i}", "agent": "claude", "branch": f"feat/w{i}",
                "description": f"worker {i}", "location": f"remote:{HOSTS[i % 3]}"}
               for i in range(n)]
    hosts = [{"name": h, "host": f"10.0.0.{k + 1}", "user": "u"} for k, h in enumerate(HOSTS)]
    as_json = base / "config.json"
    as_json.write_text(json.dumps({"project": {"name": "bench"}, "workers": workers,
                                   "fleet": {"hosts": hosts}}))
    lines = "\n".join(f'    "w{i}|feat/w{i}|w{i}_TASKS.txt|Worker {i}|remote:{HOSTS[i % 3]}"'
                      for i in range(n))
    remote = " ".join(f'"{h}:u@10.0.0.{k + 1}:22:/srv/work"' for k, h in enumerate(HOSTS))
    as_shell = base / "config.sh"
    as_shell.write_text(f"export REMOTE_HOSTS=( {remote} )\n"
                        f"export WORKER_DEFINITIONS=(\n{lines}\n)\n")
    return as_json, as_shell


def check_once(path: Path) -> float:
    """What `config check` does with `path`, minus printing; seconds."""
    t0 = time.perf_counter()
    cfg = load_config(path, ssh_config=Path("/nonexistent"))
    check_task_files(cfg)
    desired_from(cfg, Overrides())
    rows = []
    for w in cfg.workers:
        spec = cfg.worker(w.id)
        assert spec is not None
        rows.append((w.id, w.agent, w.branch, str(w.location), task_path(cfg, spec)))
    made = table("Workers", ["Worker", "Agent", "Branch", "Location", "Task file"], rows)
    assert isinstance(made, PlainTable)  # sizes here are above PLAIN_ROWS
    lines = list(made.lines())
    assert len(lines) == len(rows) + 2
    return time.perf_counter() - t0


def median_check(path: Path, runs: int) -> float:
    return statistics.median(check_once(path) for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=10_000, help="the small size (big: 10x)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time the real CLI (big json)")
    a = ap.parse_args()
    small, big = a.workers, a.workers * 10
    with tempfile.TemporaryDirectory(prefix="czarina-config-bench-") as tmp:
        made = {n: write_configs(Path(tmp) / str(n), n) for n in (small, big)}
        for kind, index in (("config.json", 0), ("config.sh", 1)):
            t_small = median_check(made[small][index], a.runs)
            t_big = median_check(made[big][index], a.runs)
            exponent = math.log(t_big / t_small) / math.log(big / small)
            print(f"{kind:11}: {small:>7,} workers {t_small:6.2f} s, {big:>7,} workers "
                  f"{t_big:6.2f} s: {t_big / t_small:5.1f}x for 10x the workers, scaling "
                  f"exponent {exponent:.2f} (1.0 linear, 2.0 quadratic)")
        if a.cli:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "--config",
                                   str(made[big][0]), "config", "check"],
                                  capture_output=True, text=True, cwd=tmp)
            wall = time.perf_counter() - t0
            print(f"czarina config check, {big:,} workers (config.json): {wall:.1f} s wall, "
                  f"exit {done.returncode}, {done.stdout.count(chr(10)):,} lines printed")


if __name__ == "__main__":
    main()
