"""Planner benchmark: 10,000 workers over 2,000 hosts (5 slots each).

Three shapes of tick: steady (every worker running, probes agree), churn (10% of the
workers pending, 5% of the hosts interrupted, so placement and launches run) and moves
(every host overloaded for 3 probes, one slot free, $1/h: rebalancing and consolidation
look at every host and find no move that helps). Prints the median ms per plan of several
runs and workers planned per second. Target: < 250 ms.

    .venv/bin/python bench/planner_bench.py [--workers N] [--hosts M] [--runs R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.controller.core.observed import Observed
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.fleet import (
    HostProbe,
    HostRecord,
    LoadSample,
    Overrides,
    SessionProbe,
    WorkerRecord,
)
from czarina_fleet.model.location import PoolLocation
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.providers.base import ConnectInfo, Instance, InstanceState, PriceQuote

NOW = 1_000_000.0


def scenario(n_workers: int, n_hosts: int, churn: bool,
             hot: bool = False) -> tuple[object, Observed]:
    slots = -(-n_workers // n_hosts)
    pool = PoolSpec(name="p", provider="fake", instance_types=["t3.large"], regions=["r"],
                    max_hosts=n_hosts * 2, slots_per_host=slots)
    cfg = FleetConfig(
        source=Path("x"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id=f"w{i}", branch=f"b{i}", location=PoolLocation("p"))
                 for i in range(n_workers)],
        fleet=FleetSettings(pools=[pool], scaling=ScalingLimits(max_workers=n_workers)))
    desired = desired_from(cfg, Overrides())
    hosts = [HostRecord(f"p-{j}", "fake", HostState.READY, NOW - 100, slots + hot, pool="p",
                        instance_id=f"i-{j}", address="10.0.0.1",
                        price_per_hour=1.0 if hot else 0.03)
             for j in range(n_hosts)]
    workers, sessions = [], {h.host_id: {} for h in hosts}
    for i in range(n_workers):
        hid = f"p-{i // slots}"
        if churn and i % 10 == 0:
            continue  # pending: needs a place
        workers.append(WorkerRecord(f"w{i}", WorkerState.RUNNING, NOW - 50, hid, "pool:p"))
        sessions[hid][f"w{i}"] = SessionProbe(f"w{i}", True, pane_activity=NOW - 5)
    instances = [Instance(h.instance_id or "", h.host_id, "p", InstanceState.RUNNING, "t3.large",
                          "r", True, NOW - 100, ConnectInfo("10.0.0.1"),
                          interrupted=churn and j % 20 == 0)
                 for j, h in enumerate(hosts)]
    load = 4.0 if hot else 0.5
    probes = {h.host_id: HostProbe(h.host_id, True, NOW, load_1m=load, cpus=2,
                                   sessions=sessions[h.host_id]) for h in hosts}
    samples = {h.host_id: [LoadSample(h.host_id, NOW - 15 * k, load, 2) for k in (2, 1, 0)]
               for h in hosts} if hot else {}
    observed = Observed.of(hosts, workers, inventories={"p": instances}, probes=probes,
                           quotes={"p": PriceQuote("t3.large", "r", True, 0.03, "bench")},
                           samples=samples)
    return desired, observed


def bench(n_workers: int, n_hosts: int, runs: int, churn: bool,
          hot: bool = False) -> tuple[float, int]:
    desired, observed = scenario(n_workers, n_hosts, churn, hot)
    times, n_actions = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        actions = plan(desired, observed, NOW)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
        n_actions = len(actions)
    return statistics.median(times) * 1000, n_actions


def baseline(n_workers: int, n_hosts: int, runs: int) -> float:
    """The least any planner must do, measured in the same run: look at every desired
    worker, its record and its session once (dict lookups, no decisions). The ratio
    plan/baseline says how much the planning itself costs, whatever the machine."""
    desired, observed = scenario(n_workers, n_hosts, churn=False)
    records = observed.workers
    probes = observed.probes
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        seen = 0
        for dw in desired.workers:  # type: ignore[attr-defined]
            rec = records.get(dw.worker_id)
            probe = probes.get(rec.host_id) if rec and rec.host_id else None
            if probe is not None and dw.worker_id in probe.sessions:
                seen += 1
        times.append(time.perf_counter() - t0)
    assert seen > 0
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=10_000)
    ap.add_argument("--hosts", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    floor = baseline(a.workers, a.hosts, a.runs)
    print(f"baseline (one lookup per worker, no planning): median {floor:.2f} ms")
    for label, churn, hot in (("steady", False, False), ("churn ", True, False),
                              ("moves ", False, True)):
        ms, n = bench(a.workers, a.hosts, a.runs, churn, hot)
        print(f"{label}: {a.workers} workers / {a.hosts} hosts: median {ms:.1f} ms per plan "
              f"({a.workers / (ms / 1000):,.0f} workers/s, {n} actions; target < 250 ms), "
              f"{ms / floor:.0f}x the baseline")


if __name__ == "__main__":
    main()
