"""The fake clouds refuse what the real services refuse: requests the official specs in
tests/data/cloud-specs do not allow get the documented error and fail the test, through
the same real SDK clients the drivers use. Each case here was accepted by the old fakes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from tests.fakes import gce_filter
from tests.fakes.arm_spec import arm_spec
from tests.fakes.azure_server import FakeArm
from tests.fakes.gce_spec import discovery
from tests.fakes.gcp_server import FakeGce

ZONE = "us-central1-a"


@pytest.fixture
def gce() -> Iterator[FakeGce]:
    server = FakeGce().start()
    yield server
    server.stop()


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    server = FakeArm().start()
    yield server
    server.stop()


def instances(gce: FakeGce) -> compute_v1.InstancesClient:
    return compute_v1.InstancesClient(
        credentials=AnonymousCredentials(), transport="rest",
        client_options=ClientOptions(api_endpoint=gce.url))


def vm(**kw: Any) -> compute_v1.Instance:
    return compute_v1.Instance(name="vm-1", machine_type=f"zones/{ZONE}/machineTypes/e2-small",
                               **kw)


# -- GCE: the filter grammar -------------------------------------------------------------

@pytest.mark.parametrize("text", [
    'labels.a = "x" AND labels.b = "y"',  # what the driver sent: no parentheses
    'labels.a = "x" labels.b = "y"',
    '(labels.a = "x") AND',
    '(name eq vm-.*) (status = "RUNNING")',  # regexp and AIP-160 mixed
    "(labels.a = 'x')",  # single quotes only for eq/ne
    '(labels.a = "x"',
])
def test_filters_the_api_reference_does_not_allow_are_refused(text: str) -> None:
    with pytest.raises(gce_filter.FilterError):
        gce_filter.parse(text)


@pytest.mark.parametrize("text, hits", [
    ('(labels.a = "x") AND (labels.b = "y")', True),
    ('(labels.a = "x") (labels.b = "z")', False),
    ('(labels.a = "z") OR (labels.b = "y")', True),
    ('labels.a = "x"', True),
    ("labels.a:*", True),
    ("name eq vm-.*", True),
    ("name ne vm-.*", False),
    ("(scheduling.automaticRestart = false)", True),
])
def test_documented_filters_parse_and_select(text: str, hits: bool) -> None:
    resource = {"name": "vm-1", "labels": {"a": "x", "b": "y"},
                "scheduling": {"automaticRestart": False}}
    assert gce_filter.matches(gce_filter.parse(text), resource) is hits


def test_the_fake_refuses_an_unparenthesized_filter_with_googles_error(gce: FakeGce) -> None:
    request = compute_v1.ListInstancesRequest(
        project="p", zone=ZONE, filter='labels.a = "x" AND labels.b = "y"')
    with pytest.raises(gexc.BadRequest) as info:
        list(instances(gce).list(request=request))
    assert "parentheses" in info.value.message
    assert gce.violations and "invalid filter" in gce.violations[0]


def test_the_fake_refuses_a_filter_on_a_field_the_resource_lacks(gce: FakeGce) -> None:
    request = compute_v1.ListInstancesRequest(project="p", zone=ZONE, filter='(owner = "me")')
    with pytest.raises(gexc.BadRequest):
        list(instances(gce).list(request=request))
    assert "'owner' is not a field of Instance" in gce.violations[0]


# -- GCE: bodies, parameters, paths --------------------------------------------------------

def test_body_enums_and_required_fields_come_from_the_discovery_document() -> None:
    spec = discovery()
    insert = spec.method("compute.instances.insert")
    assert insert is not None
    bad = {"machineType": "zones/z/machineTypes/e2-small",
           "scheduling": {"provisioningModel": "PREEMPTIBLE"}, "colour": "blue"}
    problems = spec.check_request(insert, {"project": "p", "zone": ZONE}, {}, bad)
    assert any("'PREEMPTIBLE' is not one of" in p for p in problems)
    assert any("unknown field 'colour'" in p for p in problems)
    assert any("Instance.name is required by compute.instances.insert" in p for p in problems)


def test_the_fake_refuses_an_unknown_enum_value_sent_by_the_sdk(gce: FakeGce) -> None:
    body = vm(scheduling=compute_v1.Scheduling(instance_termination_action="EXPLODE"))
    with pytest.raises(gexc.BadRequest):
        instances(gce).insert(project="p", zone=ZONE, instance_resource=body)
    assert any("'EXPLODE' is not one of" in v for v in gce.violations)


def test_path_patterns_and_unknown_query_parameters_are_refused(gce: FakeGce) -> None:
    for url, why in [(f"/projects/p/zones/{ZONE}/instances?colour=blue", "unknown query"),
                     ("/projects/p/zones/US_CENTRAL/instances", "does not match"),
                     (f"/projects/p/zones/{ZONE}/gadgets", "no such method")]:
        status, body = _get(gce.url + "/compute/v1" + url)
        assert status in (400, 404) and isinstance(body["error"]["code"], int)
        assert why in gce.violations[-1]


def test_a_reply_the_document_does_not_allow_is_a_violation(gce: FakeGce) -> None:
    gce.instances[(ZONE, "vm-1")] = {"name": "vm-1", "flavour": "vanilla"}
    _get(f"{gce.url}/compute/v1/projects/p/zones/{ZONE}/instances/vm-1")
    assert any("unknown field 'flavour'" in v for v in gce.violations)


# -- Azure ---------------------------------------------------------------------------------

VM_PATH = ("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/"
           "virtualMachines/vm-1?api-version=2026-04-01")


def test_arm_refuses_unknown_fields_and_bad_closed_enums(arm: FakeArm) -> None:
    body = {"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"}, "spotness": "high",
        "storageProfile": {"osDisk": {"createOption": "FromImage", "osType": "Plan9"}}}}
    status, reply = _send(arm.url + VM_PATH, "PUT", body)
    assert status == 400 and reply["error"]["code"] == "InvalidRequestContent"
    assert "unknown field 'spotness'" in reply["error"]["message"]
    assert "'Plan9' is not one of" in reply["error"]["message"]


def test_arm_requires_api_version_and_a_location(arm: FakeArm) -> None:
    status, reply = _send(arm.url + VM_PATH.split("?")[0], "PUT", {"properties": {}})
    assert status == 400
    assert "'api-version' missing" in reply["error"]["message"]
    assert "body.location is required" in reply["error"]["message"]


def test_newer_api_fields_are_accepted_and_listed(arm: FakeArm) -> None:
    body = {"location": "eastus", "placement": {"zonePlacementPolicy": "Any"}}
    status, _ = _send(arm.url + VM_PATH, "PUT", body)
    assert status == 201
    assert arm.newer_fields == {("VirtualMachine", "placement")}


def test_async_status_urls_have_the_shapes_the_rps_publish(arm: FakeArm) -> None:
    shapes = arm_spec().status_url_shapes
    assert ("Microsoft.Compute", "operations") in shapes
    assert ("Microsoft.Network", "operationResults") in shapes
    assert ("Microsoft.Compute", "operationResults") not in shapes  # the old fake's URL
    status, _ = _send(arm.url + VM_PATH, "PUT", {"location": "eastus"})
    assert status == 201
    status, _, headers = _send_full(arm.url + VM_PATH, "DELETE", None)
    assert status == 202
    assert "/providers/Microsoft.Compute/locations/eastus/operations/" in headers["Location"]
    assert "monitor=true" in headers["Location"]
    assert arm.violations == []


def _get(url: str) -> tuple[int, Any]:
    return _send(url, "GET", None)


def _send(url: str, method: str, body: Any) -> tuple[int, Any]:
    status, payload, _ = _send_full(url, method, body)
    return status, payload


def _send_full(url: str, method: str, body: Any) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # loopback fake
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None, dict(exc.headers)
