"""Host key verification: known_hosts lookups, clear refusals, and opt-in trust.

We always hand asyncssh a known_hosts *matcher* of our own, never `None`: an SSH config
line such as `UserKnownHostsFile none` must not switch verification off. The matcher
also remembers whether the host had any entry, which is how an unknown host (offer
the fingerprint and how to trust it) is told apart from a changed key (refuse, warn).
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from czarina_fleet.remote.runner import HostUnreachable

SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
# An unset known_hosts file (SshHost, known_hosts_files, record_host_key) stands for the
# user's ~/.ssh/known_hosts and the system's file, as OpenSSH reads them: keys are
# verified against those two; no value turns verification off. Named, so that a caller
# says which files it means instead of passing a bare None.
USER_KNOWN_HOSTS: None = None


class HostKeyUnknown(HostUnreachable):
    """The host's key is in no known_hosts file; the message gives its fingerprint."""


class HostKeyChanged(HostUnreachable):
    """The host presented a key other than the recorded one. Always refused."""


def default_known_hosts() -> str:
    return str(Path("~/.ssh/known_hosts").expanduser())


def host_pattern(address: str, port: int | None) -> str:
    """The known_hosts name for address:port, as OpenSSH writes it."""
    return address if port in (None, 22) else f"[{address}]:{port}"


@dataclass
class KnownHostsMatcher:
    """Callable asyncssh uses to find trusted keys; records what it was asked."""

    files: Sequence[str]
    looked_up: tuple[str, str, int | None] | None = None
    had_entries: bool = False
    matched_in: list[str] = field(default_factory=list)

    def __call__(self, host: str, addr: str, port: int | None) -> tuple[list, list, list]:
        self.looked_up = (host, addr, port)
        keys: list = []
        cas: list = []
        revoked: list = []
        for path in self.files:
            parsed = read_known_hosts(path)
            if parsed is None:
                continue
            found = parsed.match(host, addr, port)
            if found[0] or found[1]:
                self.matched_in.append(path)
            keys += found[0]
            cas += found[1]
            revoked += found[2]
        self.had_entries = bool(keys or cas)
        return keys, cas, revoked


# path -> (the file's stat signature, its parsed entries). Parsing a known_hosts file of
# n entries costs n key decodes; once per connection that made connecting n hosts
# O(n^2) (1,000 hosts: 58 ms of CPU per connect, 24 of 42 profiled seconds per tick).
_PARSED: dict[str, tuple[tuple[int, ...], asyncssh.SSHKnownHosts]] = {}


def read_known_hosts(path: str) -> asyncssh.SSHKnownHosts | None:
    """The parsed entries of a known_hosts file (None if there is no such file), parsed
    again only when the file changed (size, times or inode): a key recorded or removed
    is seen at the next lookup."""
    try:
        st = os.stat(path)
    except OSError:
        _PARSED.pop(path, None)  # a host's own file, removed with the host
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    parsed = asyncssh.read_known_hosts(path)
    _PARSED[path] = (signature, parsed)
    return parsed


def known_hosts_files(path: str | None) -> list[str]:
    """The files consulted for a host: its own file if set, else the user's and the
    system's."""
    if path is not None:
        return [path]
    return [default_known_hosts(), SYSTEM_KNOWN_HOSTS]


def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


@contextmanager
def locked(known_hosts: Path) -> Iterator[None]:
    """An exclusive flock on `<known_hosts>.lock`, held while a process reads and
    changes that file: every writer of a trust file takes it (connect_facts.py too)."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(f"{known_hosts}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def record_host_key(path: str | None, address: str, port: int | None,
                    key: asyncssh.SSHKey) -> str:
    """Append `key` for address:port to a known_hosts file (the user's by default),
    under the file's lock. Returns the file written."""
    target = Path(path or default_known_hosts())
    line = f"{host_pattern(address, port)} {key.export_public_key().decode().strip()}\n"
    with locked(target), target.open("a", encoding="utf-8") as fh:
        fh.write(line)
    return str(target)


def unknown_message(host_id: str, address: str, port: int | None,
                    key: asyncssh.SSHKey | None, path: str | None) -> str:
    where = path or default_known_hosts()
    shown = fingerprint(key) if key is not None else "(could not read its key)"
    port_arg = f"-p {port} " if port not in (None, 22) else ""
    return (
        f"host {host_id} ({address} port {port or 22}) is not in known_hosts; it presents "
        f"{shown}. Check that fingerprint with the host's owner, then trust it: "
        f"`ssh-keyscan {port_arg}{address} >> {where}` (or `czarina hosts trust {host_id}`), "
        f"or set trust_on_first_use for this host to record it on first connect"
    )


def changed_message(host_id: str, address: str, port: int | None,
                    key: asyncssh.SSHKey | None, files: Sequence[str]) -> str:
    shown = fingerprint(key) if key is not None else "a different key"
    where = ", ".join(files) or default_known_hosts()
    pattern = host_pattern(address, port)
    return (
        f"WARNING: the host key of {host_id} ({address} port {port or 22}) has CHANGED: "
        f"it now presents {shown}, which is not the key recorded in {where}. Someone may "
        "be intercepting the connection, or the host was reinstalled. Refusing to connect. "
        f"If the change is expected, remove the old key (`ssh-keygen -R '{pattern}' -f "
        f"{where.split(', ')[0]}`) and trust the new one"
    )
