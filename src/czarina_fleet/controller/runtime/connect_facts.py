"""What providers tell us about reaching their hosts, kept beside the state database.

Some drivers know a launched host's SSH host key and the client key that logs in (the
`lab` provider makes both; for cloud hosts the controller makes the host key before the
launch). We trust those keys because the fleet made the host, so they go into a
fleet-owned known_hosts file (`.czarina/known_hosts`), never the user's: host keys stay
verified, and only for addresses the fleet launched. The client identity file goes into
`.czarina/connect.json`, so that every verb (status, logs, attach) reaches the host
too, not only the controller that saw the launch.

One writer, merged under a lock. Only the controller (`writer=True`) changes these
files; read-only verbs (status, logs, hosts, attach) read them afresh when they change
and never write, so a long `status --watch` can never put back its old view over a key
the controller has just added. A writer re-reads the files under an exclusive `flock`
(`known_hosts.lock`) and applies only its change. A host that left its pool is
*retired*: its key is remembered as retired, and no process, however stale its view,
can record that key again.

Addresses get reused (a lab namespace index, a cloud private IP), so learning a host
replaces any older line for its address rather than adding a second one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from czarina_fleet.providers.base import Instance
from czarina_fleet.remote.hostkeys import host_pattern, locked

RETIRED_KEPT = 2000  # retired keys remembered (oldest dropped first)

Facts = dict[str, dict[str, str]]


class ConnectFacts:
    """`ConnectFacts(directory)`: the known_hosts file and identities of launched
    hosts. `directory=None` keeps nothing (hosts then use the user's SSH setup);
    `writer=False` reads only."""

    def __init__(self, directory: Path | None, *, writer: bool = True) -> None:
        self.directory = directory
        self.writer = writer
        self._stamp: tuple[int, int, int] | None = None
        self._facts: Facts = {}
        self._retired: list[str] = []
        self._refresh()

    @property
    def known_hosts(self) -> str | None:
        return None if self.directory is None else str(self.directory / "known_hosts")

    def identity_file(self, host_id: str) -> str | None:
        self._refresh()
        return self._facts.get(host_id, {}).get("identity_file")

    def known_hosts_for(self, host_id: str) -> str | None:
        """The fleet's known_hosts file when the provider gave this host's key; None
        means the host's key is checked against the user's files as usual."""
        self._refresh()
        return self.known_hosts if self._facts.get(host_id, {}).get("host_key") else None

    def learn(self, inventories: Mapping[str, Iterable[Instance]]) -> None:
        """Record the connect facts of the instances each listed pool reported, and
        retire hosts a listed pool no longer has. Writes only what changed."""
        if self.directory is None or not self.writer:
            return
        listed = {i.host_id for inv in inventories.values() for i in inv}
        with self._locked():
            gone = [h for h, f in self._facts.items()
                    if f.get("pool") in inventories and h not in listed]
            for host_id in gone:
                self._retire(host_id)
            changed = bool(gone) or (not (self.directory / "known_hosts").exists()
                                     and any(f.get("host_key") for f in self._facts.values()))
            for inst in (i for inv in inventories.values() for i in inv):
                c = inst.connect
                if c is None or not (c.host_key or c.identity_file):
                    continue
                changed |= self._remember(inst.host_id, c.address, c.port, inst.pool,
                                          c.host_key, c.identity_file)
            if changed:
                self._save()

    def remember(self, host_id: str, address: str, port: int, pool: str | None,
                 host_key: str | None, identity_file: str | None) -> None:
        """Record how to reach one host (e.g. a cloud host whose key the controller made
        before launching it). Writes only when something changed."""
        if self.directory is None or not self.writer:
            return
        with self._locked():
            if self._remember(host_id, address, port, pool, host_key, identity_file):
                self._save()

    def retire(self, host_id: str) -> None:
        """Forget a host for good (it was terminated): its key can never come back."""
        if self.directory is None or not self.writer:
            return
        with self._locked():
            if host_id in self._facts:
                self._retire(host_id)
                self._save()

    # --- the merge, always under the lock ---------------------------------------------

    def _remember(self, host_id: str, address: str, port: int, pool: str | None,
                  host_key: str | None, identity_file: str | None) -> bool:
        fact = {"address": address, "port": str(port), "pool": pool or ""}
        if host_key:
            fact["host_key"] = " ".join(host_key.split()[:2])
            if fact["host_key"] in self._retired:
                return False  # a stale view of a host that is gone
        if identity_file:
            fact["identity_file"] = identity_file
        if self._facts.get(host_id) == fact:
            return False
        self._drop_address(fact["address"], fact["port"], keep=host_id)
        self._facts[host_id] = fact
        return True

    def _retire(self, host_id: str) -> None:
        key = self._facts.pop(host_id).get("host_key")
        if key and key not in self._retired:
            self._retired = [*self._retired, key][-RETIRED_KEPT:]

    def _drop_address(self, address: str, port: str, keep: str) -> None:
        for host_id, fact in list(self._facts.items()):
            if host_id != keep and (fact["address"], fact["port"]) == (address, port):
                del self._facts[host_id]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        assert self.directory is not None
        with locked(self.directory / "known_hosts"):
            self._stamp = None
            self._refresh()  # merge onto what is on disk now, not what we read earlier
            yield

    def _refresh(self) -> None:
        """Re-read connect.json when it changed on disk (cheap: one stat)."""
        if self.directory is None:
            return
        path = self.directory / "connect.json"
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self._facts, self._retired = _load(path)

    def _save(self) -> None:
        assert self.directory is not None
        lines = sorted(f"{host_pattern(f['address'], int(f['port']))} {f['host_key']}\n"
                       for f in self._facts.values() if f.get("host_key"))
        _write(self.directory / "known_hosts", "".join(lines))
        _write(self.directory / "connect.json", json.dumps(
            {"hosts": self._facts, "retired": self._retired}, indent=1, sort_keys=True))
        self._stamp = None


def _load(path: Path) -> tuple[Facts, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, []
    if not isinstance(data, dict):
        return {}, []
    # Older files held the hosts at the top level, with no retired keys.
    new = isinstance(data.get("hosts"), dict) and "retired" in data
    hosts = data["hosts"] if new else data
    retired = data.get("retired") if isinstance(data.get("retired"), list) else []
    facts = {str(k): {str(a): str(b) for a, b in v.items()}
             for k, v in hosts.items() if isinstance(v, dict)}
    return facts, [str(k) for k in retired]


def _write(path: Path, text: str) -> None:
    # Atomic, private: a crash never leaves half a known_hosts file behind.
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)
