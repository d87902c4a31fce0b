"""Spot interruptions in the pure planner and its policy, on plain data."""

from __future__ import annotations

from pathlib import Path

from czarina_fleet.controller.core.desired import Desired, desired_from
from czarina_fleet.controller.core.observed import Observed
from czarina_fleet.controller.core.plan_context import HOST_GONE
from czarina_fleet.controller.core.planner import plan
from czarina_fleet.model.actions import (
    CleanupOrphan,
    LaunchHost,
    MarkHost,
    MarkWorker,
    MigrateWorker,
    StartWorker,
    TerminateHost,
)
from czarina_fleet.model.config import FleetConfig, FleetSettings, PoolSpec, ProjectInfo, WorkerSpec
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
from czarina_fleet.policies.interruption import (
    HostDecision,
    Interruption,
    checkpoint_budget,
    decide_host,
    interruptions,
    needs_checkpoint,
)
from czarina_fleet.providers.base import (
    ConnectInfo,
    Instance,
    InstanceState,
    InterruptionNotice,
    PriceQuote,
)

NOW = 50_000.0
H, W = HostState, WorkerState
QUOTE = {"p": PriceQuote("m5.large", "us-east-1", True, 0.04, "test")}


def desired(workers: list[str], *, max_hosts: int = 4) -> Desired:
    pool = PoolSpec(name="p", provider="fake", instance_types=["m5.large"],
                    regions=["us-east-1"], max_hosts=max_hosts, slots_per_host=2)
    cfg = FleetConfig(source=Path("config.json"), format="json", project=ProjectInfo(),
                      project_root=Path("."), fleet=FleetSettings(pools=[pool]),
                      workers=[WorkerSpec(id=w, branch=f"feat/{w}",
                                          location=parse_location("pool:p")) for w in workers])
    return desired_from(cfg, Overrides())


def host(hid: str, state: HostState = H.READY) -> HostRecord:
    return HostRecord(hid, "fake", state, NOW - 600, 2, pool="p", instance_id="i-" + hid,
                      address="10.0.0.9", spot=True, price_per_hour=0.04)


def inst(hid: str, *, interrupted: bool = False) -> Instance:
    return Instance("i-" + hid, hid, "p", InstanceState.RUNNING, "m5.large", "us-east-1", True,
                    NOW - 900, ConnectInfo("10.0.0.9"), interrupted=interrupted)


def worker(wid: str, state: WorkerState = W.RUNNING, host_id: str | None = "p-1") -> WorkerRecord:
    return WorkerRecord(wid, state, NOW - 300, host_id, "pool:p")


def notice(hid: str, deadline: float | None) -> InterruptionNotice:
    return InterruptionNotice("i-" + hid, hid, "spot interruption notice", deadline)


def observed(hosts: list[HostRecord], workers: list[WorkerRecord], *,
             instances: list[Instance] | None = None, notices: list[InterruptionNotice] = (),
             alive: dict[str, list[str]] | None = None, intents: list[Intent] = ()) -> Observed:
    alive = alive if alive is not None else {
        h.host_id: [w.worker_id for w in workers if w.host_id == h.host_id] for h in hosts}
    probes = {hid: HostProbe(hid, True, NOW, sessions={
        w: SessionProbe(w, True, pane_activity=NOW) for w in ws}) for hid, ws in alive.items()}
    inv = {"p": instances if instances is not None else [inst(h.host_id) for h in hosts]}
    return Observed.of(hosts, workers, inventories=inv, notices=list(notices), probes=probes,
                       quotes=QUOTE, intents=list(intents))


def of(actions: list[object], cls: type) -> list:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, cls)]


# --- the policy -------------------------------------------------------------------------

def test_policy_decisions_for_each_host_state() -> None:
    soon = Interruption("h", "notice", NOW + 120)
    gone = Interruption("h", "reclaimed", None)
    assert decide_host(H.READY, soon, HOST_GONE) == HostDecision.DRAIN
    assert decide_host(H.DRAINING, soon, HOST_GONE) == HostDecision.DRAIN
    assert decide_host(H.UNREACHABLE, soon, HOST_GONE) == HostDecision.GONE  # cannot save
    assert decide_host(H.READY, gone, HOST_GONE) == HostDecision.GONE
    assert decide_host(H.INTERRUPTED, gone, HOST_GONE) == HostDecision.NOTHING
    assert needs_checkpoint(W.RUNNING, False) and needs_checkpoint(W.CHECKPOINTING, False)
    assert not needs_checkpoint(W.CHECKPOINTING, True)  # one is in progress
    assert not needs_checkpoint(W.PENDING, False)
    assert checkpoint_budget(NOW + 120, NOW, 300) == 120
    assert checkpoint_budget(NOW + 900, NOW, 300) == 300
    assert checkpoint_budget(NOW - 5, NOW, 300) == 0
    assert checkpoint_budget(None, NOW, 300) == 300


def test_a_notice_past_its_deadline_and_a_flagged_instance_count_as_gone() -> None:
    found = interruptions({"p": [inst("p-2", interrupted=True)]},
                          [notice("p-1", NOW - 1), notice("p-3", NOW + 60)], NOW)
    assert {h: i.deadline for h, i in found.items()} == {"p-1": None, "p-2": None,
                                                         "p-3": NOW + 60}


# --- notice with a deadline: checkpoint, then move ----------------------------------------

def test_notice_drains_host_and_checkpoints_every_worker_with_the_deadline() -> None:
    ws = [worker("a"), worker("b"), worker("c", host_id="p-2")]
    acts = plan(desired(["a", "b", "c"]),
                observed([host("p-1"), host("p-2")], ws, notices=[notice("p-1", NOW + 120)]),
                NOW)
    assert [(m.host_id, m.state) for m in of(acts, MarkHost)] == [("p-1", H.DRAINING)]
    migrations = of(acts, MigrateWorker)
    assert [(m.worker_id, m.from_host, m.deadline) for m in migrations] == [
        ("a", "p-1", NOW + 120), ("b", "p-1", NOW + 120)]
    assert all("120s" in m.reason for m in migrations)
    # nothing is started on the doomed host, nothing terminates it yet
    assert not [s for s in of(acts, StartWorker) if s.host_id == "p-1"]
    assert of(acts, TerminateHost) == []


def test_checkpointed_workers_are_placed_elsewhere_even_with_the_pool_at_max() -> None:
    """Next step: the workers are pending; the draining host does not count against
    max_hosts=1, so a replacement is launched for them."""
    ws = [worker("a", W.PENDING, None), worker("b", W.PENDING, None)]
    acts = plan(desired(["a", "b"], max_hosts=1),
                observed([host("p-1", H.DRAINING)], ws, notices=[notice("p-1", NOW + 90)],
                         alive={"p-1": []}),
                NOW)
    assert [lh.host_id for lh in of(acts, LaunchHost)] == ["p-2"]
    placing = {m.worker_id: dict(m.fields).get("host_id") for m in of(acts, MarkWorker)
               if m.state == W.PLACING}
    assert placing == {"a": "p-2", "b": "p-2"}
    # the drained host is let go at once
    assert [t.host_id for t in of(acts, TerminateHost)] == ["p-1"]


def test_a_failed_checkpoint_is_tried_again_while_the_deadline_allows() -> None:
    ws = [worker("a", W.CHECKPOINTING)]
    d = desired(["a"])
    hosts = [host("p-1", H.DRAINING)]
    acts = plan(d, observed(hosts, ws, notices=[notice("p-1", NOW + 60)]), NOW)
    (again,) = of(acts, MigrateWorker)
    assert again.deadline == NOW + 60 and "again" in again.reason
    # while one is in progress (its intent open), no second one
    busy = Intent("migrate:a:p-1", "migrate", {}, IntentStatus.OPEN, NOW, NOW)
    assert of(plan(d, observed(hosts, ws, notices=[notice("p-1", NOW + 60)], intents=[busy]),
                   NOW), MigrateWorker) == []


def test_deadline_passed_before_the_checkpoint_worked_places_again_from_pushed() -> None:
    ws = [worker("a", W.CHECKPOINTING)]
    acts = plan(desired(["a"]), observed([host("p-1", H.DRAINING)], ws,
                                         notices=[notice("p-1", NOW - 1)]), NOW)
    assert [(m.host_id, m.state) for m in of(acts, MarkHost)] == [("p-1", H.INTERRUPTED)]
    assert of(acts, MigrateWorker) == []
    assert [m.state for m in of(acts, MarkWorker) if m.worker_id == "a"][-2:] == [
        W.PENDING, W.PLACING]


def test_session_of_a_moved_worker_on_a_draining_host_is_removed_not_adopted() -> None:
    ws = [worker("a", W.PENDING, None), worker("b")]  # b still on it: not yet drained
    acts = plan(desired(["a", "b"]), observed([host("p-1", H.DRAINING)], ws,
                                              notices=[notice("p-1", NOW + 60)],
                                              alive={"p-1": ["a", "b"]}), NOW)
    assert [(c.what, c.worker_id) for c in of(acts, CleanupOrphan)] == [("session", "a")]
    assert not [s for s in of(acts, StartWorker) if s.host_id == "p-1"]
    assert [m.worker_id for m in of(acts, MigrateWorker)] == ["b"]


# --- gone without notice: place again directly ---------------------------------------------

def test_instance_already_taken_places_workers_again_without_checkpoint() -> None:
    ws = [worker("a"), worker("b")]
    acts = plan(desired(["a", "b"]),
                observed([host("p-1")], ws, instances=[inst("p-1", interrupted=True)],
                         notices=[notice("p-1", None)]), NOW)
    assert of(acts, MigrateWorker) == []
    assert (("p-1", H.INTERRUPTED)) in [(m.host_id, m.state) for m in of(acts, MarkHost)]
    pending = {m.worker_id for m in of(acts, MarkWorker) if m.state == W.PENDING}
    assert pending == {"a", "b"}
    assert [lh.host_id for lh in of(acts, LaunchHost)] == ["p-2"]


def test_notice_for_an_instance_already_vanished_is_treated_as_gone() -> None:
    ws = [worker("a")]
    acts = plan(desired(["a"]), observed([host("p-1")], ws, instances=[],
                                         notices=[notice("p-1", NOW + 100)]), NOW)
    assert of(acts, MigrateWorker) == []
    assert [m.state for m in of(acts, MarkHost) if m.host_id == "p-1"] == [H.INTERRUPTED]


def test_draining_host_whose_notice_disappeared_is_still_emptied_then_terminated() -> None:
    ws = [worker("a")]
    acts = plan(desired(["a"]), observed([host("p-1", H.DRAINING)], ws), NOW)
    (mig,) = of(acts, MigrateWorker)
    assert mig.deadline is None and of(acts, TerminateHost) == []
    empty = plan(desired(["a"]), observed([host("p-1", H.DRAINING)],
                                          [worker("a", W.PENDING, None)], alive={"p-1": []}),
                 NOW)
    assert [t.host_id for t in of(empty, TerminateHost)] == ["p-1"]
