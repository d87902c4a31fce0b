"""Cost accrual and FOCUS export at fleet scale (a benchmark, not a test).

One accrual tick for 10,000 workers on 2,000 hosts, against a floor measured in the same
run: one pass that groups the workers by host and sums host rates (the least any
per-host accrual must do). Then a FOCUS export of six hours of 15 s ticks for 40 hosts.
Prints medians and ratios; run with `.venv/bin/python bench/ledger_bench.py`.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable

from czarina_fleet.cost.focus import focus_rows
from czarina_fleet.cost.ledger import accrue, accrue_tick
from czarina_fleet.model.fleet import HostRecord, WorkerRecord
from czarina_fleet.model.states import HostState, WorkerState

T0 = 1_700_000_000.0


def fleet(n_hosts: int, n_workers: int) -> tuple[list[HostRecord], list[WorkerRecord]]:
    hosts = [HostRecord(f"h{i}", "aws", HostState.READY, T0, 6, pool="spot",
                        shape="m5.large", region="us-east-1", spot=True,
                        price_per_hour=0.04 + i % 7 / 100, launched_at=T0 - i)
             for i in range(n_hosts)]
    workers = [WorkerRecord(f"w{i}", WorkerState.RUNNING, T0, f"h{i % n_hosts}",
                            started_at=T0 - i % 90) for i in range(n_workers)]
    return hosts, workers


def median_s(fn: Callable[[], object], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def floor(hosts: list[HostRecord], workers: list[WorkerRecord]) -> float:
    by_host: dict[str, int] = defaultdict(int)
    for w in workers:
        if w.host_id is not None:
            by_host[w.host_id] += 1
    return sum(h.price_per_hour * 15 / 3600 for h in hosts if by_host[h.host_id] >= 0)


def main() -> None:
    hosts, workers = fleet(2000, 10_000)
    tick = median_s(lambda: accrue(hosts, workers, T0, T0 + 15))
    base = median_s(lambda: floor(hosts, workers))
    n = len(accrue(hosts, workers, T0, T0 + 15))
    print(f"accrue, 10,000 workers on 2,000 hosts: {tick * 1e3:.1f} ms per tick "
          f"({n} entries); floor {base * 1e3:.2f} ms; ratio {tick / base:.1f}x")

    small_hosts, small_workers = fleet(40, 200)
    mark, day = T0, []
    for i in range(1, 1441):
        r = accrue_tick(small_hosts, small_workers, mark, T0 + 15 * i)
        day.extend(r.entries)
        mark = r.accrued_until
    export = median_s(lambda: focus_rows(day, "bench"), runs=3)
    print(f"FOCUS export of 6 h (40 hosts, 200 workers, 15 s ticks): "
          f"{len(day):,} entries -> {len(focus_rows(day, 'bench')):,} hourly rows "
          f"in {export:.2f} s")


if __name__ == "__main__":
    main()
