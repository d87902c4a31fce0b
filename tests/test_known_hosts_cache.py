"""known_hosts files are parsed once per change, not once per connection (1,000 hosts
connecting each parsed a 1,000-line file: O(n^2)); a recorded, changed or removed key is
seen at the very next lookup."""

from __future__ import annotations

from pathlib import Path

import asyncssh

from czarina_fleet.remote import hostkeys


def _line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    return f"{hostkeys.host_pattern(host, port)} {key.export_public_key().decode().strip()}\n"


def _blobs(keys: list[asyncssh.SSHKey]) -> list[bytes]:
    return [k.public_data for k in keys]


def _keys(n: int) -> list[asyncssh.SSHKey]:
    return [asyncssh.generate_private_key("ssh-ed25519").convert_to_public() for _ in range(n)]


def test_parsed_once_while_the_file_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    keys = _keys(3)
    path.write_text("".join(_line("127.0.0.1", 2200 + i, k) for i, k in enumerate(keys)))
    first = hostkeys.read_known_hosts(str(path))
    assert first is not None and first is hostkeys.read_known_hosts(str(path))
    for i, key in enumerate(keys):
        matcher = hostkeys.KnownHostsMatcher([str(path)])
        found, _cas, _revoked = matcher(f"h{i}", "127.0.0.1", 2200 + i)
        assert _blobs(found) == _blobs([key]) and matcher.had_entries


def _match(path: Path, address: str) -> list[asyncssh.SSHKey]:
    return hostkeys.KnownHostsMatcher([str(path)])("a-name", address, 22)[0]


def test_a_recorded_or_replaced_key_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    old, new, other = _keys(3)
    path.write_text(_line("10.0.0.1", 22, old))
    assert _blobs(_match(path, "10.0.0.1")) == _blobs([old])
    hostkeys.record_host_key(str(path), "10.0.0.2", 22, other)  # appended (TOFU)
    assert _blobs(_match(path, "10.0.0.2")) == _blobs([other])
    # The same length, written anew (ssh-keygen -R then a new key): never the old entry.
    replaced = tmp_path / "replacement"
    replaced.write_text(_line("10.0.0.1", 22, new))
    replaced.replace(path)
    assert _blobs(_match(path, "10.0.0.1")) == _blobs([new])
    assert _match(path, "10.0.0.2") == []


def test_a_missing_file_or_a_directory_holds_no_keys(tmp_path: Path) -> None:
    assert hostkeys.read_known_hosts(str(tmp_path / "absent")) is None
    assert hostkeys.read_known_hosts(str(tmp_path)) is None
    matcher = hostkeys.KnownHostsMatcher([str(tmp_path / "absent")])
    assert matcher("h", "10.0.0.1", 22) == ([], [], []) and not matcher.had_entries
