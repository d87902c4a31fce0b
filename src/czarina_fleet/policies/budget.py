"""The budget is a constraint on launches, never exceeded: the spend of every host that
may be billing (at the price recorded at its launch) plus the quoted price of a new one
must stay within `budget_per_hour`."""

from __future__ import annotations

from collections.abc import Iterable

from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.model.states import HOST_MAY_BILL


def hourly_spend(hosts: Iterable[HostRecord], with_instance: set[str]) -> float:
    """USD/h of hosts that may bill: alive-ish states, or any host whose instance the
    provider still lists (`with_instance`), whatever the store says."""
    return sum(h.price_per_hour for h in hosts
               if h.state in HOST_MAY_BILL or h.host_id in with_instance)


def fits(spend: float, price: float, budget: float | None) -> bool:
    return budget is None or spend + price <= budget + 1e-9
