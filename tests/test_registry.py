"""Driver discovery by entry point, including a third-party driver registered at runtime."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from czarina_fleet.errors import UserError
from czarina_fleet.model.config import PoolSpec
from czarina_fleet.providers.aws import AwsProvider
from czarina_fleet.providers.azure import AzureProvider
from czarina_fleet.providers.gcp import GcpProvider
from czarina_fleet.providers.registry import build_provider, load_driver


def test_builtin_cloud_drivers_are_registered() -> None:
    assert load_driver("aws") is AwsProvider
    assert load_driver("gcp") is GcpProvider
    assert load_driver("azure") is AzureProvider


def test_unknown_driver_suggests_the_near_miss() -> None:
    with pytest.raises(UserError, match='unknown provider "awz".*did you mean "aws"'):
        load_driver("awz")


def _install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """A real distribution on sys.path: a module plus a .dist-info with entry_points.txt,
    which is what `pip install` of a third-party driver leaves behind."""
    (tmp_path / "acme_driver.py").write_text(textwrap.dedent(body))
    dist = tmp_path / "acme_driver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[czarina_fleet.providers]\nacme = acme_driver:AcmeProvider\n"
        "broken = acme_driver:NotADriver\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_driver", raising=False)


PLUGIN = '''
    from czarina_fleet.providers.base import Provider

    class NotADriver:
        pass

    class AcmeProvider(Provider):
        name = "acme"

        def __init__(self, pool, fleet, region):
            self.pool, self.fleet, self.region = pool, fleet, region

        @classmethod
        def from_pool(cls, pool, fleet, **context):
            return cls(pool, fleet, context.get("region", pool.regions[0]))

        async def list_instances(self):
            return []

        async def launch(self, request):
            raise NotImplementedError

        async def terminate(self, instance_id):
            return None

        async def prices(self, shape, region, spot):
            raise NotImplementedError
'''


def test_third_party_driver_is_found_and_built(tmp_path, monkeypatch) -> None:
    _install_plugin(tmp_path, monkeypatch, PLUGIN)
    pool = PoolSpec(name="p1", provider="acme", instance_types=["small"], regions=["moon-1"])
    driver = build_provider(pool, "myfleet")
    assert type(driver).__name__ == "AcmeProvider"
    assert (driver.fleet, driver.region) == ("myfleet", "moon-1")  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="not a czarina_fleet.providers.base.Provider"):
        load_driver("broken")


def test_the_driver_in_docs_providers_md_works_through_the_registry(tmp_path, monkeypatch):
    """docs/providers.md's example, installed as a package, found by entry point."""
    import asyncio
    import re

    from czarina_fleet.clock import FakeClock
    from czarina_fleet.providers.base import InvalidPoolConfig, LaunchRequest

    doc = (Path(__file__).resolve().parents[1] / "docs" / "providers.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", doc, re.S) if "ToyCloud" in c]
    (tmp_path / "toycloud_driver.py").write_text(code)
    dist = tmp_path / "toycloud_driver-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toycloud-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[czarina_fleet.providers]\ntoycloud = toycloud_driver:ToyCloudProvider\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toycloud_driver", raising=False)

    pool = PoolSpec(name="toys", provider="toycloud", instance_types=["small"],
                    regions=["r1"], max_hosts=1)
    driver = build_provider(pool, "fleet-a", clock=FakeClock())
    req = LaunchRequest(host_id="h1", fleet="fleet-a", pool="toys", shape="small",
                        region="r1", spot=True, idempotency_key="k1")

    async def scenario() -> None:
        first = await driver.launch(req)
        assert (await driver.launch(req)).instance_id == first.instance_id
        assert [i.host_id for i in await driver.list_instances()] == ["h1"]
        assert (await driver.prices("small", "r1", True)).usd_per_hour == pytest.approx(0.003)
        await driver.terminate(first.instance_id)
        await driver.terminate(first.instance_id)
        assert await driver.list_instances() == []

    asyncio.run(scenario())
    bad = PoolSpec(name="toys", provider="toycloud", instance_types=["huge"], regions=["r1"])
    with pytest.raises(InvalidPoolConfig, match="unknown instance types"):
        build_provider(bad, "fleet-a")
