"""What `czarina controller run` leaves behind when a signal stops it: the workers and
hosts keep running (and billing) without a controller; the user should know which."""

from __future__ import annotations

from czarina_fleet.controller.runtime.compose import Fleet
from czarina_fleet.model.states import HOST_ALIVE, WORKER_ACTIVE


def left_running(fleet: Fleet, signal_name: str) -> str:
    """What a controller stopped by a signal leaves behind: workers and hosts keep
    running (and billing) without it."""
    workers = [w for w in fleet.store.workers() if w.state in WORKER_ACTIVE]
    hosts = [h for h in fleet.store.hosts() if h.state in HOST_ALIVE and h.provider != "local"]
    lines = [f"Stopped by {signal_name} (the step in progress finished; nothing was "
             "stopped)."]
    if not workers and not hosts:
        lines.append("Nothing was left running.")
        return "\n".join(lines)
    where = ", ".join(f"{w.worker_id} on {w.host_id}" for w in workers) or "none"
    lines.append(f"Left running: {len(workers)} worker(s): {where}.")
    if hosts:
        rate = sum(h.price_per_hour for h in hosts)
        shown = ", ".join(f"{h.host_id} ({h.state})" for h in hosts)
        lines.append(f"Hosts left up: {len(hosts)}: {shown}; ${rate:.4f}/h while they run.")
    lines.append("`czarina controller run` takes them up again; `czarina controller run "
                 "--once --stop-all` stops every worker (branches and commits are kept).")
    return "\n".join(lines)
