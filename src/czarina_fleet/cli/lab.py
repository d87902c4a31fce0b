"""`czarina lab interrupt HOST`: take a lab host the way a cloud takes a spot instance,
so recovery can be watched on real hosts (docs/lab.md). With `--notice SECONDS` the
host's metadata service announces it first (in the shape of the cloud its pool stands
in for), and the host is killed at the deadline; without, it is killed at once.
`--rebalance` only posts a rebalance recommendation. Needs root, as the lab does."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from czarina_fleet.cli.context import context_from
from czarina_fleet.errors import EXIT_OK, UserError
from czarina_fleet.remote import lab_spot, netns


def add_lab_parser(verb: Callable[..., argparse.ArgumentParser],
                   verbs: argparse._SubParsersAction,  # type: ignore[type-arg]
                   parser_class: type[argparse.ArgumentParser]) -> None:
    lab = verbs.add_parser("lab", help="lab hosts (network namespaces on this machine)")
    sub = lab.add_subparsers(dest="sub", metavar="SUB", parser_class=parser_class,
                             required=True)
    p = verb("interrupt", lab_interrupt, "take a lab host as a cloud takes a spot "
             "instance: with --notice SECONDS ahead (through its metadata service), or "
             "at once", sub)
    p.add_argument("host", metavar="HOST", help="the lab host's id (czarina hosts)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--notice", type=_seconds, metavar="SECONDS",
                     help="announce it this long ahead, then take it (default: no notice)")
    how.add_argument("--rebalance", action="store_true",
                     help="only post a rebalance recommendation (the host stays)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"--notice must be in (0, 3600] seconds, got {text}")
    return value


def lab_interrupt(args: argparse.Namespace) -> int:
    cfg = context_from(args).cfg
    roots = {Path(str(p.options.get("lab_root") or netns.LAB_ROOT))
             for p in cfg.fleet.pools if p.provider == "lab"}
    if not roots:
        raise UserError(f"{cfg.source}: no pool with provider \"lab\": lab interrupt only "
                        "takes lab hosts")
    if os.geteuid() != 0:
        raise UserError("interrupting a lab host needs root (as the lab does): run it "
                        "with sudo")
    hosts = [h for root in sorted(roots) for h in netns.list_hosts(root, cfg.fleet_name)]
    host = next((h for h in hosts if h.host_id == args.host), None)
    if host is None:
        known = ", ".join(sorted(h.host_id for h in hosts)) or "none"
        raise UserError(f'no lab host "{args.host}" in fleet {cfg.fleet_name} '
                        f"(its lab hosts: {known})")
    root = Path(host.state_dir).parent
    if args.rebalance:
        lab_spot.post_notice(host, 0, kind="rebalance")
        print(f"Rebalance recommendation posted on {host.host_id}; the host stays.")
        return EXIT_OK
    if args.notice:
        deadline = lab_spot.post_notice(host, args.notice)
        print(f"Notice posted on {host.host_id}: taken at "
              f"{time.strftime('%H:%M:%S', time.localtime(deadline))} "
              f"({args.notice:.0f}s from now); waiting...", flush=True)
        time.sleep(max(0.0, deadline - time.time()))
    taken = lab_spot.take(host, root)
    print(f"Lab host {host.host_id} taken at "
          f"{time.strftime('%H:%M:%S', time.localtime(taken))}"
          + ("" if args.notice else " (no notice)") + ".")
    return EXIT_OK
