"""The lab provider: network-namespace hosts launched, found again, and torn down."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from czarina_fleet.model.config import PoolSpec
from czarina_fleet.providers.base import InstanceState, LaunchRequest
from czarina_fleet.providers.lab import LabProvider
from czarina_fleet.remote import netns
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.ssh_pool import PoolSettings, SshPool

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


@pytest.fixture
def fleet() -> Iterator[str]:
    name = f"labtest-{uuid.uuid4().hex[:8]}"
    yield name
    for host in netns.list_hosts(fleet=name):
        netns.destroy_host(host)


def pool(price: float = 0.0) -> PoolSpec:
    return PoolSpec(name="labpool", provider="lab", instance_types=["netns"], regions=["local"],
                    spot=False, options={"price_per_hour": price})


def request(fleet: str, key: str, host_id: str) -> LaunchRequest:
    return LaunchRequest(host_id=host_id, fleet=fleet, pool="labpool", shape="netns",
                         region="local", spot=False, idempotency_key=key)


def test_launch_is_idempotent_listed_after_restart_and_terminated(fleet: str) -> None:
    provider = LabProvider.from_pool(pool(0.25), fleet)

    async def scenario() -> None:
        first, second = await asyncio.gather(
            provider.launch(request(fleet, "intent-1", "labpool-1")),
            provider.launch(request(fleet, "intent-1", "labpool-1")),
        )
        assert first.instance_id == second.instance_id
        # One call made the host; the other, racing it, may find it still being made.
        assert InstanceState.RUNNING in (first.state, second.state)
        first = first if first.state == InstanceState.RUNNING else second
        assert first.connect is not None
        other = await provider.launch(request(fleet, "intent-2", "labpool-2"))
        assert other.instance_id != first.instance_id

        # a new provider object (a restarted controller) finds both by their markers
        again = LabProvider.from_pool(pool(0.25), fleet)
        listed = {i.instance_id: i for i in await again.list_instances()}
        assert set(listed) == {first.instance_id, other.instance_id}
        assert listed[first.instance_id].tags["czarina-fleet"] == fleet
        assert (await again.prices("netns", "local", False)).usd_per_hour == 0.25

        # it is a real host: connect with the key material the instance describes
        connect = first.connect
        assert connect is not None and connect.host_key is not None
        ssh = SshHost(first.host_id, connect.address, user=connect.user, port=connect.port,
                      identity_file=connect.identity_file,
                      known_hosts=first.tags["known_hosts"])
        pool_ = SshPool([ssh], settings=PoolSettings(connect_timeout=3))
        done = await pool_.runner(first.host_id).run(["id", "-un"])
        await pool_.close()
        assert done.stdout.strip() == connect.user

        await again.terminate(first.instance_id)
        await again.terminate(first.instance_id)  # already gone: still success
        assert [i.instance_id for i in await again.list_instances()] == [other.instance_id]

    asyncio.run(scenario())
    assert len(netns.list_hosts(fleet=fleet)) == 1


def test_other_fleets_are_invisible(fleet: str) -> None:
    provider = LabProvider.from_pool(pool(), fleet)
    stranger = LabProvider.from_pool(pool(), fleet + "-other")
    mine = asyncio.run(provider.launch(request(fleet, "k", "labpool-1")))
    assert asyncio.run(stranger.list_instances()) == []
    asyncio.run(stranger.terminate(mine.instance_id))
    assert len(asyncio.run(provider.list_instances())) == 1
