"""What a connection carries, and the ProxyJump hops we open ourselves.

Nothing of this machine crosses to a host unless asked. asyncssh follows
`~/.ssh/config`, where `ForwardAgent yes` is a common line: it would hand every worker
host (and every jump host) a socket to the user's ssh-agent, which root on a spot host
can use to log in as the user anywhere. So every connection we open says, whatever the
config says: no agent forwarding, no X11, no environment variables sent (`SendEnv`),
no terminal.

A jump host (`proxy_jump`, or `ProxyJump` in the SSH config) would otherwise be
connected by asyncssh with the config's own host key settings (`UserKnownHostsFile
none` switches checking off). We resolve the hops and open each ourselves, verified by
our known_hosts matcher like any host.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.config import SSHClientConfig

from czarina_fleet.remote import hostkeys
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.runner import HostUnreachable

# Passed to every asyncssh.connect: these override whatever the SSH config says.
NO_FORWARDING: dict[str, Any] = {
    "agent_forwarding": False, "x11_forwarding": False, "send_env": None,
    "request_pty": False,
}


# AES-GCM first (the rest of asyncssh's defaults follow, chacha20-poly1305 among them):
# asyncssh builds three cipher contexts per chacha20 packet, 22 us against 3.4 us per
# packet for AES-GCM, which the CPU does in hardware. Both are AEAD ciphers OpenSSH
# offers by default. A `Ciphers` line in the SSH config is left to decide instead.
PREFERRED_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
# config file -> (mtime, has a Ciphers line, the files it includes)
_CONFIG_LINES: dict[str, tuple[float, bool, list[Path]]] = {}


def cipher_options(config: list[str]) -> dict[str, Any]:
    """`encryption_algs` for asyncssh.connect: AES-GCM preferred, unless an SSH config
    file in effect (or one it includes) has a `Ciphers` line: the config's choice
    stands."""
    if any(_names_ciphers(Path(path), 0) for path in config):
        return {}
    return {"encryption_algs": PREFERRED_CIPHERS}


def _names_ciphers(path: Path, depth: int) -> bool:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return False
    cached = _CONFIG_LINES.get(str(path))
    if cached is None or cached[0] != mtime:
        cached = _CONFIG_LINES[str(path)] = (mtime, *_scan(path))
    _mtime, ciphers, includes = cached
    if ciphers:
        return True
    # Included files are looked at each time (each kept until it changes itself).
    return depth < 8 and any(_names_ciphers(p, depth + 1) for pattern in includes
                             for p in sorted(pattern.parent.glob(pattern.name)))


def _scan(path: Path) -> tuple[bool, list[Path]]:
    """Does the file have a Ciphers line; which files does it Include (as ssh reads
    them: relative to ~/.ssh, globs allowed)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False, []
    includes: list[Path] = []
    for line in lines:
        words = line.replace("=", " ", 1).split()
        key = words[0].lower() if words else ""
        if key == "ciphers":
            return True, []
        if key == "include":
            for pattern in words[1:]:
                base = Path(pattern).expanduser()
                includes.append(base if base.is_absolute()
                                else Path("~/.ssh").expanduser() / base)
    return False, includes


def config_paths(setting: tuple[str, ...] | None) -> list[str]:
    """The SSH config files in effect: the pool's, else `~/.ssh/config` if readable
    (asyncssh's own default, resolved here so that hops and host use the same)."""
    if setting is not None:
        return list(setting)
    default = Path("~/.ssh/config").expanduser()
    return [str(default)] if os.access(default, os.R_OK) else []


def proxy_jump_for(host: SshHost, config: list[str]) -> str | None:
    """The host's jump hops: its own `proxy_jump`, else the SSH config's `ProxyJump`."""
    if host.proxy_jump is not None:
        return host.proxy_jump
    if not config:
        return None
    try:
        local_user = getpass.getuser()
    except KeyError:
        local_user = "root"
    resolved = SSHClientConfig.load(None, config, False, False, False, local_user,
                                    host.user or (), host.address, host.port or ())
    jump = resolved.get("ProxyJump")
    return jump if isinstance(jump, str) and jump and jump.lower() != "none" else None


def parse_hops(spec: str) -> list[tuple[str | None, str, int | None]]:
    """`[user@]host[:port],...` -> [(user, host, port)] (OpenSSH's -J syntax)."""
    hops: list[tuple[str | None, str, int | None]] = []
    for hop in spec.split(","):
        user, _, rest = hop.rpartition("@")
        name, colon, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        if colon and not port.isdigit():
            raise HostUnreachable(f"proxy jump {hop!r}: the port is not a number")
        hops.append((user or None, name, int(port) if colon else None))
    return hops


def jump_known_hosts(host: SshHost) -> list[str]:
    """A jump host is checked against the user's (and the system's) known_hosts, and
    the file of the host it leads to, if that host has its own."""
    files = hostkeys.known_hosts_files(None)
    return [host.known_hosts, *files] if host.known_hosts else files


async def open_jumps(host: SshHost, config: list[str],
                     timeout: float) -> asyncssh.SSHClientConnection | None:
    """Connect through every hop to the last one, each verified by our matcher; None
    when the host has no jump. Closing the returned connection closes the hops before
    it. Raises HostKeyUnknown / HostKeyChanged (naming the jump host) or
    HostUnreachable."""
    spec = proxy_jump_for(host, config)
    if spec is None:
        return None
    chain: asyncssh.SSHClientConnection | None = None
    try:
        for user, name, port in parse_hops(spec):
            chain = await _hop(host, chain, user, name, port, config, timeout)
    except BaseException:
        if chain is not None:
            chain.close()
        raise
    return chain


async def _hop(host: SshHost, before: asyncssh.SSHClientConnection | None, user: str | None,
               name: str, port: int | None, config: list[str],
               timeout: float) -> asyncssh.SSHClientConnection:
    matcher = hostkeys.KnownHostsMatcher(jump_known_hosts(host))
    try:
        conn = await asyncssh.connect(
            name, port or (), username=user or (), tunnel=before, known_hosts=matcher,
            config=config, connect_timeout=timeout, login_timeout=timeout, **NO_FORWARDING)
    except asyncssh.HostKeyNotVerifiable:
        raise await _hop_key_error(host, before, name, port, config, matcher) from None
    except (OSError, asyncssh.Error, ValueError) as exc:
        raise HostUnreachable(f"{host.host_id}: cannot connect to its jump host {name}: "
                              f"{getattr(exc, 'reason', '') or exc}") from None
    conn.set_tunnel(before)  # closing this hop closes the ones before it
    return conn


async def _hop_key_error(host: SshHost, before: asyncssh.SSHClientConnection | None,
                         name: str, port: int | None, config: list[str],
                         matcher: hostkeys.KnownHostsMatcher) -> HostUnreachable:
    address, port = (matcher.looked_up[0], matcher.looked_up[2]) if matcher.looked_up \
        else (name, port)
    try:
        key = await asyncssh.get_server_host_key(address, port or 22, tunnel=before,
                                                 config=config)
    except (OSError, asyncssh.Error):
        key = None
    what = f"{host.host_id}'s jump host {name}"
    if matcher.had_entries:
        return hostkeys.HostKeyChanged(hostkeys.changed_message(
            what, address, port, key, matcher.matched_in))
    return hostkeys.HostKeyUnknown(hostkeys.unknown_message(what, address, port, key, None))
