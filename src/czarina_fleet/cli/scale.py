"""`czarina scale`: change the desired counts or a worker's location (overrides kept in
the store), print the plan with --dry-run, else converge the fleet to it."""

from __future__ import annotations

import argparse
import asyncio

from czarina_fleet.cli.context import Context, context_from, open_fleet_for
from czarina_fleet.cli.render import console, print_json, print_plan, printable
from czarina_fleet.config import check_location
from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.controller.runtime.compose import Fleet
from czarina_fleet.controller.state.lock import LockHeld
from czarina_fleet.controller.state.override_tables import KEEP
from czarina_fleet.controller.state.store import Store
from czarina_fleet.errors import EXIT_FAILURE, EXIT_OK, UserError, did_you_mean
from czarina_fleet.model.fleet import Overrides

CONVERGE_ROUNDS = 12  # `czarina scale` stops converging after this many empty-handed rounds


def scale(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    overrides = _new_overrides(ctx, args)
    if args.dry_run:
        return asyncio.run(_dry_run(ctx, overrides, args.json))
    store = Store(ctx.state_path, ctx.clock)
    try:
        store.set_overrides(
            min_workers=overrides.min_workers if args.min_workers is not None or args.reset
            else KEEP,
            max_workers=overrides.max_workers if args.max_workers is not None or args.reset
            else KEEP,
            auto_scale=overrides.auto_scale if args.auto is not None or args.reset else KEEP,
            locations=_location_changes(args, store.get_overrides()),
        )
    finally:
        store.close()
    return asyncio.run(_converge(ctx, args.json))


def _new_overrides(ctx: Context, args: argparse.Namespace) -> Overrides:
    """The overrides after this command, validated against the config (exit 2 if bad)."""
    cfg = ctx.cfg
    if (args.worker is None) != (args.to is None):
        raise UserError("give a worker and a location together: czarina scale WORKER --to "
                        "LOCATION")
    store = Store(ctx.state_path, ctx.clock)
    try:
        old = Overrides() if args.reset else store.get_overrides()
    finally:
        store.close()
    locations = dict(old.locations)
    if args.worker is not None:
        if cfg.worker(args.worker) is None:
            hint = did_you_mean(args.worker, [w.id for w in cfg.workers])
            raise UserError(f'no worker "{args.worker}" in {ctx.config_path}{hint}')
        try:  # the same checks as `config check` (known host, pool, GUI-only agent)
            check_location(cfg, args.worker, args.to)
        except UserError as e:
            raise UserError(f"--to {args.to}: {e.detail}") from None
        locations[args.worker] = args.to
    new = Overrides(
        min_workers=args.min_workers if args.min_workers is not None else old.min_workers,
        max_workers=args.max_workers if args.max_workers is not None else old.max_workers,
        auto_scale=args.auto if args.auto is not None else old.auto_scale,
        locations=locations,
    )
    lo = new.min_workers if new.min_workers is not None else cfg.fleet.scaling.min_workers
    hi = new.max_workers if new.max_workers is not None else cfg.fleet.scaling.max_workers
    if lo > hi:
        raise UserError(f"min workers ({lo}) would be above max workers ({hi}): "
                        "lower --min or raise --max")
    desired = desired_from(cfg, new)
    if desired.problems:
        raise UserError("; ".join(desired.problems))
    return new


def _location_changes(args: argparse.Namespace, old: Overrides) -> dict[str, str | None]:
    changes: dict[str, str | None] = {}
    if args.reset:
        changes = {w: None for w in old.locations}
    if args.worker is not None:
        changes[args.worker] = args.to
    return changes


async def _dry_run(ctx: Context, overrides: Overrides, as_json: bool) -> int:
    async with open_fleet_for(ctx) as fleet:
        desired = desired_from(ctx.cfg, overrides)
        observed, errors = await fleet.reconciler.observer.observe(desired)
        actions = plan(desired, observed, ctx.clock.now())
    print_plan(actions, errors, as_json, title="Plan (dry run: nothing was changed)")
    return EXIT_OK


async def _converge(ctx: Context, as_json: bool) -> int:
    """Apply the change now (unless a running controller will), showing progress."""
    async with open_fleet_for(ctx, controller=True) as fleet:
        try:
            with fleet.store.lock():
                return await _converge_locked(fleet, as_json)
        except LockHeld as e:
            print(f"Stored. {e}; it applies the change on its next step.")
            return EXIT_OK


async def _converge_locked(fleet: Fleet, as_json: bool) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    failed = 0
    done: list[dict[str, str]] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                  console=console(), disable=as_json, transient=False) as progress:
        task = progress.add_task("converging", total=None)
        for _ in range(CONVERGE_ROUNDS):
            result = await fleet.reconciler.reconcile_once()
            for r in result.results:
                progress.console.print(printable(
                    f"  {r.outcome:7} {r.action.describe()}" + (f": {r.error}" if r.error
                                                                else "")), markup=False)
                done.append({"action": r.action.describe(), "outcome": r.outcome,
                             "error": r.error or ""})
            failed = len(result.failed)
            if not result.actions:
                break
            progress.update(task, description=f"converging: {len(result.actions)} actions")
            await asyncio.sleep(1)
        progress.update(task, description="converged" if not failed else "some actions failed")
    if as_json:
        print_json({"results": done})
    return EXIT_OK if not failed else EXIT_FAILURE
