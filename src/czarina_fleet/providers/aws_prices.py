"""EC2 prices: spot from DescribeSpotPriceHistory (the cheapest zone's latest), on-demand
from the Price List API (cached), else a built-in table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from czarina_fleet.providers.aws_instances import split_location
from czarina_fleet.providers.base import InvalidPoolConfig, PriceQuote
from czarina_fleet.providers.offerings import unknown_shape
from czarina_fleet.providers.price_sources import (
    AWS_PRICING_REGION,
    FALLBACK_SOURCE,
    aws_on_demand,
)

if TYPE_CHECKING:
    from czarina_fleet.providers.aws import AwsProvider

# On-demand Linux prices (USD/hour, us-east-1, 2024 list prices): the offline fallback
# when the Price List API cannot be reached and nothing is cached.
ON_DEMAND_CATALOG = {
    "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832,
    "t3.xlarge": 0.1664, "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "c5.large": 0.085, "c5.xlarge": 0.17,
    "c6i.large": 0.085, "c6i.xlarge": 0.17, "r5.large": 0.126, "r5.xlarge": 0.252,
}


async def spot_quote(p: AwsProvider, shape: str, location: str) -> PriceQuote:
    """The lowest latest spot price among the zones of `location` (a region or a zone);
    InvalidPoolConfig when EC2 has none (the shape is not offered there)."""
    name, zone = split_location(location)
    params: dict[str, Any] = {
        "InstanceTypes": [shape], "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": datetime.fromtimestamp(p.clock.now(), UTC),
    }
    if zone:
        params["AvailabilityZone"] = zone
    history = await p._call(name, "DescribeSpotPriceHistory", **params)
    latest: dict[str, tuple[datetime, float]] = {}
    for item in history.get("SpotPriceHistory", []):
        az, at, price = item["AvailabilityZone"], item["Timestamp"], float(item["SpotPrice"])
        if az not in latest or at > latest[az][0]:
            latest[az] = (at, price)
    if not latest:
        raise InvalidPoolConfig(
            f'no spot price for "{shape}" in {location}: is it offered there?')
    cheapest = min(price for _, price in latest.values())
    return PriceQuote(shape, location, True, cheapest, "DescribeSpotPriceHistory")


async def on_demand_quote(p: AwsProvider, shape: str, location: str) -> PriceQuote:
    """The Price List API's price (cached), else the built-in table."""
    region = split_location(location)[0]

    def fetch() -> float:
        client = p._session.client("pricing", region_name=AWS_PRICING_REGION,
                                   endpoint_url=p._pricing_url, config=p._config)
        if p._client_hook is not None:
            p._client_hook(client)
        return aws_on_demand(client, shape, region)

    got = await p._prices.lookup(f"aws/{shape}/{region}/on-demand",
                                 "AWS Price List API", fetch if p._pricing_on else None)
    if got is not None:
        return PriceQuote(shape, location, False, got.usd_per_hour, got.label())
    if shape not in ON_DEMAND_CATALOG:
        raise unknown_shape(shape, ON_DEMAND_CATALOG)
    return PriceQuote(shape, location, False, ON_DEMAND_CATALOG[shape], FALLBACK_SOURCE)
