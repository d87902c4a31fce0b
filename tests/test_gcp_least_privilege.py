"""Least privilege that holds on GCP (issue 15, item 4), checked on the Terraform
example as written and on what the real driver sends (the fake GCE server):

- every permission of the example role is bound under an IAM Condition that limits
  instances and disks to the fleet's VM names, and the driver's names match it;
- SSH comes in through a network of the fleet's own with one rule (admin_cidr), not
  the project's default network (GCP's default-allow-ssh is open to the world);
- every VM blocks project-wide ssh-keys (tests/test_gcp_provider.py, the body test).

The Terraform is read by a small block reader (resource blocks by brace matching);
another suite validates the files' syntax.
"""

from __future__ import annotations

import re
from pathlib import Path

from czarina_fleet.providers.gcp_support import vm_name

TF = Path(__file__).resolve().parents[1] / "terraform-examples" / "gcp" / "main.tf"


def _blocks(text: str, kind: str, type_: str) -> dict[str, str]:
    """`kind "type_" "name" { ... }` bodies by name (or `kind "name"` for variables)."""
    head = re.compile(rf'^{kind} "{type_}"(?: "([\w-]+)")? \{{', re.M)
    found = {}
    for m in head.finditer(text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found[m.group(1) or type_] = text[m.end():i - 1]
    return found


def _attr(body: str, name: str) -> str:
    m = re.search(rf"^\s*{name}\s*=\s*(.+)$", body, re.M)
    assert m, f"no {name} in {body[:200]}"
    return m.group(1).strip()


def test_the_role_is_bound_only_to_the_fleets_own_vms() -> None:
    text = TF.read_text()
    roles = _blocks(text, "resource", "google_project_iam_custom_role")
    bindings = _blocks(text, "resource", "google_project_iam_member")
    assert set(roles) == {"czarina_fleet"}
    assert "compute.instances.setMetadata" in roles["czarina_fleet"]
    # every binding of the role carries the condition; none grants it plainly
    assert bindings and all("condition {" in b for b in bindings.values())
    for body in bindings.values():
        cel = body.split("condition {", 1)[1]
        for kind, segment in (("Instance", "instances"), ("Disk", "disks")):
            assert (f'resource.type != "compute.googleapis.com/{kind}" ||\n'
                    f'       resource.name.extract("/{segment}/{{name}}")'
                    '.startsWith("${var.vm_name_prefix}")') in cel
    # the prefix the condition allows is the one the driver names VMs with
    prefix = _attr(_blocks(text, "variable", "vm_name_prefix")["vm_name_prefix"], "default")
    assert prefix == '"cz-"'
    assert vm_name("cpu", "h1").startswith(prefix.strip('"'))


def test_ssh_comes_in_through_the_fleets_own_network_only() -> None:
    text = TF.read_text()
    networks = _blocks(text, "resource", "google_compute_network")
    firewalls = _blocks(text, "resource", "google_compute_firewall")
    assert _attr(networks["czarina"], "auto_create_subnetworks") == "false"
    assert list(firewalls) == ["czarina_ssh"]
    rule = firewalls["czarina_ssh"]
    assert _attr(rule, "network") == "google_compute_network.czarina.name"
    assert _attr(rule, "source_ranges") == "[var.admin_cidr]"
    assert '"default"' not in text  # no resource lands on the default network
    output = _blocks(text, "output", "pool_options")["pool_options"]
    assert "google_compute_network.czarina.self_link" in output

