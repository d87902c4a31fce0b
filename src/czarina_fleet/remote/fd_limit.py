"""Open files: the pool keeps one SSH connection, one socket, per host.

A controller of 1,000 hosts holds about 1,000 sockets plus its store (database, WAL,
shared memory, lock), logs, and the pipes of the git and ssh commands it runs. The
usual soft limit (1,024 open files) is below that while the hard limit is not, so the
controller raises its soft limit to the hard one when it starts (`raise_soft_limit`).
Past that, the pool connects no more hosts than the limit leaves room for, with a
message naming the limit and the fix (`too_many_message`), instead of letting the
process run out of descriptors (EMFILE) in the middle of a store write or a git push;
and the planner, which sees the limit in its observation, launches no pool host past
it (`limit_note` says why, on the workers left waiting).
"""

from __future__ import annotations

import resource
from pathlib import Path

# Descriptors kept for everything but host connections: the store's 4 files, log
# files, the metrics socket, and the pipes of the commands running at once.
RESERVED = 64


def limits() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE; an unlimited hard limit is read as the kernel's
    per-process ceiling (fs.nr_open)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = _nr_open()
    if soft == resource.RLIM_INFINITY:
        soft = hard
    return soft, hard


def raise_soft_limit() -> int:
    """Raise the soft limit to the hard one (no privilege needed); returns the soft
    limit now in force. Failing to raise it is not fatal: the pool respects whatever
    limit there is."""
    soft, hard = limits()
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, resource.getrlimit(
                resource.RLIMIT_NOFILE)[1]))
        except (ValueError, OSError):
            return soft
    return limits()[0]


def connection_budget() -> int:
    """How many host connections the current soft limit leaves room for."""
    return max(limits()[0] - RESERVED, 1)


def limit_note() -> str:
    """The limit in force and how to raise it: why the planner launches no more hosts.
    The same words while the limit stays (a waiting worker's event is written once)."""
    soft, hard = limits()
    return (f"the open file limit (RLIMIT_NOFILE) is {soft} (hard limit {hard}), "
            f"{RESERVED} of them kept for the store, logs and commands; raise it (`ulimit "
            "-n` in the shell that starts the controller, LimitNOFILE= in a systemd unit, "
            "or a nofile line in /etc/security/limits.conf) or split the fleet "
            "(docs/performance.md, when to split a fleet)")


def too_many_message(hosts: int) -> str:
    """Why `hosts` connections do not fit, and what to do about it."""
    soft, hard = limits()
    want = hosts + RESERVED
    raise_it = (f"`ulimit -n {want}` in the shell that starts the controller"
                if want <= hard else
                f"raise the hard limit too (as root: `ulimit -Hn {want}`, LimitNOFILE={want} "
                f"in a systemd unit, or a nofile line in /etc/security/limits.conf)")
    return (f"{hosts} hosts need {want} open files (one SSH connection per host, "
            f"{RESERVED} kept for the store, logs and commands), but the open file limit "
            f"(RLIMIT_NOFILE) is {soft} (hard limit {hard}): {raise_it}, or split the "
            "fleet in two (docs/performance.md, when to split a fleet)")


def _nr_open() -> int:
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1 << 20
