"""A pool whose shape has no price anywhere (no published source, not in the driver's
table) launches nothing, and says so; with the pool's `max_price_per_hour` it launches,
recording that cap as the host's price, an upper bound the budget can trust. Against
the fake GCE server through the real GCP client (no pricing API key: no source)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from czarina_fleet.model.states import HostState
from tests.fakes.gcp_server import FakeGce
from tests.test_cloud_reconcile import Backend, Harness, gcp_backend

UNLISTED = "n2-highcpu-2"  # a real GCE type the built-in table has no row for


@pytest.fixture
def gce() -> Iterator[FakeGce]:
    server = FakeGce(polls_until_done=1).start()
    yield server
    server.stop()
    assert server.violations == []


def _backend(gce: FakeGce, max_price: float | None) -> tuple[str, Backend]:
    fleet = f"f{uuid.uuid4().hex[:8]}"
    base = gcp_backend(gce, fleet)
    pool = base.pool.model_copy(update={"instance_types": [UNLISTED],
                                        "max_price_per_hour": max_price})
    return fleet, gcp_backend(gce, fleet, pool=pool)


def test_unpriced_shape_launches_nothing_and_says_why(tmp_path: Path, gce: FakeGce) -> None:
    fleet, cloud = _backend(gce, None)
    h = Harness(tmp_path, fleet, cloud)
    h.rec = h.build(2)
    h.tick(3)
    assert cloud.launches() == 0
    reasons = {w.last_error for w in h.store.workers()}
    assert any(r and "no price quote for pool p" in r for r in reasons), reasons


def test_max_price_is_the_recorded_upper_bound(tmp_path: Path, gce: FakeGce) -> None:
    fleet, cloud = _backend(gce, 0.05)
    h = Harness(tmp_path, fleet, cloud)
    h.rec = h.build(2)
    h.tick(6)
    assert cloud.launches() == 1 and h.running() == ["w0", "w1"]
    (host,) = [x for x in h.store.hosts() if x.state == HostState.READY]
    assert host.price_per_hour == 0.05
    assert host.price_source is not None and "upper bound" in host.price_source
