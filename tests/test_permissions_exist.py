"""Every permission docs/permissions.md names and the Terraform roles grant exists in the
services' published specs (tests/fixtures/spec_actions.py says how each cloud's names are
derived): botocore's service models for AWS, the Azure REST specs, Google's Compute
discovery document. A name copied from a fake's invented URL (the old
`Microsoft.Compute/locations/operationResults/read`) fails here."""

from __future__ import annotations

import re

import pytest

from czarina_fleet.providers.gcp_support import PERMISSIONS as GCP_PERMISSIONS
from tests.fixtures.cloud_recorder import PERMISSIONS_DOC, terraform_policy
from tests.fixtures.spec_actions import (
    ACTION_SHAPE,
    OUTSIDE_SPECS,
    exists,
    gcp_method_exists,
    gcp_permission,
)

CLOUDS = {"AWS": "aws", "Azure": "azure", "GCP": "gcp"}


def documented(cloud: str) -> tuple[set[str], set[str]]:
    """(API methods, permissions) named in code spans of docs/permissions.md's section.
    The GCP section's `- ` lines start with the API method, then its permission; spans in
    parentheses are explanations (e.g. an operation type), not names."""
    text = PERMISSIONS_DOC.read_text()
    section = re.search(rf"^## {cloud}\b(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"docs/permissions.md has no ## {cloud} section"
    methods, names = set(), set()
    for line in section.group(1).splitlines():
        outside = re.sub(r"\([^()]*\)", "", line)
        spans = [s for s in re.findall(r"`([^`]+)`", outside) if ACTION_SHAPE[cloud].match(s)]
        if cloud == "GCP" and line.startswith("- ") and spans:
            methods.add(spans.pop(0))
        if line.startswith(("- ", "* ")):
            names.update(spans)
    return methods, names


def granted(cloud: str) -> set[str]:
    """Quoted names inside `actions = [...]` / `permissions = [...]` of the example."""
    text = terraform_policy(CLOUDS[cloud])
    lists = re.findall(r"\b(?:actions|permissions)\s*=\s*\[(.*?)\]", text, re.S)
    return {name for body in lists for name in re.findall(r'"([^"]+)"', body)}


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_every_permission_in_docs_exists(cloud: str) -> None:
    methods, names = documented(cloud)
    assert names
    assert [n for n in sorted(names) if not exists(cloud, n)] == []
    assert [m for m in sorted(methods) if not gcp_method_exists(m)] == []


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_every_permission_terraform_grants_exists(cloud: str) -> None:
    names = granted(cloud)
    assert names
    assert [n for n in sorted(names) if not exists(cloud, n)] == []


def test_terraform_grants_what_docs_list() -> None:
    for cloud in CLOUDS:
        missing = documented(cloud)[1] - granted(cloud) - set(OUTSIDE_SPECS) - {
            "iam:PassRole", "iam.serviceAccounts.actAs"}  # only with a role the driver omits
        assert missing == set(), cloud


def test_gcp_permission_map_follows_the_discovery_mapping() -> None:
    for method, permission in GCP_PERMISSIONS.items():
        assert gcp_method_exists(method)
        assert gcp_permission(method) == permission


@pytest.mark.parametrize("cloud, name", [
    ("Azure", "Microsoft.Compute/locations/operationResults/read"),  # the old, invented one
    ("Azure", "Microsoft.Network/networkInterfaces/start/action"),
    ("AWS", "ec2:LaunchInstances"),
    ("AWS", "ec2:CreateTag"),
    ("GCP", "compute.instances.insert"),  # the method; the permission is .create
    ("GCP", "compute.gadgets.list"),
])
def test_invented_names_do_not_exist(cloud: str, name: str) -> None:
    assert not exists(cloud, name)


@pytest.mark.parametrize("cloud, name", [
    ("Azure", "Microsoft.Compute/locations/operations/read"),
    ("Azure", "Microsoft.Network/locations/operationResults/read"),
    ("Azure", "Microsoft.Network/virtualNetworks/subnets/join/action"),
    ("Azure", "Microsoft.Compute/virtualMachines/start/action"),
    ("AWS", "ec2:RunInstances"),
    ("GCP", "compute.instances.create"),
    ("GCP", "compute.subnetworks.useExternalIp"),
])
def test_real_names_exist(cloud: str, name: str) -> None:
    assert exists(cloud, name)


def test_every_exception_is_still_needed() -> None:
    named = set().union(*(documented(c)[1] | granted(c) for c in CLOUDS))
    assert set(OUTSIDE_SPECS) <= named
