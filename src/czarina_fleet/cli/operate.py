"""The verbs that run the fleet or reach into a worker: controller run, inject, attach,
logs; and the cost export. `scale` is cli/scale.py's, `hosts` cli/hosts.py's."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from czarina_fleet.cli.context import Context, context_from, open_fleet_for
from czarina_fleet.cli.leftover import left_running
from czarina_fleet.cli.live_view import LiveView, capture_logs
from czarina_fleet.cli.logs import configure_logging
from czarina_fleet.cli.render import console, print_plan, printable
from czarina_fleet.controller.runtime.compose import Fleet
from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.controller.state.lock import LockHeld
from czarina_fleet.controller.state.store import Store
from czarina_fleet.cost.export import ReportFormat, export_report
from czarina_fleet.cost.price_notes import price_notes
from czarina_fleet.cost.report import iso_utc
from czarina_fleet.cost.resource_ids import resource_ids
from czarina_fleet.errors import EXIT_FAILURE, EXIT_OK, FleetError, UserError, did_you_mean
from czarina_fleet.model.config import FleetConfig
from czarina_fleet.model.fleet import HostRecord
from czarina_fleet.remote.ops import attach_argv, capture_pane, inject_task
from czarina_fleet.remote.tmux import require_own
from czarina_fleet.remote.validate import check_task_text


def controller_run(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    cfg = ctx.cfg
    if args.stop_all:
        if not args.once:
            raise UserError("--stop-all goes with --once")
        cfg = cfg.model_copy(update={"workers": [], "stop_reason": "--stop-all"})
    # On a terminal a live view; plain log lines otherwise (pipes, files, CI, json logs).
    live = (sys.stdout.isatty() and not args.once and not args.json
            and args.log_format == "text")
    logs = capture_logs() if live else None
    if logs is None:
        configure_logging(args.log_format)
    interval = args.interval or cfg.fleet.scaling.reconcile_interval_s
    return asyncio.run(_controller(ctx, cfg, interval, args, logs))


async def _controller(ctx: Context, cfg: FleetConfig, interval: float,
                      args: argparse.Namespace, logs: Any = None) -> int:
    async with open_fleet_for(ctx, cfg, controller=True) as fleet:
        controller = fleet.controller(interval)
        if args.duration:
            asyncio.get_running_loop().call_later(args.duration, controller.stop)
        code = await _run_controller(fleet, controller, args, logs)
        fleet.accrue_costs()
        if controller.stopped_by is not None:
            print(left_running(fleet, controller.stopped_by), file=sys.stderr)
        if args.once and code == 0:
            try:
                with fleet.store.lock():
                    await fleet.sweep().run_once()
            except LockHeld:
                pass  # another controller took over meanwhile; it sweeps
        if args.once and controller.last is not None:
            print_plan(list(controller.last.actions), controller.last.errors, args.json,
                        title="Actions taken")
            for r in controller.last.failed:
                print(printable(f"failed: {r.action.describe()}: {r.error}"),
                      file=sys.stderr)
            if controller.last.failed or controller.last.errors:
                return EXIT_FAILURE
        return code


async def _run_controller(fleet: Fleet, controller: Controller, args: argparse.Namespace,
                          logs: Any) -> int:
    """The controller, with the live view beside it when there is a terminal."""
    run = controller.run(fleet.store.lock(), once=args.once, metrics_port=args.metrics_port)
    if logs is None:
        return await run
    ends_at = time.monotonic() + args.duration if args.duration else None
    done = asyncio.Event()
    view = asyncio.create_task(LiveView(fleet, controller, logs, ends_at).show(done))
    try:
        return await run
    finally:
        done.set()
        await view


def inject(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    text, source = _task_input(args)

    async def go() -> int:
        async with open_fleet_for(ctx) as fleet:
            host = _worker_host(fleet, args.worker)
            await inject_task(fleet.access.runner(host), args.worker, text, fleet.access.tmux,
                              owner=fleet.fleet_id)
            fleet.store.record_event("worker", args.worker,
                                     f"task injected from {source} ({len(text)} chars)")
        print(f"Injected {source} into {args.worker} on {host.host_id}.")
        return EXIT_OK

    return asyncio.run(go())


def _task_input(args: argparse.Namespace) -> tuple[str, str]:
    """The task (checked: not empty, no control character but newline and tab) and
    where it came from: --text, a file, or - (stdin)."""
    if (args.text is None) == (args.file is None):
        raise UserError("give the task as --text TEXT, as a FILE, or as - to read stdin "
                        "(one of them): czarina inject WORKER --text 'add a CHANGELOG entry'")
    if args.text is not None:
        text, source = args.text, "--text"
    elif args.file == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        text, source = _read_task(Path(args.file)), args.file
    try:
        return check_task_text(text), source
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None


def _read_task(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:  # most likely the task itself, typed without --text
        raise UserError(f'no task file "{path}"; to inject text itself, write '
                        f"czarina inject WORKER --text {shlex.quote(str(path))}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the task file: {e}") from None


def _worker_host(fleet: Fleet, worker_id: str) -> HostRecord:
    rec = fleet.store.worker(worker_id)
    if rec is None or rec.host_id is None:
        known = [w.id for w in fleet.cfg.workers]
        if worker_id not in known:
            raise UserError(f'no worker "{worker_id}"{did_you_mean(worker_id, known)}')
        raise FleetError(f"worker {worker_id} is not running anywhere yet "
                         "(run `czarina controller run --once`)")
    host = fleet.store.host(rec.host_id)
    if host is None:
        raise FleetError(f"worker {worker_id}'s host {rec.host_id} is unknown")
    return host


def logs(args: argparse.Namespace) -> int:
    ctx = context_from(args)

    async def go() -> int:
        async with open_fleet_for(ctx) as fleet:
            host = _worker_host(fleet, args.worker)
            text = await capture_pane(fleet.access.runner(host), args.worker, args.lines,
                                      fleet.access.tmux, owner=fleet.fleet_id)
        text = printable(text)  # what the agent printed, shown, never acted on
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK

    return asyncio.run(go())


def attach(args: argparse.Namespace) -> int:
    ctx = context_from(args)

    async def argv() -> list[str]:
        async with open_fleet_for(ctx) as fleet:
            host = _worker_host(fleet, args.worker)
            # exec cannot check the mark: check it first, never attach to a stranger's
            await require_own(fleet.access.runner(host), args.worker, fleet.fleet_id,
                              fleet.access.tmux)
            ssh = None if host.provider == "local" else fleet.access.ssh_host(host)
            return attach_argv(ssh, args.worker, fleet.access.tmux)

    cmd = asyncio.run(argv())
    os.execvp(cmd[0], cmd)
    return EXIT_FAILURE  # not reached


def cost_report(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    store = Store(ctx.state_path, ctx.clock)
    try:
        since, until = _when(args.since, ctx), _when(args.until, ctx)
        entries = store.ledger(since, until)
        hosts = store.hosts()
        ids = resource_ids(hosts, ctx.cfg.fleet_name,
                           {p.name: p.options for p in ctx.cfg.fleet.pools}, os.environ)
        notes = price_notes(hosts, {e.host_id for e in entries})
        watermark = store.ledger_watermark()
    finally:
        store.close()
    out = Path(args.output) if args.output else None
    fmt: ReportFormat = "json" if args.json and args.format == "table" else args.format
    export_report(entries, fmt, out, by=args.by, fleet=ctx.cfg.fleet_name, resource_ids=ids,
                  prices=notes, console=console())
    if fmt == "table" and out is None:
        upto = iso_utc(watermark) if watermark else "never (no controller has run)"
        print(f"Costs accrued until {upto}; the controller accrues them as it runs.")
    return EXIT_OK


def _when(text: str | None, ctx: Context) -> float | None:
    from datetime import UTC, datetime

    if text is None:
        return None
    if text.replace(".", "", 1).isdigit():
        return ctx.clock.now() - float(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f'"{text}" is not a time: give an ISO date such as 2026-11-01 or '
                        "2026-11-01T12:00, or a number of seconds ago") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
