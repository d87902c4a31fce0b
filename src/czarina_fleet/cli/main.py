"""`czarina`: the command line. Thin: parse arguments, call the app, render.

Exit codes: 0 success, 1 an operational failure, 2 a usage or configuration error.
A user's mistake is printed as one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from czarina_fleet.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    FleetError,
    UserError,
    printable,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 too, but with our wording
        self.print_usage(sys.stderr)
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from czarina_fleet.cli import commands as c
    from czarina_fleet.cli import operate as o
    from czarina_fleet.cli.hosts import hosts
    from czarina_fleet.cli.scale import scale

    parser = _Parser(prog="czarina", description="Run Czarina workers on local, SSH and "
                     "spot cloud hosts: a reconciling autoscaling controller.",
                     epilog="Also installed as `czarina-fleet`. As `czarina`, a verb that is "
                     "not listed here (launch, init, daemon, closeout, ...) runs upstream "
                     "Czarina's `czarina` when it is installed (see docs/cli.md).")
    parser.add_argument("--config", metavar="PATH", help="config.json or config.sh "
                        "(default: .czarina/config.json, then config.sh, here or above)")
    parser.add_argument("--state", metavar="PATH", help="state database "
                        "(default: .czarina/fleet.db beside the config)")
    parser.add_argument("--version", action="version", version=_version())
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    verbs.required = True

    def verb(name: str, run: Callable[[argparse.Namespace], int], help: str,
             sub: argparse._SubParsersAction | None = None) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        p = (sub or verbs).add_parser(name, help=help, description=help)
        p.set_defaults(run=run)
        p.add_argument("--json", action="store_true", help="print JSON instead of tables")
        return p

    cfg = verbs.add_parser("config", help="configuration").add_subparsers(
        dest="sub", metavar="SUB", parser_class=_Parser, required=True)
    verb("check", c.config_check, "validate and print the normalized configuration", cfg)

    p = verb("status", c.status, "the worker dashboard")
    p.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    p.add_argument("--every", type=float, default=5.0, metavar="S", help="watch refresh period")

    p = verb("scale", scale, "change desired counts or a worker's location, then converge")
    p.add_argument("--min", type=_count, dest="min_workers", metavar="N",
                   help="keep at least N workers running, even idle ones (overrides "
                        "MIN_WORKERS / fleet.scaling.min_workers)")
    p.add_argument("--max", type=_count, dest="max_workers", metavar="N",
                   help="run at most N workers; those above it are stopped, branches kept "
                        "(overrides MAX_WORKERS / fleet.scaling.max_workers)")
    p.add_argument("--auto", action=argparse.BooleanOptionalAction, default=None,
                   help="turn auto-scaling on or off")
    p.add_argument("worker", nargs="?", metavar="WORKER", help="worker to move (with --to)")
    p.add_argument("--to", metavar="LOCATION", help="new location for WORKER")
    p.add_argument("--reset", action="store_true", help="drop all overrides")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")

    ctl = verbs.add_parser("controller", help="the reconciling controller").add_subparsers(
        dest="sub", metavar="SUB", parser_class=_Parser, required=True)
    p = verb("run", o.controller_run, "run the scheduled controller", ctl)
    p.add_argument("--once", action="store_true", help="reconcile once and exit")
    p.add_argument("--interval", type=_seconds, metavar="S", help="seconds between reconciles")
    p.add_argument("--for", type=_seconds, dest="duration", metavar="S",
                   help="stop after this many seconds")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.add_argument("--log-format", choices=["text", "json"], default="text",
                   help="json: one object per line with structured fields")
    p.add_argument("--stop-all", action="store_true",
                   help="with --once: stop every worker (branches and commits are kept)")

    cost = verbs.add_parser("cost", help="cost tracking").add_subparsers(
        dest="sub", metavar="SUB", parser_class=_Parser, required=True)
    p = verb("report", o.cost_report, "export the cost ledger", cost)
    p.add_argument("--format", choices=["table", "csv", "json", "focus"], default="table")
    p.add_argument("--by", choices=["worker", "host", "pool", "day"], default="worker")
    p.add_argument("--since", metavar="WHEN", help="ISO date/time or seconds ago (e.g. 86400)")
    p.add_argument("--until", metavar="WHEN", help="ISO date/time")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    p = verb("hosts", hosts, "hosts with reachability, slots and load; `hosts trust HOST` "
             "records a host's key after you check its fingerprint; `hosts dial-in HOST` "
             "prints how a host behind NAT opens its reverse tunnel")
    p.add_argument("action", nargs="?", choices=["trust", "dial-in"],
                   help="trust: record HOST's key; dial-in: HOST's tunnel setup")
    p.add_argument("host", nargs="?", metavar="HOST")
    p.add_argument("--controller", metavar="USER@ADDRESS",
                   help="with dial-in: where the host logs in to open its tunnel")
    p.add_argument("--ssh-port", type=int, metavar="N",
                   help="with dial-in: the controller machine's sshd port (default 22)")
    p.add_argument("--fingerprint", metavar="SHA256:...",
                   help="with trust: the fingerprint you checked (needed without a terminal)")

    from czarina_fleet.cli.doctor import doctor
    verb("doctor", doctor, "check every host and cloud pool the workers need (reachable, "
         "host key, git/tmux/agent, work dir, clone; credentials, regions, types, images); "
         "changes nothing; exit 1 if something blocks a worker")

    p = verb("inject", o.inject, "type a task into a worker's agent (local or remote): "
             "czarina inject WORKER --text 'add a CHANGELOG entry', or FILE, or - for stdin")
    p.add_argument("worker", metavar="WORKER")
    p.add_argument("file", metavar="FILE", nargs="?", help="task text file ('-' for stdin)")
    p.add_argument("--text", metavar="TEXT", help="the task itself, instead of a file")

    p = verb("attach", o.attach, "open the worker's tmux session in this terminal")
    p.add_argument("worker", metavar="WORKER")

    p = verb("logs", o.logs, "print the last lines of the worker's pane")
    p.add_argument("worker", metavar="WORKER")
    p.add_argument("-n", "--lines", type=_count, default=40)

    p = verb("events", c.events, "the controller's event log (transitions and reasons)")
    p.add_argument("-n", "--limit", type=_count, default=50)

    from czarina_fleet.cli.simulate import add_simulate_parser
    add_simulate_parser(verb)
    from czarina_fleet.cli.lab import add_lab_parser
    add_lab_parser(verb, verbs, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        if argv is None:
            _forward_unknown_verb(parser, sys.argv[1:])
        args = parser.parse_args(argv)
        code: int = args.run(args)
        return code
    except UserError as e:
        print(f"czarina: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FleetError as e:  # may carry a host's stderr: shown, never acted on
        print(f"czarina: {printable(str(e))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except sqlite3.DatabaseError as e:  # found damaged after it opened: say which, and how
        print(f"czarina: {_state_problem(args, e)}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as e:  # a bug or an unforeseen failure: say what, not a traceback
        from czarina_fleet.controller.state.open_errors import unwritable_problem

        refused = unwritable_problem(e) if isinstance(e, OSError) else None
        if refused is not None:  # a write refused: a read-only .czarina, or permissions
            print(f"czarina: {refused}", file=sys.stderr)
            return EXIT_FAILURE
        if os.environ.get("CZARINA_DEBUG"):
            raise
        print(f"czarina: {type(e).__name__}: {e} (set CZARINA_DEBUG=1 to see where)",
              file=sys.stderr)
        return EXIT_FAILURE


def _state_problem(args: argparse.Namespace | None, error: sqlite3.DatabaseError) -> str:
    from czarina_fleet.cli.context import context_from
    from czarina_fleet.controller.state.open_errors import state_problem

    try:
        path = context_from(args).state_path if args is not None else None
    except (UserError, OSError):
        path = None
    return state_problem(path, error) if path else f"a database error: {error}"


def _forward_unknown_verb(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """`czarina VERB` with a verb of upstream Czarina's: run upstream's (cli/upstream.py)."""
    from czarina_fleet.cli import upstream

    if not upstream.forwards(sys.argv[0] if sys.argv else ""):
        return
    verbs = _verbs(parser)
    verb = upstream.unknown_verb(argv, verbs)
    if verb is not None:
        upstream.forward(argv, verb, verbs)


def _verbs(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number >= 0')
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number of seconds') from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'"{text}": use a number of seconds above 0')
    return value


def _version() -> str:
    from czarina_fleet import __version__

    return f"czarina-fleet {__version__}"


if __name__ == "__main__":
    sys.exit(main())
