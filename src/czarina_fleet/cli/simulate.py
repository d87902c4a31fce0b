"""`czarina simulate TRACE [--json] [--seed N]`: replay a trace against the real
planner and executor on a simulated cloud and clock, and print what happened.

Exit codes: 0 when every invariant held, 1 when one was broken (so CI can gate on a
trace), 2 for a bad trace (a message naming the file and field).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from czarina_fleet.cli.render import console, print_json, table
from czarina_fleet.errors import EXIT_FAILURE, EXIT_OK, UserError

VerbFactory = Callable[..., argparse.ArgumentParser]


def add_simulate_parser(verb: VerbFactory) -> None:
    """Register the verb with main's `verb(name, run, help)` helper (which adds --json)."""
    p = verb("simulate", simulate, "replay a trace on a simulated cloud and clock (the real "
             "planner and executor) and report convergence, recovery, cost and invariants")
    p.add_argument("trace", metavar="TRACE", help="trace file (JSON; see docs/simulator.md)")
    p.add_argument("--seed", type=int, metavar="N", help="override the trace's seed")
    p.add_argument("--keep-state", metavar="DIR",
                   help="keep the simulated controller's store (DIR/fleet.db) to inspect")


def simulate(args: argparse.Namespace) -> int:
    from czarina_fleet.sim.baselines import run_policies
    from czarina_fleet.sim.trace import load_trace

    path = Path(args.trace)
    if not path.exists():
        raise UserError(f"no trace file {path}; give the path of a trace JSON file "
                        "(examples in examples/traces/)")
    loaded = load_trace(path)
    state = Path(args.keep_state) if getattr(args, "keep_state", None) else None
    if state is not None:
        state.mkdir(parents=True, exist_ok=True)
        if (state / "fleet.db").exists():
            raise UserError(f"{state / 'fleet.db'} exists already; give an empty directory")
    started = time.perf_counter()
    report = run_policies(loaded, seed=args.seed, state_dir=state)
    wall = time.perf_counter() - started
    if args.json:
        print_json(report)
    else:
        _print_tables(report, wall)
    held = all(v["held"] for v in report["invariants"].values()) and all(
        p["invariants_held"] for p in report.get("policies", {}).values())
    return EXIT_OK if held else EXIT_FAILURE


def _print_tables(r: dict[str, Any], wall: float) -> None:
    out = console()
    hosts, workers, cost = r["hosts"], r["workers"], r["cost"]
    per_wh = cost["per_worker_hour_usd"]
    out.print(table(f"Simulation of {r['trace']} (seed {r['seed']}): {_dur(r['duration_s'])} "
                    f"simulated in {wall:.1f}s, {r['ticks']} ticks of {_dur(r['tick_s'])}",
                    ["Measure", "Value"], [
        ("hosts launched / terminated / taken by the cloud",
         f"{hosts['launched']} / {hosts['terminated']} / {hosts['interrupted']}"),
        ("peak hosts (alive at end)", f"{hosts['peak']} ({hosts['alive_at_end']})"),
        ("peak workers running (at end)",
         f"{workers['peak_running']} ({workers['running_at_end']})"),
        ("worker-hours running", f"{workers['worker_hours']:.2f}"),
        ("total cost", f"${cost['total_usd']:.4f}"),
        ("cost per worker-hour", "-" if per_wh is None else f"${per_wh:.4f}"),
        ("peak spend rate (budget)", f"${cost['peak_rate_per_hour']:.4f}/h ("
         + ("none" if cost["budget_per_hour"] is None else f"${cost['budget_per_hour']}/h")
         + ")"),
    ]))
    out.print(table("Convergence after each change", ["At", "Change", "Status", "After",
                                                        "Ticks", "Still waiting (why)"], [
        (_dur(c["at_s"]), c["event"], c["status"],
         None if c["converged_after_s"] is None else _dur(c["converged_after_s"]), c["ticks"],
         _waiting(c["waiting"]))
        for c in r["convergence"]]))
    if r["interruptions"]:
        out.print(table("Spot interruptions", ["At", "Host", "Cause", "Workers",
                                               "All running again after"], [
            (_dur(i["at_s"]), i["host"], i["cause"], ", ".join(i["workers"]) or "none",
             _dur(i["recovery_s"]) if i["recovery_s"] is not None else
             ("never: " + ", ".join(i["never_recovered"])) if i["never_recovered"] else "-")
            for i in r["interruptions"]]))
        summary = r["interruption_summary"]
        out.print(f"Interruptions: {summary['count']}; back running after "
                  f"{_maybe(summary['median_to_running_s'])} median, "
                  f"{_maybe(summary['worst_to_running_s'])} worst (from the notice); "
                  f"workers taken before their checkpoint: {summary['workers_taken_unsaved']}")
    out.print(table("Invariants (checked every tick)", ["Invariant", "Held", "Violations",
                                                        "First"], [
        (name, "yes" if v["held"] else "NO", v["violations"],
         None if v["first"] is None else f"{_dur(v['first_at_s'])}: {v['first']}")
        for name, v in r["invariants"].items()]))
    if "policies" in r:
        _print_policies(out, r)
    if r["failed_actions"]:
        failed = ", ".join(f"{k} x{n}" for k, n in r["failed_actions"].items())
        print(f"Failed actions (injected faults show up here): {failed}")
        for e in r["first_errors"]:
            print(f"  {e}")
    for note in r["notes"]:
        print(f"note: {note}")
    sys.stdout.flush()


def _print_policies(out: Any, r: dict[str, Any]) -> None:
    d, o = r["demand"], r["oracle"]
    out.print(f"Hopper items: {d['items']}, {d['done']} done; busy worker-hours "
              f"{o['busy_worker_hours']:.2f}; oracle (fractional packing at "
              f"{o['cheapest_pool']}, ${o['price_per_slot_hour']:.4f} per slot-hour, zero "
              f"latency) ${o['cost_usd']:.4f}; on whole hosts at arrival "
              f"${o['whole_hosts_usd'] or 0:.4f}")
    out.print(table("Policies on this trace (efficiency = oracle cost / cost)",
                    ["Policy", "Cost", "Efficiency", "Wait p50", "Wait p95", "Moves/h",
                     "Items not done", "Invariants"], [
        (name, f"${p['cost_usd']:.4f}", "-" if p["efficiency"] is None
         else f"{p['efficiency']:.3f}", _maybe(p["wait_p50_s"]), _maybe(p["wait_p95_s"]),
         f"{p['moves_per_hour']:.2f}", p["items_not_done"],
         "held" if p["invariants_held"] else "BROKEN")
        for name, p in r["policies"].items()]))


def _waiting(waiting: dict[str, str]) -> str | None:
    if not waiting:
        return None
    first = next(iter(waiting.values()))
    why = first if len(first) <= 70 else first[:67] + "..."
    return f"{', '.join(waiting)}: {why}"


def _maybe(seconds: float | None) -> str:
    return "-" if seconds is None else _dur(seconds)


def _dur(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m" + (f"{sec:02d}s" if sec else "")
    return f"{m}m{sec:02d}s" if m else f"{sec}s"
