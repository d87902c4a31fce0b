"""One writer for the fleet's trust files (issue 15, item 5): `.czarina/known_hosts` and
`connect.json` are merged under a lock, written by the controller only; read-only
verbs never write them; a stale process cannot bring back a retired key."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from czarina_fleet.controller.runtime.connect_facts import ConnectFacts
from czarina_fleet.providers.base import ConnectInfo, Instance, InstanceState
from czarina_fleet.remote.identity import fleet_identity


def _inst(host_id: str, address: str, key: str, pool: str = "lab") -> Instance:
    return Instance(host_id, host_id, pool, InstanceState.RUNNING, "netns", "local", False,
                    connect=ConnectInfo(address, host_key=f"ssh-ed25519 {key} c",
                                        identity_file="/keys/id"))


def test_a_stale_reader_never_writes_and_sees_new_keys(tmp_path: Path) -> None:
    reader = ConnectFacts(tmp_path, writer=False)   # a `status --watch` started first
    controller = ConnectFacts(tmp_path)
    controller.learn({"lab": [_inst("lab-1", "10.0.0.2", "AAA1")]})
    known = tmp_path / "known_hosts"
    before = known.read_bytes(), (tmp_path / "connect.json").read_bytes()
    # What a read-only verb does with what it sees: nothing reaches the disk.
    reader.learn({"lab": []})
    reader.remember("lab-9", "10.0.0.9", 22, "lab", "ssh-ed25519 ZZZ9", None)
    reader.retire("lab-1")
    assert (known.read_bytes(), (tmp_path / "connect.json").read_bytes()) == before
    # ... and it reads what the controller wrote after it started.
    assert reader.known_hosts_for("lab-1") == str(known)
    controller.remember("lab-2", "10.0.0.3", 22, "lab", "ssh-ed25519 BBB2", "/keys/id")
    assert reader.identity_file("lab-2") == "/keys/id"


def test_two_writers_merge_instead_of_overwriting(tmp_path: Path) -> None:
    first, second = ConnectFacts(tmp_path), ConnectFacts(tmp_path)  # both read "empty"
    first.remember("a-1", "10.0.0.2", 22, "p", "ssh-ed25519 AAA", None)
    second.remember("b-1", "10.0.0.3", 22, "p", "ssh-ed25519 BBB", None)
    assert (tmp_path / "known_hosts").read_text() == (
        "10.0.0.2 ssh-ed25519 AAA\n10.0.0.3 ssh-ed25519 BBB\n")


def test_a_retired_key_cannot_come_back(tmp_path: Path) -> None:
    stale = ConnectFacts(tmp_path)
    controller = ConnectFacts(tmp_path)
    controller.learn({"lab": [_inst("lab-1", "10.0.0.2", "AAA1")]})
    stale.learn({"lab": [_inst("lab-1", "10.0.0.2", "AAA1")]})  # its view: lab-1 lives
    controller.learn({"lab": []})                                # lab-1 terminated
    assert (tmp_path / "known_hosts").read_text() == ""
    # The stale process acts on its old view, by listing and by a direct record.
    stale.learn({"lab": [_inst("lab-1", "10.0.0.2", "AAA1")]})
    stale.remember("lab-1", "10.0.0.2", 22, "lab", "ssh-ed25519 AAA1", None)
    assert "AAA1" not in (tmp_path / "known_hosts").read_text()
    assert ConnectFacts(tmp_path).known_hosts_for("lab-1") is None
    # A new host at the same address, with its own key, is learned as usual.
    controller.learn({"lab": [_inst("lab-2", "10.0.0.2", "AAA2")]})
    assert (tmp_path / "known_hosts").read_text() == "10.0.0.2 ssh-ed25519 AAA2\n"


def _remember_many(directory: str, worker: int) -> None:
    facts = ConnectFacts(Path(directory))
    for i in range(5):
        facts.remember(f"h{worker}-{i}", f"10.1.{worker}.{i}", 22, "p",
                       f"ssh-ed25519 K{worker}x{i}", None)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_remember_many, args=(str(tmp_path), w)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    lines = (tmp_path / "known_hosts").read_text().splitlines()
    assert len(lines) == 40 and all(f"K{w}x{i}" in "".join(lines)
                                    for w in range(8) for i in range(5))


def test_identity_trust_leaves_a_recorded_address_alone(tmp_path: Path) -> None:
    ident = fleet_identity(tmp_path / ".czarina" / "fleet.db")
    first, second = ident.host_keypair("p-1")[1], ident.host_keypair("p-2")[1]
    assert ident.trust("10.0.0.5", 22, first)
    assert not ident.trust("10.0.0.5", 22, second)   # a different key: not appended
    assert ident.known_hosts.read_text() == f"10.0.0.5 {first}\n"
