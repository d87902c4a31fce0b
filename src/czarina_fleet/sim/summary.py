"""The report a finished `Simulation` (run.py) returns: hosts, workers, cost,
convergence, interruptions, invariants, moves, demand.

Split from the loop because it only reads what the run left behind (the recorder,
the simulated cloud, the store's ledger); the recorder's own aggregates live in
report.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from czarina_fleet.cost.report import total_usd
from czarina_fleet.providers.base import InstanceState
from czarina_fleet.sim.report import interruption_summary

if TYPE_CHECKING:  # run.py imports this module to report
    from czarina_fleet.sim.run import Simulation


def final_report(sim: Simulation) -> dict[str, Any]:
    r, trace = sim.recorder, sim.loaded.trace
    instances = list(sim.cloud.by_key.values())
    worker_hours = r.worker_seconds / 3600.0
    spent = total_usd(sim.store.ledger())
    return {
        "trace": trace.name,
        "seed": sim.seed,
        "duration_s": trace.duration,
        "tick_s": sim.loaded.tick_s,
        "ticks": r.ticks,
        "hosts": {
            "launched": len(instances),
            "terminated": len(set(sim.cloud.terminated)),
            "interrupted": sum(1 for i in instances if i.interrupted),
            "peak": r.peak_hosts,
            "alive_at_end": sum(1 for i in instances
                                if i.state != InstanceState.TERMINATED),
        },
        "workers": {
            "peak_running": r.peak_workers,
            "running_at_end": r.live_count,
            "worker_hours": round(worker_hours, 6),
        },
        "cost": {
            "total_usd": round(spent, 6),
            "per_worker_hour_usd": (round(spent / worker_hours, 6)
                                    if worker_hours > 0 else None),
            "peak_rate_per_hour": round(r.peak_rate, 6),
            "budget_per_hour": sim.rec.desired().budget_per_hour,
        },
        "convergence": [c.as_dict() for c in r.convergence],
        "interruptions": [i.as_dict() for i in r.interruptions],
        "interruption_summary": interruption_summary(r.interruptions),
        "invariants": r.invariants(),
        "moves": r.moves_summary(trace.duration),
        **({"demand": sim.demand.summary(trace.duration)} if sim.demand else {}),
        "failed_actions": dict(sorted(r.failed_actions.items())),
        "first_errors": r.first_errors,
        "notes": r.notes,
    }
