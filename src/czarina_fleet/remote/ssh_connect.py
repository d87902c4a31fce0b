"""Opening one SSH connection, verified: the host key checked against the host's
known_hosts files (hostkeys.py), trust on first use only where the host opted in, jump
hosts opened and verified by us (jump.py), nothing forwarded, a timeout on every step.
And the key a host presents, unverified, for `czarina hosts trust`. The pooling, the
back-off and the commands are ssh_pool.py's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncssh

from czarina_fleet.remote import hostkeys, jump
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.runner import HostUnreachable

if TYPE_CHECKING:
    from czarina_fleet.remote.ssh_pool import PoolSettings


async def connect(host: SshHost, settings: PoolSettings) -> asyncssh.SSHClientConnection:
    """A connection to `host`, its key verified against its known_hosts files (and, when
    it opted in to trust on first use and none lists it, recorded first). Raises
    HostUnreachable, HostKeyUnknown or HostKeyChanged."""
    matcher = hostkeys.KnownHostsMatcher(hostkeys.known_hosts_files(host.known_hosts))
    try:
        return await _open(host, matcher, settings)
    except asyncssh.HostKeyNotVerifiable:
        if matcher.had_entries or not host.trust_on_first_use:
            raise await _host_key_error(host, matcher, settings) from None
    # trust on first use (opted in): record the key it presents, then connect
    # again, verifying against what was just recorded.
    key = await server_key(host, matcher, settings)
    if key is None:
        raise HostUnreachable(f"{host.host_id}: could not read its host key")
    hostkeys.record_host_key(host.known_hosts, *_keyed_as(host, matcher), key)
    matcher = hostkeys.KnownHostsMatcher(hostkeys.known_hosts_files(host.known_hosts))
    try:
        return await _open(host, matcher, settings)
    except asyncssh.HostKeyNotVerifiable:
        raise await _host_key_error(host, matcher, settings) from None


async def _open(host: SshHost, matcher: hostkeys.KnownHostsMatcher,
                settings: PoolSettings) -> asyncssh.SSHClientConnection:
    try:
        return await asyncio.wait_for(_dial(host, matcher, settings), settings.connect_timeout + 1)
    except (asyncssh.HostKeyNotVerifiable, HostUnreachable):
        raise
    except asyncssh.PermissionDenied as exc:
        raise HostUnreachable(
            f"{host.host_id}: authentication failed ({exc.reason}); check the user, "
            "the key (IdentityFile) and that ssh-agent holds it") from None
    except (OSError, asyncssh.Error, TimeoutError, ValueError) as exc:
        raise HostUnreachable(f"{host.host_id}: cannot connect to {host.address}: "
                              f"{reason(exc)}") from None


async def _dial(host: SshHost, matcher: hostkeys.KnownHostsMatcher,
                settings: PoolSettings) -> asyncssh.SSHClientConnection:
    # Jump hops are opened (and verified) by us; tunnel=None then stops asyncssh
    # from following the config's ProxyJump on its own.
    config = jump.config_paths(settings.ssh_config)
    tunnel = await jump.open_jumps(host, config, settings.connect_timeout)
    try:
        conn = await asyncssh.connect(
            host.address, known_hosts=matcher, tunnel=tunnel, config=config,
            **_options(host), **jump.NO_FORWARDING, **jump.cipher_options(config),
            keepalive_interval=settings.keepalive_interval,
            keepalive_count_max=settings.keepalive_count_max,
            connect_timeout=settings.connect_timeout, login_timeout=settings.connect_timeout)
    except BaseException:
        if tunnel is not None:
            tunnel.close()
        raise
    conn.set_tunnel(tunnel)  # closed with the connection
    return conn


def _options(host: SshHost) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if host.port is not None:
        opts["port"] = host.port
    if host.user is not None:
        opts["username"] = host.user
    if host.identity_file is not None:
        opts["client_keys"] = [host.identity_file]
    return opts


def _keyed_as(host: SshHost, matcher: hostkeys.KnownHostsMatcher) -> tuple[str, int | None]:
    # The name asyncssh looked up (after ssh config resolution) is what must match.
    if matcher.looked_up is not None:
        return matcher.looked_up[0], matcher.looked_up[2]
    return host.address, host.port


async def server_key(host: SshHost, matcher: hostkeys.KnownHostsMatcher,
                     settings: PoolSettings) -> asyncssh.SSHKey | None:
    """The key `host` presents (through its jump hosts), NOT verified; None when it
    cannot be reached."""
    address, port = _keyed_as(host, matcher)
    config = jump.config_paths(settings.ssh_config)
    tunnel = None
    try:
        tunnel = await jump.open_jumps(host, config, settings.connect_timeout)
        return await asyncio.wait_for(asyncssh.get_server_host_key(
            address, port or 22, tunnel=tunnel, config=config),
            settings.connect_timeout)
    except (OSError, asyncssh.Error, TimeoutError, HostUnreachable):
        return None
    finally:
        if tunnel is not None:
            tunnel.close()


async def _host_key_error(host: SshHost, matcher: hostkeys.KnownHostsMatcher,
                          settings: PoolSettings) -> HostUnreachable:
    key = await server_key(host, matcher, settings)
    address, port = _keyed_as(host, matcher)
    if matcher.had_entries:
        return hostkeys.HostKeyChanged(hostkeys.changed_message(
            host.host_id, address, port, key, matcher.matched_in))
    return hostkeys.HostKeyUnknown(hostkeys.unknown_message(
        host.host_id, address, port, key, host.known_hosts))


def reason(exc: BaseException) -> str:
    """What went wrong, in asyncssh's words when it has them."""
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    return str(exc) or type(exc).__name__
