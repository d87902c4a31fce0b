"""The pure planner on plain data: one test per behaviour."""

from __future__ import annotations

from pathlib import Path

from czarina_fleet.controller.core.desired import Desired, desired_from
from czarina_fleet.controller.core.observed import ConnectionLimit, Observed
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.model.actions import (
    AdoptHost,
    AdoptWorker,
    BootstrapHost,
    CleanupOrphan,
    LaunchHost,
    MarkHost,
    MarkWorker,
    MigrateWorker,
    StartWorker,
    StopWorker,
    TerminateHost,
)
from czarina_fleet.model.config import (
    FleetConfig,
    FleetSettings,
    PoolSpec,
    ProjectInfo,
    ScalingLimits,
    WorkerSpec,
)
from czarina_fleet.model.fleet import (
    HostProbe,
    HostRecord,
    Intent,
    IntentStatus,
    Overrides,
    SessionProbe,
    WorkerRecord,
)
from czarina_fleet.model.location import parse_location
from czarina_fleet.model.states import HostState, WorkerState
from czarina_fleet.providers.base import (
    ConnectInfo,
    Instance,
    InstanceState,
    InterruptionNotice,
    PriceQuote,
)

NOW = 10_000.0
H, W = HostState, WorkerState


def cfg(workers: dict[str, str], *, max_hosts: int = 4, slots: int = 2, budget: float | None = None,
        min_workers: int = 0, max_workers: int = 100, auto: bool = False,
        min_hosts: int = 0) -> FleetConfig:
    pool = PoolSpec(name="p", provider="fake", instance_types=["t3.large"],
                    regions=["us-east-1"], max_hosts=max_hosts, slots_per_host=slots,
                    min_hosts=min_hosts)
    return FleetConfig(
        source=Path("config.json"), format="json", project=ProjectInfo(), project_root=Path("."),
        workers=[WorkerSpec(id=w, branch=f"feat/{w}", location=parse_location(loc))
                 for w, loc in workers.items()],
        fleet=FleetSettings(pools=[pool], scaling=ScalingLimits(
            budget_per_hour=budget, min_workers=min_workers, max_workers=max_workers,
            auto_scale=auto, idle_timeout_s=600)),
    )


def desired(workers: dict[str, str], overrides: Overrides | None = None, **kw: object) -> Desired:
    return desired_from(cfg(workers, **kw), overrides or Overrides())  # type: ignore[arg-type]


QUOTE = {"p": PriceQuote("t3.large", "us-east-1", True, 0.03, "test")}


def host(hid: str, state: HostState = H.READY, since: float = NOW - 10, **kw: object) -> HostRecord:
    base = dict(provider="fake", slots=2, pool="p", instance_id="i-" + hid, address="10.0.0.1",
                shape="t3.large", region="us-east-1", spot=True, price_per_hour=0.03)
    base.update(kw)
    return HostRecord(hid, base.pop("provider"), state, since, base.pop("slots"), **base)  # type: ignore[arg-type]


def inst(hid: str, *, interrupted: bool = False, running: bool = True) -> Instance:
    state = InstanceState.RUNNING if running else InstanceState.PENDING
    return Instance("i-" + hid, hid, "p", state,
                    "t3.large", "us-east-1", True, NOW - 100,
                    ConnectInfo("10.0.0.1") if running else None, interrupted=interrupted)


def worker(wid: str, state: WorkerState = W.RUNNING, host_id: str | None = "p-1",
           loc: str = "pool:p", since: float = NOW - 10, **kw: object) -> WorkerRecord:
    return WorkerRecord(wid, state, since, host_id, loc, **kw)  # type: ignore[arg-type]


def probe(hid: str, *alive: str, reachable: bool = True, activity: float = NOW) -> HostProbe:
    return HostProbe(hid, reachable, NOW, sessions={
        w: SessionProbe(w, True, pane_activity=activity) for w in alive})


def obs(hosts: list[HostRecord] = (), workers: list[WorkerRecord] = (), *,
        instances: list[Instance] | None = None, probes: list[HostProbe] = (),
        **kw: object) -> Observed:
    inv = {"p": instances if instances is not None else
           [inst(h.host_id) for h in hosts if h.pool == "p"]}
    return Observed.of(list(hosts), list(workers), inventories=inv,
                       probes={p.host_id: p for p in probes}, quotes=QUOTE, **kw)


def kinds(actions: list[object], cls: type) -> list:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, cls)]


def test_starts_missing_worker_on_least_loaded_host() -> None:
    hosts = [host("p-1"), host("p-2")]
    acts = plan(desired({"a": "pool:p", "b": "pool:p"}),
                obs(hosts, [worker("a", host_id="p-1")], probes=[probe("p-1", "a"), probe("p-2")]),
                NOW)
    starts = kinds(acts, StartWorker)
    assert [(s.worker_id, s.host_id) for s in starts] == [("b", "p-2")]
    assert all(a.reason for a in acts) and "start worker b on p-2" in starts[0].describe()


def test_stops_removed_worker_and_forgets_it() -> None:
    acts = plan(desired({}), obs([host("p-1")], [worker("gone")], probes=[probe("p-1", "gone")]),
                NOW)
    stops = kinds(acts, StopWorker)
    assert [(s.worker_id, s.forget) for s in stops] == [("gone", True)]


def test_launches_host_when_no_free_slot_and_respects_pool_max() -> None:
    d = desired({f"w{i}": "pool:p" for i in range(7)}, max_hosts=3)
    acts = plan(d, obs([]), NOW)
    launches = kinds(acts, LaunchHost)
    assert [lh.host_id for lh in launches] == ["p-1", "p-2", "p-3"]
    waiting = [m for m in kinds(acts, MarkWorker) if m.state == W.PLACING]
    assert len(waiting) == 6  # 3 hosts x 2 slots
    pending = [m for m in kinds(acts, MarkWorker) if m.state == W.PENDING]
    assert [m.worker_id for m in pending] == ["w6"] and "max_hosts" in pending[0].reason


def test_launches_no_host_past_the_controllers_connection_limit() -> None:
    """One SSH connection (one open file) per host: with room for 2 and one pool host
    kept (the local machine and a terminated host need none), one more pool host is
    launched, not five; the workers left over wait, saying why in words that do not
    change from step to step."""
    limit = ConnectionLimit(2, "the open file limit (RLIMIT_NOFILE) is 66")
    local = host("local", provider="local", pool=None, instance_id=None, slots=0)
    gone = host("p-9", H.TERMINATED)  # keeps no connection
    d = desired({f"w{i}": "pool:p" for i in range(6)}, max_hosts=10, slots=1)
    running = [worker("w0", host_id="p-1")]
    observed = obs([local, gone, host("p-1", slots=1)], running,
                   instances=[inst("p-1")], probes=[probe("p-1", "w0")],
                   connection_limit=limit)
    acts = plan(d, observed, NOW)
    assert [lh.host_id for lh in kinds(acts, LaunchHost)] == ["p-10"]
    pending = [m for m in kinds(acts, MarkWorker) if m.state == W.PENDING]
    assert [m.worker_id for m in pending] == ["w2", "w3", "w4", "w5"]
    why = {m.reason for m in pending}
    assert why == {"no place: the controller keeps at most 2 host connections and has "
                   "that many hosts: the open file limit (RLIMIT_NOFILE) is 66"}
    # Next step, same fleet: the waiting workers are not marked again (no new event).
    waiting = [worker(m.worker_id, W.PENDING, None, last_error=m.reason) for m in pending]
    again = plan(d, obs([local, gone, host("p-1", slots=1),
                         host("p-10", H.REQUESTED, slots=1)],
                        [*running, worker("w1", W.PLACING, "p-10"), *waiting],
                        instances=[inst("p-1"), inst("p-10", running=False)],
                        probes=[probe("p-1", "w0")],
                        connection_limit=limit), NOW + 15)
    assert kinds(again, LaunchHost) == []
    assert [m for m in kinds(again, MarkWorker) if m.worker_id != "w1"] == []
    # Without the limit (the simulator's hosts), all five are launched.
    unlimited = plan(d, obs([local, gone, host("p-1", slots=1)], running,
                            instances=[inst("p-1")], probes=[probe("p-1", "w0")]), NOW)
    assert len(kinds(unlimited, LaunchHost)) == 5


def test_budget_is_never_exceeded() -> None:
    # 0.03/h per host: a 0.07 budget allows two hosts, counting the one already billing
    d = desired({f"w{i}": "pool:p" for i in range(8)}, budget=0.07)
    acts = plan(d, obs([host("p-1", H.BOOTING)]), NOW)
    assert len(kinds(acts, LaunchHost)) == 1
    assert any("budget" in m.reason for m in kinds(acts, MarkWorker))


def test_launch_failed_host_with_live_instance_counts_against_budget() -> None:
    d = desired({"a": "pool:p"}, budget=0.05)
    failed = host("p-1", H.LAUNCH_FAILED, since=NOW - 5000)
    acts = plan(d, obs([failed]), NOW)  # its instance is still listed
    assert kinds(acts, LaunchHost) == []
    assert [t.host_id for t in kinds(acts, TerminateHost)] == ["p-1"]


def test_launch_backoff_after_failure() -> None:
    d = desired({"a": "pool:p"})
    failed = host("p-1", H.LAUNCH_FAILED, since=NOW - 5)
    assert kinds(plan(d, obs([failed], instances=[]), NOW), LaunchHost) == []
    later = plan(d, obs([failed], instances=[]), NOW + 60)
    assert [lh.host_id for lh in kinds(later, LaunchHost)] == ["p-2"]  # never reuses an id


def test_max_workers_and_auto_scale_min() -> None:
    d = desired({"a": "local", "b": "local", "c": "local"}, Overrides(max_workers=2))
    acts = plan(d, obs([]), NOW)
    assert sorted(s.worker_id for s in kinds(acts, StartWorker)) == ["a", "b"]
    # auto-scale: idle workers above min are stopped, the last in config order first
    d2 = desired({"a": "pool:p", "b": "pool:p", "c": "pool:p"}, auto=True, min_workers=1)
    hosts = [host("p-1", slots=4)]
    ws = [worker(w) for w in "abc"]
    acts2 = plan(d2, obs(hosts, ws, probes=[probe("p-1", "a", "b", "c", activity=NOW - 700)]),
                 NOW)
    assert sorted(s.worker_id for s in kinds(acts2, StopWorker)) == ["b", "c"]


def test_cloud_location_gets_implicit_pool() -> None:
    d = desired({"a": "aws-spot:c5.xlarge:eu-west-1"})
    (pool_name,) = [n for n in d.pools if n != "p"]
    quote = {pool_name: PriceQuote("c5.xlarge", "eu-west-1", True, 0.05, "t")}
    acts = plan(d, Observed.of([], [], inventories={}, quotes=quote), NOW)
    (launch,) = kinds(acts, LaunchHost)
    assert (launch.provider, launch.shape, launch.region, launch.spot) == (
        "aws", "c5.xlarge", "eu-west-1", True)


def test_remote_literal_becomes_static_host_bootstrapped() -> None:
    d = desired({"a": "remote:me@10.9.9.9:2222"})
    acts = plan(d, obs([]), NOW)
    (adopt,) = kinds(acts, AdoptHost)
    assert (adopt.host.address, adopt.host.port, adopt.host.state) == ("10.9.9.9", 2222, H.BOOTING)
    assert [b.host_id for b in kinds(acts, BootstrapHost)] == [adopt.host.host_id]
    assert kinds(acts, StartWorker) == []  # waits for the bootstrap


def test_adopts_unknown_owned_instance_and_cleans_true_orphan() -> None:
    stray = Instance("i-x", "old-3", "old", InstanceState.RUNNING, "t3", "r", True)
    o = Observed.of([], [], inventories={"p": [inst("p-7")], "old": [stray]}, quotes=QUOTE)
    acts = plan(desired({}), o, NOW)
    assert [a.host.host_id for a in kinds(acts, AdoptHost)] == ["p-7"]
    assert [(c.what, c.instance_id) for c in kinds(acts, CleanupOrphan)] == [("instance", "i-x")]
    # the adopted host's index is not reused by the next launch
    acts2 = plan(desired({"a": "pool:p", "b": "pool:p", "c": "pool:p"}), o, NOW)
    assert [lh.host_id for lh in kinds(acts2, LaunchHost)] == ["p-8"]


def test_adopts_unknown_session_and_stops_duplicate() -> None:
    hosts = [host("p-1"), host("p-2")]
    ws = [worker("b", host_id="p-1")]
    acts = plan(desired({"a": "pool:p", "b": "pool:p"}),
                obs(hosts, ws, probes=[probe("p-1", "b"), probe("p-2", "a", "b")]), NOW)
    assert [(a.worker_id, a.host_id) for a in kinds(acts, AdoptWorker)] == [("a", "p-2")]
    assert [(c.worker_id, c.host_id) for c in kinds(acts, CleanupOrphan)] == [("b", "p-2")]
    assert kinds(acts, StartWorker) == []


def test_host_stuck_booting_is_replaced() -> None:
    stuck = host("p-1", H.BOOTING, since=NOW - 601, address=None)
    acts = plan(desired({"a": "pool:p"}), obs([stuck], [worker("a", W.PLACING)]), NOW)
    assert [t.host_id for t in kinds(acts, TerminateHost)] == ["p-1"]
    assert [lh.host_id for lh in kinds(acts, LaunchHost)] == ["p-2"]


def test_bootstrap_retried_with_backoff_then_given_up() -> None:
    failed = host("p-1", H.BOOTSTRAP_FAILED, since=NOW - 10, attempts=1, last_error="no git")
    assert kinds(plan(desired({}), obs([failed]), NOW), BootstrapHost) == []
    retry = plan(desired({}), obs([failed]), NOW + 30)
    assert [(b.host_id, b.attempt) for b in kinds(retry, BootstrapHost)] == [("p-1", 2)]
    gave_up = host("p-1", H.BOOTSTRAP_FAILED, since=NOW - 10_000, attempts=3, last_error="x")
    acts = plan(desired({}), obs([gave_up]), NOW)
    assert kinds(acts, BootstrapHost) == []
    assert "gave up" in kinds(acts, TerminateHost)[0].reason


def test_worker_that_does_not_come_up_is_placed_again() -> None:
    hosts = [host("p-1"), host("p-2")]
    w = worker("a", W.STARTING, host_id="p-1", since=NOW - 400, attempts=1)
    acts = plan(desired({"a": "pool:p"}), obs(hosts, [w], probes=[probe("p-1"), probe("p-2")]),
                NOW)
    assert any(m.state == W.PENDING for m in kinds(acts, MarkWorker))
    (start,) = kinds(acts, StartWorker)
    assert start.attempt == 2


def test_idle_host_clock_then_terminated() -> None:
    h = host("p-1")
    acts = plan(desired({}), obs([h]), NOW)
    (mark,) = kinds(acts, MarkHost)
    assert dict(mark.fields) == {"idle_since": NOW}
    idle = host("p-1", idle_since=NOW - 601)
    acts2 = plan(desired({}), obs([idle]), NOW)
    assert "idle" in kinds(acts2, TerminateHost)[0].reason
    # pool min_hosts keeps it
    assert kinds(plan(desired({}, min_hosts=1), obs([idle]), NOW), TerminateHost) == []


def test_spot_interruption_replaces_workers() -> None:
    hosts = [host("p-1")]
    ws = [worker("a"), worker("b")]
    acts = plan(desired({"a": "pool:p", "b": "pool:p"}),
                obs(hosts, ws, instances=[inst("p-1", interrupted=True)]), NOW)
    assert any(m.state == H.INTERRUPTED for m in kinds(acts, MarkHost))
    assert {m.worker_id for m in kinds(acts, MarkWorker) if m.state == W.PENDING} == {"a", "b"}
    assert [lh.host_id for lh in kinds(acts, LaunchHost)] == ["p-2"]


def test_interruption_notice_with_deadline_migrates() -> None:
    notice = InterruptionNotice("i-p-1", "p-1", "rebalance", deadline=NOW + 120)
    acts = plan(desired({"a": "pool:p"}), obs([host("p-1")], [worker("a")],
                                              probes=[probe("p-1", "a")], notices=[notice]), NOW)
    assert any(m.state == H.DRAINING for m in kinds(acts, MarkHost))
    assert [m.worker_id for m in kinds(acts, MigrateWorker)] == ["a"]


def test_a_host_under_notice_leaves_the_connection_count_so_its_replacement_launches() -> None:
    """At the open file limit, the host being taken is not what keeps its workers from
    a new host: the replacement launches now, as for max_hosts, and connects later."""
    notice = InterruptionNotice("i-p-1", "p-1", "rebalance", deadline=NOW + 120)
    acts = plan(desired({"a": "pool:p"}, max_hosts=1),
                obs([host("p-1")], [worker("a")], probes=[probe("p-1", "a")],
                    notices=[notice], connection_limit=ConnectionLimit(1, "limit")), NOW)
    assert [m.worker_id for m in kinds(acts, MigrateWorker)] == ["a"]
    assert [lh.host_id for lh in kinds(acts, LaunchHost)] == ["p-2"]


def test_vanished_instance_marks_host_and_unlisted_pool_is_not_assumed_empty() -> None:
    ws = [worker("a")]
    acts = plan(desired({"a": "pool:p"}), obs([host("p-1")], ws, instances=[]), NOW)
    assert any(m.state == H.INTERRUPTED for m in kinds(acts, MarkHost))
    o = Observed.of([host("p-1")], ws, inventories={}, quotes=QUOTE,
                    probes={"p-1": probe("p-1", "a")})
    assert plan(desired({"a": "pool:p"}), o, NOW) == []


def test_location_change_migrates_worker() -> None:
    d = desired({"a": "pool:p"}, Overrides(locations={"a": "local"}))
    acts = plan(d, obs([host("p-1")], [worker("a")], probes=[probe("p-1", "a")]), NOW)
    (mig,) = kinds(acts, MigrateWorker)
    assert (mig.from_host, mig.to_location) == ("p-1", "local")


def test_unreachable_host_marked_and_recovered() -> None:
    acts = plan(desired({}), obs([host("p-1", idle_since=NOW)],
                                 probes=[probe("p-1", reachable=False)]), NOW)
    assert [m.state for m in kinds(acts, MarkHost)] == [H.UNREACHABLE]
    back = plan(desired({}), obs([host("p-1", H.UNREACHABLE, idle_since=NOW)],
                                 probes=[probe("p-1")]), NOW)
    assert [m.state for m in kinds(back, MarkHost)] == [H.READY]


def test_steady_state_plans_nothing() -> None:
    hosts = [host("p-1")]
    acts = plan(desired({"a": "pool:p", "b": "pool:p"}),
                obs(hosts, [worker("a"), worker("b")], probes=[probe("p-1", "a", "b")]), NOW)
    assert acts == []


def _static(hid: str, state: HostState = H.READY) -> HostRecord:
    return host(hid, state, provider="static", pool=None, instance_id=None)


def test_removed_static_host_moves_its_workers_then_is_retired() -> None:
    d = desired({"a": "local", "b": "auto"})
    busy = obs([_static("gone")], [worker("a", host_id="gone", loc="remote:gone"),
                                   worker("b", host_id="gone", loc="auto")],
               probes=[probe("gone", "a", "b")])
    acts = plan(d, busy, NOW)
    moves = {m.worker_id: m for m in kinds(acts, MigrateWorker)}
    assert set(moves) == {"a", "b"}  # the auto worker too: the host is no place any more
    assert all("gone was removed from the configuration" in m.reason for m in moves.values())
    assert not [m for m in kinds(acts, MarkHost) if m.host_id == "gone"]  # not while busy
    empty = plan(d, obs([_static("gone")], probes=[probe("gone")]), NOW)
    assert [m.state for m in kinds(empty, MarkHost) if m.host_id == "gone"] == [
        H.TERMINATING, H.TERMINATED]
    assert not kinds(empty, TerminateHost)  # the machine is not ours to stop


def test_removed_unreachable_static_host_is_retired_and_its_workers_placed_again() -> None:
    d = desired({"a": "local"})
    acts = plan(d, obs([_static("gone", H.UNREACHABLE)],
                       [worker("a", host_id="gone", loc="remote:gone")],
                       probes=[probe("gone", reachable=False)]), NOW)
    assert H.TERMINATED in [m.state for m in kinds(acts, MarkHost) if m.host_id == "gone"]
    (start,) = kinds(acts, StartWorker)
    assert (start.worker_id, start.host_id) == ("a", "local")


def _open_intent(key: str) -> Intent:
    return Intent(key, "migrate", {}, IntentStatus.OPEN, NOW - 5, NOW - 5)


def test_failed_move_checkpoint_is_tried_again_not_left_down() -> None:
    d = desired({"a": "local"})
    w = worker("a", W.CHECKPOINTING, host_id="p-1")
    acts = plan(d, obs([host("p-1")], [w], probes=[probe("p-1")]), NOW)
    (mig,) = kinds(acts, MigrateWorker)
    assert (mig.from_host, mig.to_location) == ("p-1", "local") and "again" in mig.reason
    # while the move's intent is open (the executor is on it), nothing more
    busy = obs([host("p-1")], [w], probes=[probe("p-1")],
               intents=[_open_intent(mig.key)])
    assert not kinds(plan(d, busy, NOW), MigrateWorker)
