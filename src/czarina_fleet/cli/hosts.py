"""`czarina hosts`: every host with reachability, slots, load and why it takes no
workers; `hosts trust HOST` (record a host key once its fingerprint is confirmed) and
`hosts dial-in HOST` (the steps that put a host behind NAT on a reverse tunnel)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from czarina_fleet.cli.context import Context, context_from, open_fleet_for
from czarina_fleet.cli.dashboard import with_retry
from czarina_fleet.cli.render import console, print_json, print_strangers, table
from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.controller.runtime.compose import Fleet
from czarina_fleet.controller.runtime.doctor import ssh_host_for
from czarina_fleet.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    FleetError,
    UserError,
    did_you_mean,
)
from czarina_fleet.model.config import RebalanceSettings
from czarina_fleet.model.fleet import HostProbe, HostRecord
from czarina_fleet.model.states import HOST_ALIVE, WORKER_ACTIVE
from czarina_fleet.policies.load import load_note
from czarina_fleet.policies.worker_health import host_reason
from czarina_fleet.remote.hostkeys import fingerprint, record_host_key
from czarina_fleet.remote.hosts import SshHost


def hosts(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    if args.action == "trust":
        if not args.host:
            raise UserError("name the host to trust: czarina hosts trust HOST")
        return asyncio.run(_trust(ctx, args.host, args.fingerprint))
    if args.action == "dial-in":
        return _dial_in(ctx, args.host, args.controller, args.ssh_port)

    async def go() -> int:
        async with open_fleet_for(ctx) as fleet:
            probes = await fleet.probe_hosts()
            workers = fleet.store.workers()
            dial_in = {h.name for h in fleet.cfg.fleet.hosts if h.dials_in}
            rows = []
            for h in fleet.store.hosts():
                p = probes.get(h.host_id)
                used = sum(1 for w in workers if w.host_id == h.host_id
                           and w.state in WORKER_ACTIVE)
                rows.append({
                    "host": h.host_id, "provider": h.provider, "state": str(h.state),
                    "address": h.address, "reachable": None if p is None else p.reachable,
                    "error": p.error if p else None, "slots": h.slots, "used": used,
                    "free": max(0, h.slots - used) if h.state in HOST_ALIVE else 0,
                    "load_1m": p.load_1m if p else None, "cpus": p.cpus if p else None,
                    "mem_free_mb": p.mem_free_mb if p else None,
                    "usd_per_hour": h.price_per_hour, "pool": h.pool,
                    "tunnel": f"{h.address}:{h.port}" if h.host_id in dial_in else None,
                    **_host_why(h, p, fleet.clock.now(), fleet.cfg.fleet.rebalance),
                    "not_ours": list(p.foreign) if p else [],
                })
        if args.json:
            print_json([{k: v for k, v in r.items() if k != "why_shown"} for r in rows])
            return EXIT_OK
        reach: dict[object, str] = {None: "-", True: "yes", False: "NO"}
        console().print(table("Hosts", ["Host", "Provider", "State", "Reachable", "Slots used",
                                        "Free", "Load", "CPUs", "$/h", "Why"], [
            (r["host"], r["provider"] + (f" (dials in: {r['tunnel']})" if r["tunnel"] else ""),
             r["state"], reach[r["reachable"]], r["used"], r["free"],
             r["load_1m"], r["cpus"], f"{r['usd_per_hour']:.4f}", r["why_shown"]) for r in rows
        ]))
        if not rows:
            print("No hosts yet: run `czarina controller run --once` to bring the fleet up.")
        print_strangers({r["host"]: r["not_ours"] for r in rows})
        return EXIT_OK

    return asyncio.run(go())


def _host_why(host: HostRecord, probe: HostProbe | None, now: float,
              rebalance: RebalanceSettings) -> dict[str, Any]:
    """Why a host takes no workers (its last error) and when it is tried again; else
    whether it is over the load thresholds, and what the controller does about it."""
    waiting = host_reason(host, probe)
    why = waiting.reason if waiting else None
    retry = waiting.retry_at if waiting else None
    if why is None and host.state in HOST_ALIVE:
        why = load_note(probe, rebalance)
    return {"why": why, "retry_at": retry, "why_shown": with_retry(why, retry, now)}


async def _trust(ctx: Context, host_id: str, expected: str | None) -> int:
    """Show the key HOST presents; record it only once the user has confirmed its
    fingerprint (typed at the prompt, or given with --fingerprint)."""
    async with open_fleet_for(ctx) as fleet:
        ssh = _ssh_host(fleet, host_id)
        if all(h.host_id != host_id for h in fleet.pool.hosts()):
            fleet.pool.add(ssh)
        key = await fleet.pool.server_key(host_id)
        if key is None:
            raise FleetError(f"host {host_id} ({ssh.address}) cannot be reached to read its key")
        shown = fingerprint(key)
        print(f"{host_id} ({ssh.address} port {ssh.port or 22}) presents {shown}")
        sha = shown.split()[-1]
        if expected is not None:
            if expected.strip() not in (sha, shown):
                print(f"NOT trusted: it does not match --fingerprint {expected}", file=sys.stderr)
                return EXIT_FAILURE
        elif not sys.stdin.isatty():
            raise UserError("check that fingerprint with the host's owner, then run again "
                            f"with --fingerprint {sha}")
        elif input("Does it match what the host's owner says? [y/N] ").strip().lower() != "y":
            print("Not trusted.")
            return EXIT_FAILURE
        written = record_host_key(ssh.known_hosts, ssh.address, ssh.port, key)
        print(f"Trusted: recorded in {written}")
        return EXIT_OK


def _ssh_host(fleet: Fleet, host_id: str) -> SshHost:
    record = fleet.store.host(host_id)
    if record is not None and record.provider != "local":
        return fleet.access.ssh_host(record)
    static = {h.name: h for h in fleet.cfg.fleet.hosts}
    if host_id in static:
        return SshHost.from_static(static[host_id], known_hosts=fleet.access.known_hosts)
    fixed = desired_from(fleet.cfg, fleet.store.get_overrides()).fixed_hosts.get(host_id)
    if fixed is not None and fixed.provider == "static":  # a literal remote:[user@]host[:port]
        return ssh_host_for(fixed, fleet.cfg, fleet.access.known_hosts)
    known = sorted(static) + [h.host_id for h in fleet.store.hosts() if h.provider != "local"]
    raise UserError(f'no remote host "{host_id}"{did_you_mean(host_id, known)}')


def _dial_in(ctx: Context, host_id: str | None, controller: str | None,
             ssh_port: int | None) -> int:
    """Print the three steps that put a host behind NAT on a reverse tunnel."""
    from czarina_fleet.remote.tunnel import authorized_keys_line, dial_in_script

    hosts = {h.name: h for h in ctx.cfg.fleet.hosts if h.dials_in}
    if host_id not in hosts:
        raise UserError(f'no host "{host_id}" with "dials_in": true in fleet.hosts'
                        f"{did_you_mean(host_id or '', hosts)}; add one with \"host\": "
                        '"127.0.0.1" and "port": its tunnel port')
    if not controller:
        raise UserError("say where the host logs in: --controller USER@ADDRESS (this "
                        "machine, as the host reaches it)")
    port = hosts[host_id].port or 0
    example = authorized_keys_line("ssh-ed25519 AAAA", port, host_id).rsplit(" ", 2)[0]
    print(f"1. On {host_id}, make its tunnel key:\n"
          "   ssh-keygen -t ed25519 -N '' -f ~/.ssh/czarina_tunnel\n"
          f"2. Here, in ~/.ssh/authorized_keys of {controller.split('@')[0]}, add its public "
          "key with these options (it may then open 127.0.0.1:"
          f"{port} here and nothing else):\n   {example} <contents of czarina_tunnel.pub>\n"
          f"3. On {host_id}, keep this running (a systemd unit or tmux), after checking "
          "this machine's host key once (ssh-keyscan):\n")
    print(dial_in_script(controller, port, ssh_port=ssh_port))
    print(f"Then trust {host_id}'s own host key: czarina hosts trust {host_id}")
    return EXIT_OK
