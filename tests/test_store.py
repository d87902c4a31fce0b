"""The state store: schema, transitions, intents, overrides, ledger, crash safety, lock."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.controller.state.lock import ControllerLock, LockHeld, read_holder
from czarina_fleet.controller.state.migrations import LATEST_VERSION
from czarina_fleet.controller.state.override_tables import KEEP
from czarina_fleet.controller.state.store import Store, StoreError, UnknownEntity
from czarina_fleet.model.fleet import HostRecord, IntentStatus, LedgerEntry, WorkerRecord
from czarina_fleet.model.states import HostState, IllegalTransition, WorkerState

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Store:
    s = Store(tmp_path / "fleet.db", clock)
    yield s
    s.close()


def _host(host_id: str = "p-1", state: HostState = HostState.REQUESTED) -> HostRecord:
    return HostRecord(host_id=host_id, provider="fake", state=state, state_since=1000.0,
                      slots=2, pool="p", shape="t3.large", region="us-east-1", spot=True,
                      price_per_hour=0.03)


def test_new_store_is_at_latest_schema_in_wal_mode(store: Store) -> None:
    assert store.schema_version == LATEST_VERSION
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_reopening_keeps_data_and_does_not_rerun_migrations(tmp_path: Path,
                                                            clock: FakeClock) -> None:
    s = Store(tmp_path / "f.db", clock)
    s.upsert_host(_host())
    s.close()
    s2 = Store(tmp_path / "f.db", clock)
    assert [h.host_id for h in s2.hosts()] == ["p-1"]
    assert s2.schema_version == LATEST_VERSION


def test_store_newer_than_code_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    Store(tmp_path / "f.db", clock).close()
    db = sqlite3.connect(tmp_path / "f.db")
    db.execute("UPDATE schema_version SET version=?", (LATEST_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="upgrade czarina-fleet"):
        Store(tmp_path / "f.db", clock)


def test_host_roundtrip_and_legal_transition_records_event(store: Store,
                                                           clock: FakeClock) -> None:
    store.upsert_host(_host(), reason="launch intent")
    clock.advance(5)
    h = store.transition_host("p-1", HostState.BOOTING, "instance running",
                              address="10.0.0.5", instance_id="i-1")
    assert h.state == HostState.BOOTING and h.state_since == 1005.0
    assert store.host("p-1") == h
    assert store.host("p-1").spot is True
    evs = store.events(entity="host")
    assert [(e.from_state, e.to_state, e.reason) for e in evs] == [
        (None, "requested", "launch intent"), ("requested", "booting", "instance running")]


def test_illegal_transition_is_rejected_and_changes_nothing(store: Store) -> None:
    store.upsert_host(_host(state=HostState.TERMINATED))
    with pytest.raises(IllegalTransition):
        store.transition_host("p-1", HostState.READY, "nope")
    assert store.host("p-1").state == HostState.TERMINATED
    assert len(store.events(entity="host")) == 1


def test_worker_transitions_checked(store: Store) -> None:
    store.upsert_worker(WorkerRecord("a", WorkerState.PENDING, 1000.0))
    store.transition_worker("a", WorkerState.STARTING, "placed", host_id="p-1")
    with pytest.raises(IllegalTransition):
        store.transition_worker("a", WorkerState.CHECKPOINTING, "bad")
    w = store.transition_worker("a", WorkerState.RUNNING, "session up")
    assert w.host_id == "p-1" and w.state == WorkerState.RUNNING
    with pytest.raises(UnknownEntity):
        store.transition_worker("zz", WorkerState.RUNNING, "?")


def test_intents_idempotent_on_key(store: Store) -> None:
    a = store.begin_intent("launch:p-1", "launch", {"host_id": "p-1"})
    b = store.begin_intent("launch:p-1", "launch", {"host_id": "other"})
    assert a.payload == b.payload == {"host_id": "p-1"} and b.attempts == 2
    assert [i.key for i in store.open_intents()] == ["launch:p-1"]
    store.finish_intent("launch:p-1", IntentStatus.DONE, {"instance_id": "i-9"})
    assert store.open_intents() == []
    done = store.begin_intent("launch:p-1", "launch", {})
    assert done.status == IntentStatus.DONE and done.result == {"instance_id": "i-9"}


def test_overrides_keep_and_clear(store: Store) -> None:
    assert store.get_overrides().min_workers is None
    store.set_overrides(min_workers=2, max_workers=5, locations={"a": "pool:gpu"})
    o = store.set_overrides(auto_scale=True, max_workers=KEEP)
    assert (o.min_workers, o.max_workers, o.auto_scale) == (2, 5, True)
    assert o.locations == {"a": "pool:gpu"}
    o = store.set_overrides(min_workers=None, locations={"a": None})
    assert o.min_workers is None and o.locations == {} and o.max_workers == 5
    assert any("min_workers=None" in e.reason for e in store.events(entity="fleet"))


def test_ledger_range_and_watermark_written_together(store: Store) -> None:
    entries = [LedgerEntry(float(t), "p-1", "a" if t % 2 else None, "p", "fake", "t3", "r",
                           True, 0.01 * t, 0.03, 60.0) for t in range(10)]
    assert store.ledger_watermark() is None
    assert store.add_ledger_entries(entries, accrued_until=10.0) == 10
    got = store.ledger(since=3, until=7)
    assert [e.ts for e in got] == [3.0, 4.0, 5.0, 6.0]
    assert got[0] == entries[3] and store.ledger_watermark() == 10.0


def test_migration_from_version_1_keeps_rows(tmp_path: Path, clock: FakeClock) -> None:
    from czarina_fleet.controller.state.migrations import MIGRATIONS
    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("CREATE TABLE schema_version (version INTEGER)")
    db.executescript(MIGRATIONS[0][1])
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("INSERT INTO hosts (host_id, provider, state, state_since, slots, work_dir)"
               " VALUES ('old', 'static', 'ready', 5, 2, '~/w')")
    db.commit()
    db.close()
    s = Store(tmp_path / "old.db", clock)
    assert s.schema_version == LATEST_VERSION
    assert s.host("old").idle_since is None and s.host("old").state == HostState.READY


def test_transaction_rolls_back_everything_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert_host(_host("p-1"))
            store.begin_intent("k", "launch", {})
            raise RuntimeError("boom")
    assert store.hosts() == [] and store.open_intents() == [] and store.events() == []


_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    from pathlib import Path
    from czarina_fleet.clock import FakeClock
    from czarina_fleet.controller.state.store import Store
    from czarina_fleet.model.fleet import HostRecord
    from czarina_fleet.model.states import HostState
    s = Store(Path({db!r}), FakeClock(0))
    i = 0
    while True:
        with s.transaction():
            hid = f"h-{{i}}"
            s.upsert_host(HostRecord(hid, "fake", HostState.REQUESTED, 0.0, 2))
            s.begin_intent("launch:" + hid, "launch", {{"host_id": hid}})
        if i == 0:
            print("ready", flush=True)
        i += 1
""")


def test_kill_9_mid_writes_leaves_consistent_store(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER.format(src=SRC, db=str(db))],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for _ in range(2000):  # let it write for a little while
            if len(sqlite3.connect(db).execute("SELECT 1 FROM hosts LIMIT 50").fetchall()) >= 50:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    s = Store(db, FakeClock(0))
    hosts = {h.host_id for h in s.hosts()}
    intents = {i.payload["host_id"] for i in s.open_intents()}
    assert hosts and hosts == intents  # every host has its intent and vice versa
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_lock_second_holder_in_other_process_is_told_who(tmp_path: Path) -> None:
    lock_file = tmp_path / "fleet.db.lock"
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {SRC!r})
        from pathlib import Path
        from czarina_fleet.controller.state.lock import ControllerLock
        with ControllerLock(Path({str(lock_file)!r})):
            print("held", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as err:
            ControllerLock(lock_file).acquire()
        assert f"pid {proc.pid}" in str(err.value)
        assert read_holder(lock_file).pid == proc.pid
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the kernel releases a flock of a killed holder
        proc.wait()
    with ControllerLock(lock_file) as lock:
        assert lock.held and read_holder(lock_file).pid == os.getpid()
    assert read_holder(lock_file) is None


def test_a_file_that_is_not_a_database_is_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    path.write_text("not sqlite at all, " * 100)
    with pytest.raises(StoreError, match=f"the state database {path} is damaged .*recover"):
        Store(path, FakeClock())
    with pytest.raises(StoreError, match="cannot use the state database .*Not a directory"):
        Store(path / "under-a-file" / "fleet.db", FakeClock())
