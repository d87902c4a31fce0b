"""`czarina doctor`: check every host and pool the workers need, change nothing.

Prints a table (Subject, Check, Result, Detail), then each problem in full with its fix
(plain text, so a command to copy is never wrapped); `--json` prints the same report.
Exit 0 when nothing blocks a worker, 1 when something does.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys

from czarina_fleet.cli.context import Context, context_from
from czarina_fleet.cli.render import console, print_json, table
from czarina_fleet.config.origin import URL_SETTING, repository_for
from czarina_fleet.controller.core.desired import desired_from
from czarina_fleet.controller.runtime.doctor import run_doctor
from czarina_fleet.controller.runtime.doctor_pools import check_pool
from czarina_fleet.controller.runtime.doctor_report import Check, DoctorReport, RepoPlan
from czarina_fleet.controller.state.store import Store
from czarina_fleet.errors import EXIT_FAILURE, EXIT_OK
from czarina_fleet.model.config import FleetConfig, PoolSpec
from czarina_fleet.model.fleet import Overrides
from czarina_fleet.providers.base import Provider
from czarina_fleet.providers.registry import build_provider
from czarina_fleet.remote.git_relay import carries_credential
from czarina_fleet.remote.hostkeys import USER_KNOWN_HOSTS
from czarina_fleet.remote.ssh_pool import SshPool

RESULT = {True: "ok", False: "FAIL", None: "-"}


def doctor(args: argparse.Namespace) -> int:
    ctx = context_from(args)
    report = asyncio.run(_doctor(ctx, args))
    if args.json:
        print_json(report.as_json())
    else:
        _render(report, ctx)
    return EXIT_FAILURE if report.blocked else EXIT_OK


async def _doctor(ctx: Context, args: argparse.Namespace) -> DoctorReport:
    """No store or fleet identity is created: doctor writes nothing, even locally."""
    cfg = ctx.cfg
    desired = desired_from(cfg, _overrides(ctx))

    def factory(spec: PoolSpec) -> Provider:
        return build_provider(spec, cfg.fleet_name, clock=ctx.clock)

    async def pool_checks(name: str) -> list[Check]:
        return await check_pool(desired.pools[name], factory)

    pool = SshPool(clock=ctx.clock)
    try:
        # The user's known_hosts files, exactly as the controller reaches static hosts;
        # every key is verified against them.
        return await run_doctor(cfg, desired, pool, known_hosts=USER_KNOWN_HOSTS,
                                repo=_repo_plan(cfg),
                                trust_command=lambda host: _trust_command(args, host),
                                pool_checks=pool_checks)
    finally:
        await pool.close()


def _repo_plan(cfg: FleetConfig) -> RepoPlan:
    """What hosts clone: the configured URL or the origin remote, unless the controller
    relays git for them (git_transport controller, or a URL holding a credential)."""
    repo = repository_for(cfg)
    url = repo.fetch_url
    if url and (cfg.fleet.git_transport == "controller" or carries_credential(url)):
        return RepoPlan(None, "not needed: the controller fetches and pushes for the hosts "
                              "(git_transport controller)", blocking=False)
    if not url:
        return RepoPlan(None, f"no repository to clone: {repo.source}; add the remote "
                              f"(git remote add origin URL) or set {URL_SETTING[cfg.format]}")
    return RepoPlan(url)


def _overrides(ctx: Context) -> Overrides:
    """`czarina scale` overrides, if a state database exists (read, never created)."""
    if not ctx.state_path.is_file():
        return Overrides()
    store = Store(ctx.state_path, ctx.clock)
    try:
        return store.get_overrides()
    finally:
        store.close()


def _trust_command(args: argparse.Namespace, host_id: str) -> str:
    """The exact command to run, with the same --config/--state as this one."""
    words = ["czarina"]
    if args.config:
        words += ["--config", args.config]
    if args.state:
        words += ["--state", args.state]
    return shlex.join([*words, "hosts", "trust", host_id])


def _render(report: DoctorReport, ctx: Context) -> None:
    problems = [c for c in report.checks if c.ok is False]
    rows = []
    for c in report.checks:
        detail = f"problem {problems.index(c) + 1}, below" if c.ok is False else c.detail
        rows.append((c.subject, c.check, RESULT[c.ok], detail))
    console().print(table(f"Doctor ({ctx.cfg.fleet_name})",
                          ["Subject", "Check", "Result", "Detail"], rows))
    if not report.checks:
        print("Nothing to check: every worker is local and the config names no host or pool.")
    out = sys.stdout
    for i, c in enumerate(problems, 1):
        out.write(f"{i}. {c.subject}: {c.check}: {c.detail}\n")
    blocked = report.blocked_workers
    if blocked:
        out.write(f"{len(problems)} problem(s); workers blocked: {', '.join(blocked)}\n")
    elif problems:
        out.write(f"{len(problems)} problem(s), on hosts or pools no worker needs yet.\n")
    else:
        out.write("Nothing blocks a worker.\n")
