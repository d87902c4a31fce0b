"""The oracle: a lower bound on what any policy must pay for a trace's hopper items.

It runs exactly the busy worker-time (each item's duration, from its arrival, with zero
launch latency and zero wait) at the cheapest offering of the trace, packed perfectly:

    oracle = (sum of item durations) / 3600 x min over pools (price per hour / slots)

This is the *fractional* bound: every busy worker-second is charged 1/slots of a host
second at the cheapest price per slot, as if hosts could be bought by the slot. It is a
lower bound on the cost of every policy that does the same work, whatever its schedule:
a worker needs a slot for each second it works, and no slot costs less than the
cheapest offering's price per slot. (The tighter `sum over time of ceil(busy(t) /
slots) x price` bound is not used: it depends on when the items run, and a policy that
delays items to fill hosts could beat it, so it is not a lower bound for every policy.)

Work is counted only within the trace (an item arriving near the end counts up to the
end), so the bound holds for a policy that finishes everything it can; the report says
how many items each policy left unfinished.
"""

from __future__ import annotations

import math
from typing import Any

from czarina_fleet.sim.trace import LoadedTrace


def cheapest_slot(loaded: LoadedTrace) -> tuple[str | None, float]:
    """(pool, USD per slot-hour) of the cheapest offering; static and local hosts are
    free in the simulator, so a config with any has a zero bound."""
    cloud = loaded.trace.cloud
    offers = [(cloud.prices.get(p.name, cloud.default_price_per_hour) / p.slots_per_host,
               p.name) for p in loaded.cfg.fleet.pools]
    if loaded.cfg.fleet.hosts or any(w.location.kind in ("local", "remote")
                                     for w in loaded.cfg.workers):
        offers.append((0.0, "static"))
    if not offers:
        return None, 0.0
    price, pool = min(offers)
    return pool, price


def busy_hours(loaded: LoadedTrace) -> float:
    end = loaded.trace.duration
    return sum(min(i.duration, max(0.0, end - i.at)) for i in loaded.items) / 3600.0


def whole_hosts_usd(loaded: LoadedTrace) -> float | None:
    """For reference, not a bound: the items run at their arrival on whole hosts of the
    cheapest pool for this schedule, sum over time of ceil(busy / slots) x host price.
    None without pools."""
    end, cloud = loaded.trace.duration, loaded.trace.cloud
    edges = sorted([(i.at, 1) for i in loaded.items]
                   + [(min(i.at + i.duration, end), -1) for i in loaded.items])
    best = None
    for p in loaded.cfg.fleet.pools:
        price = cloud.prices.get(p.name, cloud.default_price_per_hour)
        busy, last, total = 0, 0.0, 0.0
        for t, step in edges:
            total += math.ceil(busy / p.slots_per_host) * (t - last)
            busy, last = busy + step, t
        usd = total / 3600.0 * price
        best = usd if best is None else min(best, usd)
    return None if best is None else round(best, 6)


def oracle(loaded: LoadedTrace) -> dict[str, Any]:
    pool, per_slot = cheapest_slot(loaded)
    hours = busy_hours(loaded)
    return {"bound": "fractional", "cost_usd": round(hours * per_slot, 6),
            "busy_worker_hours": round(hours, 6), "cheapest_pool": pool,
            "price_per_slot_hour": round(per_slot, 6), "wait_s": 0.0,
            "whole_hosts_usd": whole_hosts_usd(loaded)}


def efficiency(oracle_usd: float, cost_usd: float) -> float | None:
    """oracle / cost: 1.0 is perfect; None when nothing was spent."""
    if cost_usd <= 0:
        return None
    return round(oracle_usd / cost_usd, 4)
