"""The verbs that read: config check, status (the worker dashboard), events. One
function per verb: gather what the verb needs, call the app, render."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict
from typing import Any

from rich.live import Live
from rich.table import Table

from czarina_fleet.cli.context import Context, context_from, open_fleet_for
from czarina_fleet.cli.dashboard import COLUMNS, WorkerRow, dashboard_rows
from czarina_fleet.cli.render import console, print_json, print_strangers, table, warn
from czarina_fleet.config import check_task_files, task_path
from czarina_fleet.config.origin import clone_problems, repository_for
from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.controller.state.store import Store
from czarina_fleet.cost.report import iso_utc
from czarina_fleet.errors import (
    EXIT_OK,
    redact_credentials,
)
from czarina_fleet.hopper import hopper_dir
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.model.fleet import Overrides


def config_check(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    cfg = ctx.cfg
    repo = repository_for(cfg)
    blocked, notes = clone_problems(cfg, repo)  # remote workers that cannot clone
    warnings = [*cfg.warnings, *check_task_files(cfg),
                *desired_from(cfg, Overrides()).problems, *blocked, *notes]
    if args.json:
        print_json({**_config_json(cfg, warnings), "repository": {
            "url": repo.shown, "push_url": redact_credentials(repo.push_url or "") or None,
            "source": repo.source}, "cannot_start": blocked})
        return EXIT_OK
    for w in warnings:
        warn(w)
    out = console()
    out.print(f"{ctx.config_path} ({cfg.format}): project {cfg.project.name!r}, "
              f"fleet {cfg.fleet_name!r}, {len(cfg.workers)} workers")
    out.print(table("Workers", ["Worker", "Agent", "Branch", "Location", "Task file"], [
        (w.id, w.agent, w.branch, str(w.location), _task(cfg, w.id)) for w in cfg.workers
    ]))
    if cfg.fleet.hosts:
        out.print(table("Hosts", ["Host", "Address", "User", "Port", "Work dir", "Slots"], [
            (h.name, h.host, h.user, h.port, h.work_dir, h.slots) for h in cfg.fleet.hosts
        ]))
    if cfg.fleet.pools:
        out.print(table("Pools", ["Pool", "Provider", "Types", "Regions", "Spot", "Hosts"], [
            (p.name, p.provider, ",".join(p.instance_types), ",".join(p.regions),
             "yes" if p.spot else "no", f"{p.min_hosts}..{p.max_hosts}")
            for p in cfg.fleet.pools
        ]))
    push = f", push to {redact_credentials(repo.push_url)}" if repo.push_url and \
        repo.push_url != repo.fetch_url else ""
    out.print(f"Repository remote hosts clone: {repo.shown} ({repo.source}{push})")
    s = cfg.fleet.scaling
    budget = f"${s.budget_per_hour:.2f}/h" if s.budget_per_hour else "none"
    d = desired_from(cfg, Overrides(), hopper_in_use=hopper_dir(cfg.project_root).is_dir())
    hopper = (f" (hopper-driven: a worker without a task file is idle after "
              f"{cfg.fleet.health.hopper_idle_after_s:.0f}s without an item)"
              if d.hopper_driven else "")
    out.print(f"Scaling: workers {s.min_workers}..{s.max_workers}, auto-scale "
              f"{'on' if s.auto_scale else 'off'}, idle shutdown after "
              f"{d.host_idle_after_s:.0f}s{hopper}, "
              f"budget {budget}, reconcile every {s.reconcile_interval_s:.0f}s")
    return EXIT_OK


def _task(cfg: FleetConfig, worker_id: str) -> str | None:
    spec = cfg.worker(worker_id)
    path = task_path(cfg, spec) if spec else None
    return str(path) if path else None


def _config_json(cfg: FleetConfig, warnings: list[str]) -> dict[str, Any]:
    return {
        "source": str(cfg.source),
        "format": cfg.format,
        "project": cfg.project.model_dump(),
        "fleet_name": cfg.fleet_name,
        "workers": [
            {
                "id": w.id, "agent": w.agent, "branch": w.branch,
                "task_file": _task(cfg, w.id), "location": str(w.location),
                "location_kind": w.location.kind, "description": w.description,
                "role": w.role, "defined_at": w.where,
            }
            for w in cfg.workers
        ],
        "fleet": _fleet_json(cfg),
        "warnings": warnings,
    }


def _fleet_json(cfg: FleetConfig) -> dict[str, Any]:
    fleet = cfg.fleet.model_dump(mode="json")
    for key in ("repository_url", "repository_push_url"):  # may carry a token: hide it
        if fleet.get(key):
            fleet[key] = redact_credentials(fleet[key])
    return fleet


def status(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    return asyncio.run(_status(ctx, args))


async def _status(ctx: Context, args: argparse.Namespace) -> int:
    # One fleet (store, SSH connections) for the whole command: --watch re-probes over
    # the connections it already has instead of reconnecting every refresh.
    cfg = ctx.cfg
    health = cfg.fleet.health
    async with open_fleet_for(ctx) as fleet:

        strangers: dict[str, list[str]] = {}

        async def rows() -> list[WorkerRow]:
            probes = await fleet.probe_hosts()
            strangers.clear()
            strangers.update({h: list(p.foreign) for h, p in probes.items() if p.foreign})
            now = ctx.clock.now()
            return dashboard_rows(fleet.reconciler.desired(), fleet.store.workers(),
                                  fleet.store.hosts(), probes, now,
                                  slow_after_s=health.slow_after_s,
                                  stuck_after_s=health.stuck_after_s,
                                  moves=fleet.store.move_events(now - 3600))

        async def render() -> Table:
            found = await rows()
            now = ctx.clock.now()
            return table(f"Workers ({cfg.fleet_name})", COLUMNS, [r.cells(now) for r in found])

        if args.json:
            found = [r.as_json() for r in await rows()]
            print_json({"fleet": cfg.fleet_name, "fleet_id": fleet.fleet_id,
                        "at": ctx.clock.now(), "workers": found, "not_ours": strangers})
            return EXIT_OK
        if not args.watch:
            console().print(await render())
            print_strangers(strangers)
            return EXIT_OK
        with Live(await render(), console=console(), screen=False, auto_refresh=False) as live:
            while True:
                await asyncio.sleep(args.every)
                live.update(await render(), refresh=True)


def events(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    store = Store(ctx.state_path, ctx.clock)
    try:
        evs = store.events(limit=args.limit)
    finally:
        store.close()
    if args.json:
        print_json([asdict(e) for e in evs])
        return EXIT_OK
    console().print(table("Events", ["Time (UTC)", "Entity", "Id", "From", "To", "Reason"], [
        (iso_utc(e.ts), e.entity, e.entity_id, e.from_state, e.to_state, e.reason) for e in evs
    ]))
    return EXIT_OK


