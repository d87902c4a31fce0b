"""The price catalog: fresh quotes, the dated fallback table, stale quotes, refresh."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from czarina_fleet.cost.catalog import (
    FALLBACK_ON_DEMAND,
    PriceCatalog,
    PriceUnavailable,
)
from czarina_fleet.providers.base import (
    Instance,
    LaunchRequest,
    PriceQuote,
    Provider,
    TransientError,
)

T0 = 1_700_000_000.0


class QuotingProvider(Provider):
    """A driver that only quotes prices, from a table the test controls (the real
    drivers need a cloud; the catalog only sees this one method of the contract)."""

    name = "quoting"

    def __init__(self, prices: dict[tuple[str, str, bool], float]) -> None:
        self.table = prices
        self.calls = 0

    @classmethod
    def from_pool(cls, pool: Any, fleet: str, **context: Any) -> Provider:
        return cls({})

    async def list_instances(self) -> list[Instance]:
        return []

    async def launch(self, request: LaunchRequest) -> Instance:
        raise NotImplementedError

    async def terminate(self, instance_id: str) -> None:
        return None

    async def prices(self, shape: str, region: str, spot: bool) -> PriceQuote:
        self.calls += 1
        if (shape, region, spot) not in self.table:
            raise TransientError("throttled")
        return PriceQuote(shape, region, spot, self.table[(shape, region, spot)], "quoting")


def test_fresh_quote_wins_over_the_table() -> None:
    cat = PriceCatalog(max_age_s=600)
    cat.record("aws", PriceQuote("t3.large", "eu-west-1", True, 0.031, "history"), T0)
    q = cat.price_for("aws", "t3.large", "eu-west-1", True, now=T0 + 600)
    assert (q.usd_per_hour, q.source) == (0.031, "history")
    assert cat.cached("aws", "t3.large", "eu-west-1", True).age(T0 + 700) == 700


def test_stale_quote_gives_way_to_the_dated_fallback_list_price() -> None:
    cat = PriceCatalog(max_age_s=600)
    cat.record("aws", PriceQuote("t3.large", "us-east-1", True, 0.031, "history"), T0)
    q = cat.price_for("aws", "t3.large", "us-east-1", True, now=T0 + 601)
    assert q.usd_per_hour == FALLBACK_ON_DEMAND[("aws", "t3.large")]
    assert "fallback" in q.source and "2024-06" in q.source and "upper bound" in q.source


def test_stale_quote_is_used_only_for_shapes_the_table_lacks() -> None:
    cat = PriceCatalog(max_age_s=60)
    cat.record("gcp", PriceQuote("a3-highgpu-8g", "us-east4", True, 30.0, "sku"), T0)
    q = cat.price_for("gcp", "a3-highgpu-8g", "us-east4", True, now=T0 + 3600)
    assert q.usd_per_hour == 30.0 and "stale: 3600s old" in q.source


def test_older_quote_never_replaces_a_newer_one() -> None:
    cat = PriceCatalog()
    cat.record("aws", PriceQuote("m5.large", "us-east-1", True, 0.05, "new"), T0 + 10)
    cat.record("aws", PriceQuote("m5.large", "us-east-1", True, 0.01, "old"), T0)
    assert cat.price_for("aws", "m5.large", "us-east-1", True, T0 + 20).source == "new"


def test_unknown_shape_is_a_clear_error_and_free_providers_cost_nothing() -> None:
    cat = PriceCatalog()
    with pytest.raises(PriceUnavailable, match=r'aws "x9.huge" in us-east-1 \(spot\)') as err:
        cat.price_for("aws", "x9.huge", "us-east-1", True, now=T0)
    assert "max_price_per_hour" in str(err.value) and "c5.large" in str(err.value)
    assert cat.price_for("lab", "netns", "local", False, now=T0).usd_per_hour == 0.0


def test_table_covers_the_three_clouds_with_positive_prices() -> None:
    for provider in ("aws", "gcp", "azure"):
        assert len(PriceCatalog().shapes(provider)) >= 8
    assert all(p > 0 for p in FALLBACK_ON_DEMAND.values())


def test_refresh_caches_a_driver_quote_and_survives_driver_errors() -> None:
    driver = QuotingProvider({("t3.large", "us-east-1", True): 0.025})
    cat = PriceCatalog(max_age_s=600)
    got = asyncio.run(cat.refresh("aws", driver, "t3.large", "us-east-1", True, now=T0))
    assert got.usd_per_hour == 0.025
    assert cat.price_for("aws", "t3.large", "us-east-1", True, now=T0 + 1).usd_per_hour == 0.025
    # A throttled driver: the cached quote (still fresh) answers.
    driver.table.clear()
    again = asyncio.run(cat.refresh("aws", driver, "t3.large", "us-east-1", True, now=T0 + 5))
    assert again.usd_per_hour == 0.025 and driver.calls == 2
