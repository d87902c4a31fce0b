"""One function per verb: gather what the verb needs, call the app, render."""

from __future__ import annotations

import argparse
from typing import Any

from czarina_fleet.cli.context import context_from
from czarina_fleet.cli.render import console, print_json, table, warn
from czarina_fleet.config import check_task_files, task_path
from czarina_fleet.errors import EXIT_OK
from czarina_fleet.model.config import FleetConfig


def config_check(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    cfg = ctx.cfg
    warnings = [*cfg.warnings, *check_task_files(cfg)]
    if args.json:
        print_json(_config_json(cfg, warnings))
        return EXIT_OK
    for w in warnings:
        warn(w)
    out = console()
    out.print(f"[bold]{ctx.config_path}[/bold] ({cfg.format}): project {cfg.project.name!r}, "
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
    s = cfg.fleet.scaling
    budget = f"${s.budget_per_hour:.2f}/h" if s.budget_per_hour else "none"
    out.print(f"Scaling: workers {s.min_workers}..{s.max_workers}, auto-scale "
              f"{'on' if s.auto_scale else 'off'}, idle shutdown after {s.idle_timeout_s:.0f}s, "
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
        "fleet": cfg.fleet.model_dump(mode="json"),
        "warnings": warnings,
    }


def _not_yet(what: str) -> int:
    from czarina_fleet.errors import NotYetAvailable

    raise NotYetAvailable(f"{what} has not landed yet")


def status(args: argparse.Namespace) -> int:
    return _not_yet("czarina status")


def scale(args: argparse.Namespace) -> int:
    return _not_yet("czarina scale")


def controller_run(args: argparse.Namespace) -> int:
    return _not_yet("czarina controller run")


def cost_report(args: argparse.Namespace) -> int:
    return _not_yet("czarina cost report")


def hosts(args: argparse.Namespace) -> int:
    return _not_yet("czarina hosts")


def inject(args: argparse.Namespace) -> int:
    return _not_yet("czarina inject")


def attach(args: argparse.Namespace) -> int:
    return _not_yet("czarina attach")


def logs(args: argparse.Namespace) -> int:
    return _not_yet("czarina logs")


def events(args: argparse.Namespace) -> int:
    return _not_yet("czarina events")
