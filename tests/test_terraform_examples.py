"""terraform-examples/ checked by the tools people run on them: python-hcl2 parses all
three, checkov finds nothing that is not suppressed with a reason, parliament finds no
unknown action in the rendered AWS policy, and `terraform validate` (plus a plan that
renders the policy) passes on the AWS example, offline.

checkov, parliament and python-hcl2 live in .venv-iac (scripts/setup-iac-tools.sh). No
package registry ships terraform or its providers, so the terraform test runs where a
terraform binary and a local copy of the hashicorp/aws provider exist (this project's
machines have both: /usr/local/bin/terraform and /opt/tf-plugins) and skips elsewhere.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "terraform-examples"
IAC = ROOT / ".venv-iac" / "bin"
FLEET = "acme"
# Suppressed in the examples themselves (`# checkov:skip=ID:reason`): the AWS two would
# break the fleet if "fixed" (workers need outbound access; the driver attaches the
# group); GCP flow logs are billed logging the fleet does not need.
SUPPRESSED = {"CKV_AWS_382", "CKV2_AWS_5", "CKV_GCP_26"}
MIRRORS = [os.environ.get("TF_PLUGIN_MIRROR", ""), "/opt/tf-plugins",
           str(Path.home() / ".terraform.d" / "plugins"), "/usr/share/terraform/plugins",
           "/usr/local/share/terraform/plugins"]


@pytest.fixture(scope="module")
def tools() -> Path:
    require_tool((IAC / "checkov").exists(), "checkov, parliament and python-hcl2 are not "
                 "installed: run scripts/setup-iac-tools.sh (scripts/setup.sh does)")
    return IAC


@pytest.fixture(scope="module")
def parsed(tools: Path) -> dict[str, dict[str, Any]]:
    code = ("import hcl2, json, sys\n"
            "print(json.dumps({p: hcl2.load(open(p)) for p in sys.argv[1:]}))")
    files = {c: str(EXAMPLES / c / "main.tf") for c in ("aws", "gcp", "azure")}
    out = subprocess.run([str(tools / "python"), "-c", code, *files.values()],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    trees = json.loads(out)
    return {c: trees[p] for c, p in files.items()}


def one(value: Any) -> Any:
    """python-hcl2 wraps attribute values in one-element lists; unwrap them."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def resources(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """'type.name' -> attributes."""
    return {f"{t}.{n}": body for block in tree.get("resource", [])
            for t, named in block.items() for n, body in named.items()}


def test_hcl2_parses_every_example(parsed: dict) -> None:
    assert "aws_iam_policy.czarina_fleet" in resources(parsed["aws"])
    assert "google_project_iam_custom_role.czarina_fleet" in resources(parsed["gcp"])
    assert "azurerm_role_definition.czarina_fleet" in resources(parsed["azure"])
    for cloud in ("aws", "gcp", "azure"):
        variables = {n for block in parsed[cloud]["variable"] for n in block}
        assert "admin_cidr" in variables, cloud


def test_azure_subnet_allows_ssh_only_from_the_controller(parsed: dict) -> None:
    res = resources(parsed["azure"])
    link = res["azurerm_subnet_network_security_group_association.workers"]
    assert one(link["subnet_id"]) == "${azurerm_subnet.workers.id}"
    assert one(link["network_security_group_id"]) == (
        "${azurerm_network_security_group.ssh.id}")
    rules = res["azurerm_network_security_group.ssh"]["security_rule"]
    inbound = [r for r in rules if one(r["direction"]) == "Inbound"
               and one(r["access"]) == "Allow"]
    assert [(one(r["destination_port_range"]), one(r["source_address_prefix"]),
             one(r["protocol"])) for r in inbound] == [("22", "${var.admin_cidr}", "Tcp")]


def checkov_reports(tools: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(tools / "checkov"), "-d", str(EXAMPLES), "--framework", "terraform", "-o",
         "json", "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600)
    doc = json.loads(done.stdout)
    return doc if isinstance(doc, list) else [doc]


def test_checkov_finds_nothing_unexplained(tools: Path) -> None:
    (report,) = checkov_reports(tools)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == []
    assert {c["check_id"] for c in results["skipped_checks"]} == SUPPRESSED
    assert all(c["check_result"].get("suppress_comment") for c in results["skipped_checks"])
    passed = {(c["check_id"], c["resource"]) for c in results["passed_checks"]}
    assert ("CKV2_AZURE_31", "azurerm_subnet.workers") in passed  # subnet has an NSG
    assert report["summary"]["parsing_errors"] == 0


def render_policy(tree: dict[str, Any]) -> dict[str, Any]:
    """The aws_iam_policy_document as IAM JSON, var.fleet = FLEET (what Terraform does;
    test_terraform_validate_and_plan_aws checks the two agree where terraform exists)."""
    doc = tree["data"][0]["aws_iam_policy_document"]["czarina_fleet"]
    statements = []
    for st in doc["statement"]:
        rendered: dict[str, Any] = {
            "Sid": one(st["sid"]), "Effect": one(st.get("effect", "Allow")),
            "Action": _list(st["actions"]), "Resource": _list(st["resources"])}
        for cond in st.get("condition", []):
            values = [v.replace("${var.fleet}", FLEET) for v in _list(cond["values"])]
            rendered.setdefault("Condition", {}).setdefault(one(cond["test"]), {})[
                one(cond["variable"])] = values
        statements.append(rendered)
    return {"Version": "2012-10-17", "Statement": statements}


def _list(value: Any) -> list[str]:
    value = one(value)
    return sorted(_arn(v) for v in (value if isinstance(value, list) else [value]))


def _arn(text: str) -> str:
    """A reference to a resource's ARN made by the example (`${aws_sqs_queue.q.arn}`)
    as the ARN it would have in account 123456789012, us-east-1."""
    m = re.fullmatch(r"\$\{aws_(\w+?)_\w+\.(\w+)\.arn\}", text) or re.fullmatch(
        r"\$\{aws_(\w+)\.(\w+)\.arn\}", text)
    if not m:
        return text
    return f"arn:aws:{m.group(1)}:us-east-1:123456789012:{m.group(2)}"


def test_parliament_knows_every_action_in_the_aws_policy(parsed: dict, tools: Path) -> None:
    policy = render_policy(parsed["aws"])
    done = subprocess.run([str(tools / "parliament"), "--string", json.dumps(policy), "--json"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    findings = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert not [f for f in findings if f["issue"].startswith("UNKNOWN")], findings
    # The only other finding allowed: parliament checks RunInstances' resource types per
    # statement, and the policy splits them (a tag condition on instance/volume only).
    # Across the statements every type RunInstances needs must be granted.
    assert {f["issue"] for f in findings} <= {"RESOURCE_MISMATCH"}
    granted = [r for st in policy["Statement"] if "ec2:RunInstances" in st["Action"]
               for r in st["Resource"]]
    for finding in findings:
        for item in finding["detail"]:
            assert item["action"] == "ec2:RunInstances", finding
            assert any(fnmatch.fnmatch(r, item["required_format"]) for r in granted), item


def plugin_mirror() -> str | None:
    for path in MIRRORS:
        if path and (Path(path) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return path
    return None


def test_terraform_validate_and_plan_aws(parsed: dict, tmp_path: Path) -> None:
    terraform, mirror = shutil.which("terraform"), plugin_mirror()
    require_tool(bool(terraform and mirror), "needs terraform and a local hashicorp/aws "
                 f"provider (looked in {MIRRORS})")
    assert terraform and mirror
    work = tmp_path / "aws"
    shutil.copytree(EXAMPLES / "aws", work)
    rc = tmp_path / "terraformrc"  # offline: providers from the local mirror only
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n'
                  '  }\n}\n')
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1",
           "TF_IN_AUTOMATION": "1", "TF_DATA_DIR": str(tmp_path / "tfdata")}

    def tf(*args: str) -> str:
        done = subprocess.run([terraform, *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # References to ARNs known only after apply become the literal ARNs render_policy
    # uses, so that Terraform can render the whole document at plan time.
    main = work / "main.tf"
    main.write_text(re.sub(r"\baws_(\w+)\.(\w+)\.arn\b",
                           lambda m: '"' + _arn("${" + m.group(0) + "}") + '"', main.read_text()))
    tf("init", "-backend=false", "-input=false", "-no-color")
    result = json.loads(tf("validate", "-json", "-no-color"))
    assert result["valid"] and result["error_count"] == 0, result
    # A plan renders the policy document without any AWS call (the data source is local);
    # the override gives the provider fake credentials and stops it looking for more.
    (work / "override.tf").write_text(
        'provider "aws" {\n  region = "us-east-1"\n  access_key = "test"\n'
        '  secret_key = "test"\n  skip_credentials_validation = true\n'
        '  skip_requesting_account_id = true\n  skip_metadata_api_check = true\n}\n')
    tf("plan", "-input=false", "-lock=false", "-no-color", "-out=plan.bin",
       f"-var=fleet={FLEET}", "-var=vpc_id=vpc-1", "-var=admin_cidr=198.51.100.7/32")
    plan = json.loads(tf("show", "-json", "plan.bin"))
    planned = {r["address"]: r.get("values", {})
               for r in plan["planned_values"]["root_module"]["resources"]}
    policy = planned["aws_iam_policy.czarina_fleet"]["policy"]
    assert _normal(json.loads(policy)) == _normal(render_policy(parsed["aws"]))


def _normal(policy: dict[str, Any]) -> list[Any]:
    def norm(st: dict[str, Any]) -> dict[str, Any]:
        out = {k: (sorted([v] if isinstance(v, str) else v) if k in ("Action", "Resource")
                   else v) for k, v in st.items()}
        out["Condition"] = {t: {k: sorted([v] if isinstance(v, str) else v)
                                for k, v in c.items()}
                            for t, c in st.get("Condition", {}).items()}
        return out
    return sorted((norm(s) for s in policy["Statement"]), key=lambda s: s["Sid"])
