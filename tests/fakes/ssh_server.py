"""A minimal in-process SSH server (asyncssh) for tests that need a real SSH exchange
on loopback: it accepts any client key and runs a handler for each command."""

from __future__ import annotations

import asyncssh


class AcceptAnyKey(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True
