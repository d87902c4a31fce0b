"""`czarina doctor` for cloud pools: the real CLI against moto (boto3 is pointed at it by
AWS_ENDPOINT_URL_EC2, the SDK's own setting), and the GCP/Azure drivers' checks with the
real SDK clients against the fake servers in tests/fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

SECRET = "s3cr3t-never-printed"


@pytest.fixture(scope="module")
def ami(moto_url: str) -> str:
    ec2 = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s",
                        region_name="us-east-1").client("ec2", endpoint_url=moto_url)
    return str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def aws_env(tmp_path: Path, moto_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CZARINA_"))}
    env.update(HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"))
    if moto_url is not None:
        env.update(AWS_ACCESS_KEY_ID="AKIDTESTDOCTOR", AWS_SECRET_ACCESS_KEY=SECRET,
                   AWS_ENDPOINT_URL_EC2=moto_url)
    return env


def project(tmp_path: Path, pools: list[dict[str, Any]]) -> Path:
    root = tmp_path / "proj"
    (root / ".czarina").mkdir(parents=True)
    (root / ".czarina" / "config.json").write_text(json.dumps({
        "project": {"name": "pools"},
        "workers": [{"id": f"w-{p['name']}", "agent": "claude", "branch": f"feat/{p['name']}",
                     "location": f"pool:{p['name']}"} for p in pools],
        "fleet": {"pools": pools, "repository_url": "https://example.invalid/r.git"},
    }))
    return root


def aws_pool(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "provider": "aws", "instance_types": ["m5.large"],
            "regions": ["us-east-1a"], **kw}


def doctor(root: Path, env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    r = subprocess.run([sys.executable, "-m", "czarina_fleet.cli.main", "doctor", "--json"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr
    return r.returncode, json.loads(r.stdout), r.stdout + r.stderr


def checks_of(report: dict[str, Any], subject: str) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in report["checks"] if c["subject"] == subject}


def test_aws_pools_checked_read_only_against_moto(tmp_path: Path, moto_url: str,
                                                  ami: str) -> None:
    root = project(tmp_path, [
        aws_pool("ok", image=ami),
        aws_pool("badzone", image=ami, regions=["us-east-1z"]),
        aws_pool("badtype", image=ami, instance_types=["m5.large", "m5.nosuch"]),
        aws_pool("badimage", image="ami-0000000000000dead"),
    ])
    code, report, text = doctor(root, aws_env(tmp_path, moto_url))
    assert code == 1
    assert SECRET not in text and "AKIDTESTDOCTOR" not in text
    ok = checks_of(report, "pool ok")
    assert ok["credentials"] == {"subject": "pool ok", "check": "credentials", "ok": True,
                                 "detail": "found (env)"}
    assert set(ok) == {"credentials", "region us-east-1a", "type m5.large in us-east-1a",
                       f"image {ami} in us-east-1"}
    assert all(c["ok"] for c in ok.values()), ok
    zone = checks_of(report, "pool badzone")["zone us-east-1z"]
    assert zone["ok"] is False and "no zone us-east-1z in us-east-1" in zone["detail"]
    types = checks_of(report, "pool badtype")
    assert types["type m5.large in us-east-1a"]["ok"] is True
    assert types["type m5.nosuch in us-east-1a"]["ok"] is False
    image = checks_of(report, "pool badimage")["image ami-0000000000000dead in us-east-1"]
    assert image["ok"] is False
    assert report["blocked_workers"] == ["w-badimage", "w-badtype", "w-badzone"]


def test_aws_pool_without_credentials_says_where_they_are_looked_for(tmp_path: Path) -> None:
    root = project(tmp_path, [aws_pool("cpu", image="ami-12345678")])
    code, report, _ = doctor(root, aws_env(tmp_path, None))
    assert code == 1
    creds = checks_of(report, "pool cpu")["credentials"]
    assert creds["ok"] is False and "AWS_PROFILE" in creds["detail"]
    assert report["blocked_workers"] == ["w-cpu"]


def test_gcp_pool_checks_against_the_fake(gce_doctor: Any) -> None:
    import asyncio

    from google.auth.credentials import AnonymousCredentials

    from czarina_fleet.clock import FakeClock
    from czarina_fleet.model.config import PoolSpec
    from czarina_fleet.providers.gcp import GcpProvider

    def checks(**kw: Any) -> dict[str, Any]:
        pool = PoolSpec(**{"name": "g", "provider": "gcp", "regions": ["us-central1-a"],
                           "instance_types": ["e2-standard-2"], "options": {"project": "p1"},
                           "image": "projects/debian-cloud/global/images/family/debian-12",
                           **kw})
        gcp = GcpProvider.from_pool(pool, "f", clock=FakeClock(), api_endpoint=gce_doctor.url,
                                    credentials=AnonymousCredentials())
        return {f.check: f for f in asyncio.run(gcp.doctor())}

    good = checks()
    assert set(good) == {"credentials", "zone us-central1-a", "type e2-standard-2 in "
                         "us-central1-a", "image projects/debian-cloud/global/images/family/"
                         "debian-12"}
    assert all(f.ok for f in good.values())
    bad = checks(regions=["us-central1-a", "us-central1-z"],
                 instance_types=["e2-standard-2", "e2-nosuch-9"],
                 image="projects/debian-cloud/global/images/family/debian-99")
    assert bad["zone us-central1-z"].ok is False
    assert "no zone us-central1-z in project p1" in bad["zone us-central1-z"].detail
    assert bad["type e2-nosuch-9 in us-central1-a"].ok is False
    assert "type e2-nosuch-9 in us-central1-z" not in bad  # its zone failed first
    image = bad["image projects/debian-cloud/global/images/family/debian-99"]
    assert image.ok is False and "no image family debian-99" in image.detail
    assert gce_doctor.violations == []  # every request was one the real API accepts


@pytest.fixture
def gce_doctor() -> Any:
    from tests.fakes.gcp_server import FakeGce

    server = FakeGce().start()
    yield server
    server.stop()


def test_azure_pool_checks_against_the_fake() -> None:
    import asyncio

    from azure.core.exceptions import ClientAuthenticationError
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    from czarina_fleet.clock import FakeClock
    from czarina_fleet.model.config import PoolSpec
    from czarina_fleet.providers.azure import AzureProvider
    from tests.fakes.azure_server import FakeArm
    from tests.test_azure_provider import FakeBearer

    class NoCredentials:  # what DefaultAzureCredential raises when its chain is empty
        def get_token(self, *scopes: str, **kw: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    class AskingBearer(SansIOHTTPPolicy):  # type: ignore[type-arg]
        """The bearer policy's token request, minus its https-only rule (plain http fake)."""

        def on_request(self, request: Any) -> None:
            NoCredentials().get_token("https://management.azure.com/.default")

    arm = FakeArm().start()
    try:
        def checks(auth: bool = True, **kw: Any) -> dict[str, Any]:
            pool = PoolSpec(**{"name": "az", "provider": "azure", "regions": ["eastus"],
                               "instance_types": ["Standard_D2s_v5"],
                               "options": {"subscription_id": "sub", "resource_group": "rg"},
                               **kw})
            client_kwargs: dict[str, Any] = {
                "polling_interval": 0,
                "authentication_policy": FakeBearer() if auth else AskingBearer()}
            az = AzureProvider.from_pool(pool, "f", clock=FakeClock(), base_url=arm.url,
                                         credential=NoCredentials(), client_kwargs=client_kwargs)
            return {f.check: f for f in asyncio.run(az.doctor())}

        good = checks()
        assert good["credentials"].ok and good["location eastus"].ok
        assert good["type Standard_D2s_v5 in eastus"].ok
        bad = checks(regions=["eastus", "atlantis"],
                     instance_types=["Standard_D2s_v5", "Standard_Nope_v9"])
        assert bad["location atlantis"].ok is False
        assert "NoRegisteredProviderFound" in bad["location atlantis"].detail
        assert bad["type Standard_Nope_v9 in eastus"].ok is False
        assert "type Standard_D2s_v5 in atlantis" not in bad
        refused = checks(auth=False)
        assert list(refused) == ["credentials"] and refused["credentials"].ok is False
        assert arm.violations == []
    finally:
        arm.stop()
