"""The fleet's SSH identity and the host keys of the hosts it launches.

- One login key per fleet (`.czarina/fleet_ed25519`), put on every launched host
  (cloud-init `ssh_authorized_keys`) and used to log in to them.
- One host key per launched host, made here *before* the launch and installed on the
  host through cloud-init, so the controller knows the key the host will present and
  verifies the very first connection instead of trusting it (no trust-on-first-use).
- A fleet-owned `known_hosts` beside them, where those keys are recorded once the host's
  address is known.

Private keys are written 0600 in a 0700 directory and never logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from czarina_fleet.remote.hostkeys import host_pattern, locked
from czarina_fleet.remote.validate import check_worker_id


@dataclass(frozen=True)
class FleetIdentity:
    directory: Path

    @property
    def private_key_path(self) -> Path:
        return self.directory / "fleet_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def public_key(self) -> str:
        """The fleet's login key (made on first use)."""
        _private_dir(self.directory)
        _ensure_key(self.private_key_path)
        return self.private_key_path.with_suffix(".pub").read_text().strip()

    def host_keypair(self, host_id: str, intent: str | None = None) -> tuple[str, str]:
        """(private OpenSSH text, public line) of the host key for `host_id`, made once
        per launch `intent` and kept, so a relaunch with the same intent installs the
        same key. A key made for another intent (a host id seen again after a state
        reset) is never reused: a new one replaces it."""
        path = self.directory / "hostkeys" / check_worker_id(host_id)
        _private_dir(self.directory)
        made_for = path.with_suffix(".intent")
        if intent is not None and (not made_for.exists() or made_for.read_text() != intent):
            self.forget_host(host_id)
        _ensure_key(path)
        if intent is not None and not made_for.exists():
            made_for.write_text(intent)
        return path.read_text(), path.with_suffix(".pub").read_text().strip()

    def forget_host(self, host_id: str) -> None:
        """Delete the host key made for `host_id` (its host is terminated): no copy of a
        retired host's private key stays behind, and none is installed again."""
        path = self.directory / "hostkeys" / check_worker_id(host_id)
        for suffix in ("", ".pub", ".intent"):
            path.with_suffix(suffix).unlink(missing_ok=True)

    def host_public_key(self, host_id: str) -> str | None:
        path = self.directory / "hostkeys" / f"{check_worker_id(host_id)}.pub"
        return path.read_text().strip() if path.exists() else None

    def trust(self, address: str, port: int | None, public_key: str) -> bool:
        """Record `public_key` for address:port in the fleet's known_hosts (once).
        Returns True when it added the line. Any key already recorded for the address
        (the same or a different one) is left as it is and nothing is added: with a
        different one the connection then refuses, as it must."""
        pattern = host_pattern(address, port)
        _private_dir(self.directory)
        with locked(self.known_hosts):
            existing = (self.known_hosts.read_text().splitlines()
                        if self.known_hosts.exists() else [])
            if any(ln.split(" ", 1)[0] == pattern for ln in existing):
                return False
            with self.known_hosts.open("a", encoding="utf-8") as f:
                f.write(f"{pattern} {public_key.strip()}\n")
        return True


def fleet_identity(state_path: Path) -> FleetIdentity:
    """The identity kept beside a state database (`.czarina/`)."""
    return FleetIdentity(state_path.resolve().parent / "ssh")


def _private_dir(directory: Path) -> None:
    """Make `directory` 0700 and ignored by git: it sits in the project's `.czarina/`,
    which users commit (upstream keeps config.json there), and must never take the
    private keys with it."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# czarina-fleet: private keys; never commit\n*\n")


def _ensure_key(path: Path) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"czarina-fleet {path.name}")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key("openssh"))
    path.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))
    os.replace(tmp, path)  # the private key appears whole or not at all
