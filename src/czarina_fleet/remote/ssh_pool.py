"""Pooled SSH: one asyncssh connection per host, opened on first use and reused.

- keepalives find a dead peer; a lost connection is dropped and reopened on next use;
- failed connects back off exponentially with full jitter, and fail fast while backing
  off, so a poll never waits on a host that is down;
- a semaphore caps concurrent channels per host; connection attempts in flight are
  capped per sshd (8: OpenSSH's MaxStartups starts dropping unauthenticated
  connections past 10), the first jump host included, and in all (64: the controller's
  CPU, about 7 ms a connect);
- every connect and every command has a timeout;
- `~/.ssh/config` (aliases, HostName, User, Port, IdentityFile, ProxyJump) and
  ssh-agent are honoured; host keys, the jump hosts' too, are always verified
  (hostkeys.py, jump.py); nothing is forwarded, whatever the config says (jump.py).
Opening one such connection is ssh_connect.py's; this module pools them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import asyncssh

from czarina_fleet.clock import Clock, SystemClock
from czarina_fleet.model.fleet import CommitInfo, HostProbe
from czarina_fleet.remote import fd_limit, hostkeys, jump
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.probe import probe_host
from czarina_fleet.remote.runner import CommandResult, CommandTimeout, HostUnreachable
from czarina_fleet.remote.ssh_connect import connect, reason, server_key
from czarina_fleet.remote.tmux_target import DEFAULT_TMUX, TmuxTarget


@dataclass(frozen=True, slots=True)
class PoolSettings:
    connect_timeout: float = 10.0
    keepalive_interval: float = 15.0
    keepalive_count_max: int = 3
    channels_per_host: int = 8
    # In all: on a real network a connect is mostly waiting (some 8 round trips), so a
    # controller's start with 1,000 hosts is bound by this (16: 47 s at 50 ms RTT).
    connects_in_flight: int = 64
    # Per sshd (address and port; a jump host for every host behind it): MaxStartups.
    connects_per_server: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    ssh_config: tuple[str, ...] | None = None  # None: ~/.ssh/config if present


@dataclass
class _HostState:
    host: SshHost
    channels: asyncio.Semaphore
    connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    conn: asyncssh.SSHClientConnection | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: str | None = None


class SshPool:
    """Connections to many hosts. Use `runner(host_id)` for a CommandRunner."""

    def __init__(self, hosts: Iterable[SshHost] = (), *, settings: PoolSettings | None = None,
                 clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.settings = settings or PoolSettings()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._hosts: dict[str, _HostState] = {}
        self._connecting = asyncio.Semaphore(self.settings.connects_in_flight)
        self._servers: dict[str, asyncio.Semaphore] = {}  # "address:port" -> its cap
        self._opening = 0  # connects under way: they count against the open file limit
        # last commit per worker, per host: lets the probe skip `git log` when unchanged
        self.commits: dict[str, dict[str, CommitInfo]] = {}
        for host in hosts:
            self.add(host)

    def add(self, host: SshHost) -> None:
        """Register (or update) a host. A changed address closes the old connection."""
        old = self._hosts.get(host.host_id)
        if old is not None and old.host == host:
            return
        if old is not None and old.conn is not None:
            old.conn.close()
        self._hosts[host.host_id] = _HostState(
            host, asyncio.Semaphore(self.settings.channels_per_host))

    def hosts(self) -> list[SshHost]:
        return [s.host for s in self._hosts.values()]

    def runner(self, host_id: str) -> SshRunner:
        if host_id not in self._hosts:
            raise KeyError(f"unknown host {host_id!r}: add it to the pool first")
        return SshRunner(self, host_id)

    def is_connected(self, host_id: str) -> bool:
        conn = self._hosts[host_id].conn
        return conn is not None and not conn.is_closed()

    async def close(self) -> None:
        for state in self._hosts.values():
            if state.conn is not None:
                state.conn.close()
                with contextlib.suppress(Exception):
                    await state.conn.wait_closed()
                state.conn = None

    async def server_key(self, host_id: str) -> asyncssh.SSHKey | None:
        """The key a host presents, NOT verified: for `czarina hosts trust` to show its
        fingerprint (hostkeys.fingerprint) and, once the user confirms, record it
        (hostkeys.record_host_key). None when the host cannot be reached."""
        state = self._hosts[host_id]
        return await server_key(state.host, hostkeys.KnownHostsMatcher([]), self.settings)

    def disconnect(self, host_id: str) -> bool:
        """Close a host's connection if one is open (reopened on next use); True if so."""
        state = self._hosts.get(host_id)
        if state is None or state.conn is None:
            return False
        state.conn.close()
        state.conn = None
        return True

    async def drop(self, host_id: str) -> None:
        """Close a host's connection (it is reopened on next use)."""
        state = self._hosts[host_id]
        if state.conn is not None:
            state.conn.close()
            state.conn = None

    async def connection(self, host_id: str) -> asyncssh.SSHClientConnection:
        """The open connection to a host, connecting if needed. Raises HostUnreachable
        (or HostKeyUnknown / HostKeyChanged) and never waits longer than the connect
        timeout; while backing off after failures it fails at once."""
        state = self._hosts[host_id]
        if state.conn is not None and not state.conn.is_closed():
            return state.conn
        async with state.connect_lock:
            if state.conn is not None and not state.conn.is_closed():
                return state.conn
            wait = state.retry_at - self._clock.now()
            if wait > 0:
                raise HostUnreachable(f"{host_id}: unreachable ({state.last_error}); "
                                      f"next attempt in {wait:.1f}s")
            self._check_room(host_id)
            self._opening += 1
            try:
                # Queued here, not in the connect's timeout: the queue is our own.
                async with self._connecting, self._server_gate(state.host):
                    state.conn = await connect(state.host, self.settings)
            except HostUnreachable as exc:
                self._failed(state, str(exc))
                raise
            finally:
                self._opening -= 1
            state.failures = 0
            state.retry_at = 0.0
            state.last_error = None
            return state.conn

    def _check_room(self, host_id: str) -> None:
        """One more connection must leave the process the descriptors it needs for the
        rest (fd_limit.py): past that, a clear refusal rather than EMFILE somewhere.
        Counted only when the pool knows more hosts than the limit has room for."""
        budget = fd_limit.connection_budget()
        if len(self._hosts) <= budget:
            return
        if self._opening + sum(1 for s in self._hosts.values()
                               if s.conn is not None and not s.conn.is_closed()) >= budget:
            raise HostUnreachable(f"{host_id}: not connected: "
                                  + fd_limit.too_many_message(len(self._hosts)))

    def _server_gate(self, host: SshHost) -> asyncio.Semaphore:
        """The cap on connects in flight to one sshd (`connects_per_server`): the host's
        own, or its first jump host's (every host behind it is connected through it)."""
        spec = jump.proxy_jump_for(host, jump.config_paths(self.settings.ssh_config))
        if spec is not None:
            _user, name, port = jump.parse_hops(spec)[0]
            server = f"{name}:{port or 22}"
        else:
            server = f"{host.address}:{host.port or 22}"
        gate = self._servers.get(server)
        if gate is None:
            gate = self._servers[server] = asyncio.Semaphore(
                self.settings.connects_per_server)
        return gate

    def _failed(self, state: _HostState, error: str) -> None:
        state.failures += 1
        state.last_error = error
        ceiling = min(self.settings.backoff_max,
                      self.settings.backoff_base * 2 ** (state.failures - 1))
        # Full jitter: hosts that failed together do not all retry together.
        state.retry_at = self._clock.now() + self._rng.uniform(0, ceiling)

    async def run(self, host_id: str, argv: Sequence[str], *, input: str | None = None,
                  timeout: float = 30.0, env: dict[str, str] | None = None) -> CommandResult:
        """Run argv on a host as one shell-quoted command line (`shlex.join`)."""
        state = self._hosts[host_id]
        full = [*(["env", *(f"{k}={v}" for k, v in env.items())] if env else []), *argv]
        command = shlex.join(full)
        conn = await self.connection(host_id)
        async with state.channels:
            try:
                done = await asyncio.wait_for(
                    conn.run(command, input=input, check=False), timeout)
            except TimeoutError:
                await self._check_alive(state, conn)
                raise CommandTimeout(
                    f"{host_id}: {argv[0]} timed out after {timeout:.0f}s") from None
            except (OSError, asyncssh.Error) as exc:
                self._lost(state, conn, reason(exc))
                raise HostUnreachable(f"{host_id}: connection lost: {reason(exc)}") from None
        return CommandResult(tuple(argv), _status(done), _text(done.stdout), _text(done.stderr))

    async def _check_alive(self, state: _HostState, conn: asyncssh.SSHClientConnection) -> None:
        # A command that timed out may mean the network is gone: a short ping decides
        # whether to keep the connection (a slow command) or drop it (a dead peer).
        try:
            await asyncio.wait_for(conn.run("true", check=False), 3.0)
        except (OSError, asyncssh.Error, TimeoutError):
            self._lost(state, conn, "no answer")

    def _lost(self, state: _HostState, conn: asyncssh.SSHClientConnection, why: str) -> None:
        conn.close()
        if state.conn is conn:
            state.conn = None
            state.last_error = why


class SshRunner:
    """CommandRunner over a pooled connection."""

    def __init__(self, pool: SshPool, host_id: str) -> None:
        self.pool = pool
        self.host_id = host_id

    async def run(self, argv: Sequence[str], *, input: str | None = None,
                  timeout: float = 30.0, env: dict[str, str] | None = None) -> CommandResult:
        return await self.pool.run(self.host_id, argv, input=input, timeout=timeout, env=env)


async def probe_all(
    pool: SshPool,
    hosts: Mapping[str, Mapping[str, str]] | None = None,
    *,
    tmux: TmuxTarget = DEFAULT_TMUX,
    now: float,
    timeout: float = 10.0,
) -> list[HostProbe]:
    """Probe hosts concurrently, one round trip each. `hosts` maps host id -> {worker id:
    checkout dir}; None probes every host in the pool (sessions and load only). A host
    that is down comes back `reachable=False` within the connect timeout + `timeout`."""
    wanted = hosts if hosts is not None else {h.host_id: {} for h in pool.hosts()}

    async def one(host_id: str, workers: Mapping[str, str]) -> HostProbe:
        try:
            runner = pool.runner(host_id)
        except KeyError as exc:
            return HostProbe(host_id, reachable=False, probed_at=now, error=str(exc))
        return await probe_host(runner, host_id, workers, tmux=tmux, now=now, timeout=timeout,
                                commits=pool.commits.setdefault(host_id, {}))

    return list(await asyncio.gather(*(one(h, w) for h, w in wanted.items())))


def _status(done: asyncssh.SSHCompletedProcess) -> int:
    if done.exit_status is not None:
        return done.exit_status
    return 128 + 9 if done.exit_signal else 255


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data if isinstance(data, str) else ""
