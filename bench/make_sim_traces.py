"""Write the demand traces of examples/traces/ (working-day.json, consolidation.json)
from a fixed seed, so that how they were made is on record and they can be made again.

Run with `.venv/bin/python bench/make_sim_traces.py` (rewrites both files).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "examples" / "traces"


def fmt(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "") or "0s"


def day_items(seed: int = 7) -> list[dict[str, Any]]:
    """Bursts (standup, review, after-lunch planning, a late push) over Poisson arrivals
    (7 an hour, 3 over lunch); log-normal durations, median 25 min, 5 min to 2.5 h;
    15% are builds loading two cores."""
    rng = random.Random(seed)
    times: list[float] = []
    for start, n in ((30 * 60, 8), (2 * 3600, 4), (5 * 3600 + 15 * 60, 7), (7 * 3600, 3)):
        times += [start + rng.uniform(0, 300) for _ in range(n)]
    t = 15 * 60.0
    while True:
        t += rng.expovariate((3.0 if 4 * 3600 <= t < 5 * 3600 else 7.0) / 3600)
        if t >= 8.5 * 3600:
            break
        times.append(t)
    items = []
    for i, at in enumerate(sorted(times), start=1):
        minutes = min(150.0, max(5.0, rng.lognormvariate(math.log(25), 0.8)))
        e = {"kind": "item", "at": fmt(at), "id": f"item-{i:03d}",
             "priority": rng.choices(["critical", "high", "medium", "low"], [2, 12, 66, 20])[0],
             "duration": fmt(minutes * 60)}
        if rng.random() < 0.15:
            e["cpu"] = 2.0
        items.append(e)
    return items


def fleet(pools: list[dict[str, Any]], workers: int, **scaling: Any) -> dict[str, Any]:
    return {
        "project": {"name": "platform"},
        "fleet": {"name": "platform", "pools": pools,
                  "scaling": {"min_workers": 0, "max_workers": workers, "auto_scale": True,
                              "reconcile_interval_s": 15, **scaling}},
        "workers": [{"id": f"w{i:02d}", "branch": f"czar/w{i:02d}", "location": "auto"}
                    for i in range(1, workers + 1)],
    }


def working_day() -> dict[str, Any]:
    items = day_items()
    return {
        "name": "working-day",
        "description": f"A working day of hopper demand (08:00-19:00 as 0h-11h): "
        f"{len(items)} items in bursts (standup, review, after-lunch planning, a late push) "
        "over Poisson arrivals, 5 minutes to 2.5 hours of work each (log-normal, median 25 "
        "minutes), 15% of them builds that load two cores; 16 auto workers on 2-slot spot "
        "hosts with the controller's default timeouts; two spot interruptions with AWS's "
        "2-minute notice. Made by bench/make_sim_traces.py.",
        "seed": 7,
        "duration": "11h",
        "config": fleet([{"name": "spot", "provider": "aws", "instance_types": ["m6i.large"],
                          "regions": ["us-east-1"], "spot": True, "max_hosts": 10,
                          "slots_per_host": 2}], 16),
        "cloud": {"launch_latency": "90s", "prices": {"spot": 0.0366},
                  "on_demand_prices": {"spot": 0.096}, "notice": "aws",
                  "interruptions": [{"at": "3h10m", "worker": "w01"},
                                    {"at": "6h20m", "worker": "w02"}]},
        "events": items,
    }


def consolidation() -> dict[str, Any]:
    """A morning burst fills four 4-slot hosts; the short items finish within the hour
    and leave eight long ones spread two to a host for five more hours. The czar cannot
    tell short from long (every item says medium priority, about two hours), so the
    hopper's order does not happen to pack the long ones together."""
    rng = random.Random(11)
    items = []
    for i in range(16):
        long = i % 2 == 0
        minutes = rng.uniform(300, 330) if long else rng.uniform(20, 45)
        items.append({"kind": "item", "at": fmt(60 + 10 * i), "id": f"item-{i + 1:02d}",
                      "priority": "medium", "estimate": "2 hours",
                      "duration": fmt(minutes * 60)})
    return {
        "name": "consolidation",
        "description": "16 items at once on 4-slot on-demand hosts ($0.768/h, where a move's "
        "downtime is worth less than an hour of a host): 8 short (20-45 minutes) and 8 long "
        "(5-5.5 hours). Once the short ones are done the long ones are spread over "
        "half-empty hosts: packing them onto fewer hosts lets the others idle out. Made by "
        "bench/make_sim_traces.py.",
        "seed": 11,
        "duration": "7h",
        "config": fleet([{"name": "big", "provider": "aws", "instance_types": ["m6i.4xlarge"],
                          "regions": ["us-east-1"], "spot": False, "max_hosts": 6,
                          "slots_per_host": 4}], 16),
        "cloud": {"launch_latency": "90s", "prices": {"big": 0.768}},
        "events": items,
    }


def dump(trace: dict[str, Any]) -> str:
    """Indented JSON with one event per line (a day of items stays readable)."""
    head = json.dumps({k: v for k, v in trace.items() if k != "events"}, indent=2)
    events = ",\n".join("    " + json.dumps(e) for e in trace["events"])
    return head[:-2] + ',\n  "events": [\n' + events + "\n  ]\n}\n"


def main() -> None:
    for trace in (working_day(), consolidation()):
        path = OUT / f"{trace['name']}.json"
        path.write_text(dump(trace), encoding="utf-8")
        print(f"wrote {path} ({len(trace['events'])} items)")


if __name__ == "__main__":
    main()
