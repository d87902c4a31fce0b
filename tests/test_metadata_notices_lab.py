"""The probe reads each cloud's own interruption notice from the instance metadata
service, on real lab hosts (network namespaces with their own sshd), whose metadata
service (remote/lab_metadata.py, at 169.254.169.254 inside the namespace only) answers
as each cloud documents (cloud-specs/metadata). Also: the documented protocol details
(IMDSv2 token, required headers), the Azure approval, and that a host of no cloud is
never asked."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest

from czarina_fleet.remote import lab_spot, netns
from czarina_fleet.remote.hosts import SshHost
from czarina_fleet.remote.metadata import ack_argv
from czarina_fleet.remote.probe import probe_host
from czarina_fleet.remote.runner import CommandRunner
from czarina_fleet.remote.ssh_pool import SshPool, SshRunner
from tests.fixtures.netns_hosts import LabHosts

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def on_host(lab_hosts: LabHosts, cloud: str) -> tuple[netns.LabHost, SshPool, CommandRunner]:
    (host,) = lab_hosts.make(1)
    lab_spot.start_metadata(host, cloud)
    pool = SshPool()
    ssh: SshHost = host.ssh_host()
    pool.add(ssh)
    return host, pool, SshRunner(pool, host.host_id)


def curl(host: netns.LabHost, *args: str) -> tuple[int, str]:
    """curl inside the host's namespace (as its processes would), status and body."""
    done = subprocess.run(["ip", "netns", "exec", host.namespace, "curl", "-s", "-m", "3",
                           "-o", "-", "-w", "\n%{http_code}", *args],
                          capture_output=True, text=True, check=False)
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_no_notice_means_no_notice_and_no_error(lab_hosts: LabHosts, cloud: str) -> None:
    host, pool, runner = on_host(lab_hosts, cloud)

    async def go() -> None:
        probe = await probe_host(runner, host.host_id, {}, now=time.time(), cloud=cloud,
                                 instance=host.namespace)
        assert probe.reachable, probe.error
        assert probe.notices == () and probe.metadata_error is None
        await pool.close()

    asyncio.run(go())


def test_aws_spot_warning_and_rebalance_through_imdsv2(lab_hosts: LabHosts) -> None:
    host, pool, runner = on_host(lab_hosts, "aws")
    base = "http://169.254.169.254/latest"
    # IMDSv2 as documented: no token, 401; a token needs its TTL header
    assert curl(host, f"{base}/meta-data/spot/instance-action")[0] == 401
    assert curl(host, "-X", "PUT", f"{base}/api/token")[0] == 400
    code, token = curl(host, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
                       f"{base}/api/token")
    assert code == 200 and token
    got = curl(host, "-H", f"X-aws-ec2-metadata-token: {token}",
               f"{base}/meta-data/spot/instance-action")
    assert got[0] == 404  # no notice yet

    deadline = lab_spot.post_notice(host, 120)

    async def go() -> None:
        probe = await probe_host(runner, host.host_id, {}, now=time.time(), cloud="aws")
        kinds = {n.kind: n for n in probe.notices}
        assert set(kinds) == {"interruption", "rebalance"}, probe
        warning = kinds["interruption"]
        assert "spot interruption warning (terminate)" in warning.reason
        assert warning.deadline is not None and abs(warning.deadline - deadline) <= 1.0
        await pool.close()

    asyncio.run(go())
    code, body = curl(host, "-H", f"X-aws-ec2-metadata-token: {token}",
                      f"{base}/meta-data/spot/instance-action")
    assert code == 200 and set(json.loads(body)) == {"action", "time"}


def test_gce_preempted_turns_true_30s_ahead(lab_hosts: LabHosts) -> None:
    host, pool, runner = on_host(lab_hosts, "gcp")
    url = "http://169.254.169.254/computeMetadata/v1/instance/preempted"
    assert curl(host, url)[0] == 403  # Metadata-Flavor: Google is required

    async def probe() -> tuple[object, ...]:
        got = await probe_host(runner, host.host_id, {}, now=time.time(), cloud="gcp")
        assert got.metadata_error is None
        return got.notices

    async def go() -> None:
        lab_spot.post_notice(host, 300)  # GCE only says so in the last 30 s
        assert await probe() == ()
        now = time.time()
        lab_spot.post_notice(host, 20)
        (notice,) = await probe()
        assert notice.kind == "interruption"  # type: ignore[attr-defined]
        assert notice.deadline >= now + 29  # type: ignore[attr-defined]
        await pool.close()

    asyncio.run(go())
    assert curl(host, "-H", "Metadata-Flavor: Google", url) == (200, "TRUE")


def test_azure_preempt_event_then_approval(lab_hosts: LabHosts) -> None:
    host, pool, runner = on_host(lab_hosts, "azure")
    url = "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01"
    assert curl(host, url)[0] == 400  # Metadata: true is required
    deadline = lab_spot.post_notice(host, 45)
    event_id = json.loads(curl(host, "-H", "Metadata: true", url)[1])["Events"][0]["EventId"]

    async def go() -> None:
        probe = await probe_host(runner, host.host_id, {}, now=time.time(), cloud="azure",
                                 instance=host.namespace)
        (notice,) = probe.notices
        assert notice.reason == "Azure scheduled event Preempt" and notice.ack == event_id
        assert notice.deadline is not None and abs(notice.deadline - deadline) <= 1.0
        # an event naming another VM of the set is not ours
        other = await probe_host(runner, host.host_id, {}, now=time.time(), cloud="azure",
                                 instance="some-other-vm")
        assert other.notices == ()
        bad = await runner.run(ack_argv(["not-the-event"]), timeout=10)
        assert not bad.ok  # 400 for an unknown id
        done = await runner.run(ack_argv([event_id]), timeout=10)
        assert done.ok, done.stderr
        await pool.close()

    asyncio.run(go())
    assert lab_spot.acks(host) == [event_id]


def test_a_host_of_no_cloud_is_never_asked(lab_hosts: LabHosts) -> None:
    host, pool, runner = on_host(lab_hosts, "aws")
    lab_spot.post_notice(host, 120)

    async def go() -> None:
        probe = await probe_host(runner, host.host_id, {}, now=time.time(), cloud=None)
        assert probe.notices == () and probe.metadata_error is None
        await pool.close()

    asyncio.run(go())


def test_metadata_answers_inside_the_namespace_only(lab_hosts: LabHosts) -> None:
    """The address lives on the namespace's loopback: the namespace has no other route,
    and from outside it the lab's 169.254.169.254 is not reachable through the veth."""
    host, pool, _ = on_host(lab_hosts, "aws")
    routes = subprocess.run(["ip", "-n", host.namespace, "route", "show", "table", "all"],
                            capture_output=True, text=True, check=True).stdout
    assert "default" not in routes
    assert "169.254.169.254" in subprocess.run(
        ["ip", "-n", host.namespace, "addr", "show", "dev", "lo"],
        capture_output=True, text=True, check=True).stdout
    asyncio.run(pool.close())


def test_probe_with_metadata_down_reports_why(lab_hosts: LabHosts) -> None:
    (host,) = lab_hosts.make(1)  # no metadata service started on it
    pool = SshPool()
    pool.add(host.ssh_host())

    async def go() -> None:
        probe = await probe_host(SshRunner(pool, host.host_id), host.host_id, {},
                                 now=time.time(), cloud="aws")
        assert probe.reachable and probe.notices == ()
        assert probe.metadata_error is not None and "aws metadata token" in probe.metadata_error
        await pool.close()

    asyncio.run(go())
