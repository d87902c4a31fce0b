"""What providers tell us about reaching their hosts, kept beside the state database.

Some drivers know a launched host's SSH host key and the client key that logs in (the
`lab` provider makes both; a cloud could read the key from the console output). We
trust those keys because the provider made the host, so they go into a fleet-owned
known_hosts file (`.czarina/known_hosts`), never the user's: host keys stay verified,
and only for addresses the fleet launched. The client identity file goes into
`.czarina/connect.json`, so that every verb (status, logs, attach) reaches the host
too, not only the controller that saw the launch.

Addresses get reused (a lab namespace index, a cloud private IP), so learning a host
replaces any older line for its address rather than adding a second one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from czarina_fleet.providers.base import Instance
from czarina_fleet.remote.hostkeys import host_pattern


class ConnectFacts:
    """`ConnectFacts(directory)`: the known_hosts file and identities of launched
    hosts. `directory=None` keeps nothing (hosts then use the user's SSH setup)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._facts: dict[str, dict[str, str]] = self._load()

    @property
    def known_hosts(self) -> str | None:
        return None if self.directory is None else str(self.directory / "known_hosts")

    def identity_file(self, host_id: str) -> str | None:
        return self._facts.get(host_id, {}).get("identity_file")

    def known_hosts_for(self, host_id: str) -> str | None:
        """The fleet's known_hosts file when the provider gave this host's key; None
        means the host's key is checked against the user's files as usual."""
        return self.known_hosts if self._facts.get(host_id, {}).get("host_key") else None

    def learn(self, inventories: Mapping[str, Iterable[Instance]]) -> None:
        """Record the connect facts of the instances each listed pool reported, and
        forget hosts a listed pool no longer has. Writes only what changed."""
        if self.directory is None:
            return
        listed = {i.host_id for inv in inventories.values() for i in inv}
        gone = [h for h, f in self._facts.items()
                if f.get("pool") in inventories and h not in listed]
        for host_id in gone:
            del self._facts[host_id]
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
        if self.directory is not None and self._remember(host_id, address, port, pool,
                                                         host_key, identity_file):
            self._save()

    def _remember(self, host_id: str, address: str, port: int, pool: str | None,
                  host_key: str | None, identity_file: str | None) -> bool:
        fact = {"address": address, "port": str(port), "pool": pool or ""}
        if host_key:
            fact["host_key"] = " ".join(host_key.split()[:2])
        if identity_file:
            fact["identity_file"] = identity_file
        if self._facts.get(host_id) == fact:
            return False
        self._drop_address(fact["address"], fact["port"], keep=host_id)
        self._facts[host_id] = fact
        return True

    def _drop_address(self, address: str, port: str, keep: str) -> None:
        for host_id, fact in list(self._facts.items()):
            if host_id != keep and (fact["address"], fact["port"]) == (address, port):
                del self._facts[host_id]

    def _load(self) -> dict[str, dict[str, str]]:
        if self.directory is None:
            return {}
        try:
            data = json.loads((self.directory / "connect.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in data.items() if isinstance(v, dict)}

    def _save(self) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = sorted(f"{host_pattern(f['address'], int(f['port']))} {f['host_key']}\n"
                       for f in self._facts.values() if f.get("host_key"))
        _write(self.directory / "known_hosts", "".join(lines))
        _write(self.directory / "connect.json", json.dumps(self._facts, indent=1,
                                                          sort_keys=True))


def _write(path: Path, text: str) -> None:
    # Atomic, private: a crash never leaves half a known_hosts file behind.
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)
