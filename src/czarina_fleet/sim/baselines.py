"""The same trace under other policies, and the comparison the report prints.

Every policy runs through the real simulator (planner, executor, store) on the same
items, cloud and seed; a baseline is our controller with a different configuration:

- `controller`: the trace's configuration as it is;
- `spot-idle-5m` (Ray's autoscaler default): spot hosts, a fixed 5-minute idle timeout
  for both workers (`fleet.health.idle_after_s` and `hopper_idle_after_s`) and hosts
  (`idle_timeout_s`), no
  rebalancing and no consolidation;
- `always-on`: `max_workers` workers always running (`min_workers` = `max_workers`), every
  pool on demand at its on-demand price (`cloud.on_demand_prices`, or the spot price x
  `cloud.on_demand_factor`), nothing moved; on-demand hosts are never interrupted.

`run_policies(loaded, seed, state_dir)` returns the controller's full report with
`oracle` (sim/oracle.py) and `policies` (one summary per policy) added.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from czarina_fleet.model.config import FleetConfig
from czarina_fleet.sim.oracle import efficiency, oracle
from czarina_fleet.sim.run import run_trace
from czarina_fleet.sim.trace import LoadedTrace

POLICIES = ("controller", "spot-idle-5m", "always-on")
RAY_IDLE_S = 300.0


def variant(loaded: LoadedTrace, policy: str) -> LoadedTrace:
    """The trace as `policy` runs it."""
    if policy == "controller":
        return loaded
    fleet = loaded.cfg.fleet
    if policy == "spot-idle-5m":
        scaling = fleet.scaling.model_copy(
            update={"idle_timeout_s": RAY_IDLE_S, "hopper_idle_timeout_s": RAY_IDLE_S})
        health = fleet.health.model_copy(
            update={"idle_after_s": RAY_IDLE_S, "hopper_idle_after_s": RAY_IDLE_S})
        cfg = _fleet(loaded.cfg, scaling=scaling, health=health, **_no_moves(loaded.cfg))
        return replace(loaded, cfg=cfg)
    if policy == "always-on":
        n = min(fleet.scaling.max_workers, len(loaded.cfg.workers))
        cloud = loaded.trace.cloud
        prices = {p.name: _on_demand(loaded, p.name) if p.spot
                  else cloud.prices.get(p.name, cloud.default_price_per_hour)
                  for p in fleet.pools}
        cfg = _fleet(loaded.cfg, scaling=fleet.scaling.model_copy(
            update={"min_workers": n, "max_workers": n}),
            pools=[p.model_copy(update={"spot": False}) for p in fleet.pools],
            **_no_moves(loaded.cfg))
        trace = loaded.trace.model_copy(update={"cloud": cloud.model_copy(
            update={"prices": prices})})
        return replace(loaded, cfg=cfg, trace=trace)
    raise ValueError(f"unknown policy {policy!r}")


def _on_demand(loaded: LoadedTrace, pool: str) -> float:
    cloud = loaded.trace.cloud
    if pool in cloud.on_demand_prices:
        return cloud.on_demand_prices[pool]
    return cloud.prices.get(pool, cloud.default_price_per_hour) * cloud.on_demand_factor


def _no_moves(cfg: FleetConfig) -> dict[str, Any]:
    """Rebalancing and consolidation off, where the configuration has them."""
    settings = getattr(cfg.fleet, "rebalance", None)
    if settings is None:
        return {}
    return {"rebalance": settings.model_copy(update={"enabled": False, "consolidate": False})}


def _fleet(cfg: FleetConfig, **update: Any) -> FleetConfig:
    return cfg.model_copy(update={"fleet": cfg.fleet.model_copy(update=update)})


def summary(report: dict[str, Any], oracle_usd: float) -> dict[str, Any]:
    """One policy's line of the comparison."""
    demand = report.get("demand", {})
    cost = report["cost"]["total_usd"]
    return {
        "cost_usd": cost,
        "efficiency": efficiency(oracle_usd, cost),
        "wait_p50_s": demand.get("wait_p50_s"),
        "wait_p95_s": demand.get("wait_p95_s"),
        "moves_per_hour": report["moves"]["per_hour"],
        "invariants_held": all(v["held"] for v in report["invariants"].values()),
        "items_done": demand.get("done"),
        "items_not_done": demand.get("items", 0) - demand.get("done", 0),
        "worker_hours": report["workers"]["worker_hours"],
        "hosts_launched": report["hosts"]["launched"],
    }


def run_policies(loaded: LoadedTrace, seed: int | None = None,
                 state_dir: Path | None = None,
                 policies: tuple[str, ...] = POLICIES) -> dict[str, Any]:
    """Run every policy on the trace; the controller's report carries the comparison.
    `state_dir` keeps the controller's store only. A trace without items has no demand
    to compare on: only the controller runs."""
    report = run_trace(loaded, seed=seed, state_dir=state_dir)
    if not loaded.items:
        return report
    bound = oracle(loaded)
    lines = {"controller": summary(report, bound["cost_usd"])}
    for policy in policies:
        if policy == "controller":
            continue
        with tempfile.TemporaryDirectory(prefix="czarina-sim-") as tmp:
            other = run_trace(variant(loaded, policy), seed=seed, state_dir=Path(tmp))
        lines[policy] = summary(other, bound["cost_usd"])
    report["oracle"] = bound
    report["policies"] = lines
    return report
