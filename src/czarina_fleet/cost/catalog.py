"""The price catalog: what a host would cost per hour if launched now.

Two sources, in order:

1. Quotes from the providers themselves (`Provider.prices`: AWS spot price history,
   and so on), cached with the time they were fetched. A quote younger than `max_age_s`
   is used as is.
2. A small built-in table of on-demand list prices (`FALLBACK_ON_DEMAND`), a FALLBACK
   only: approximate public Linux list prices in one reference region per cloud, as of
   `FALLBACK_DATE`. It is used when no fresh quote exists, in any region (prices differ
   by region by up to ~30 %), and for spot requests too, where the on-demand price is an
   upper bound of the spot price: a budget check against it errs on the safe side.

A stale quote (older than `max_age_s`) is used only when the table has no row for the
shape: an old spot price can sit far below today's, and budgets must not be exceeded.

The catalog is consulted at launch time only. The price it gives is recorded on the
host (`HostRecord.price_per_hour`) and the ledger uses that, so catalog changes never
re-price a running or past host.
"""

from __future__ import annotations

from dataclasses import dataclass

from czarina_fleet.errors import FleetError
from czarina_fleet.providers.base import PriceQuote, Provider, ProviderError

FALLBACK_DATE = "2024-06"
REFERENCE_REGION: dict[str, str] = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
# Providers whose machines we do not pay for by the hour (unless a price is configured).
FREE_PROVIDERS = frozenset({"local", "static", "lab"})

# (provider, shape) -> on-demand Linux list price, USD/hour, in REFERENCE_REGION.
FALLBACK_ON_DEMAND: dict[tuple[str, str], float] = {
    ("aws", "t3.micro"): 0.0104, ("aws", "t3.small"): 0.0208,
    ("aws", "t3.medium"): 0.0416, ("aws", "t3.large"): 0.0832,
    ("aws", "t3.xlarge"): 0.1664, ("aws", "t3.2xlarge"): 0.3328,
    ("aws", "t4g.medium"): 0.0336, ("aws", "t4g.large"): 0.0672,
    ("aws", "m5.large"): 0.096, ("aws", "m5.xlarge"): 0.192, ("aws", "m5.2xlarge"): 0.384,
    ("aws", "m6i.large"): 0.096, ("aws", "m6i.xlarge"): 0.192, ("aws", "m7i.large"): 0.1008,
    ("aws", "c5.large"): 0.085, ("aws", "c5.xlarge"): 0.17, ("aws", "c6i.large"): 0.085,
    ("aws", "r5.large"): 0.126, ("aws", "g4dn.xlarge"): 0.526, ("aws", "g5.xlarge"): 1.006,
    ("aws", "p3.2xlarge"): 3.06,
    ("gcp", "e2-medium"): 0.0335, ("gcp", "e2-standard-2"): 0.067,
    ("gcp", "e2-standard-4"): 0.134, ("gcp", "e2-standard-8"): 0.268,
    ("gcp", "n1-standard-1"): 0.0475, ("gcp", "n1-standard-2"): 0.095,
    ("gcp", "n1-standard-4"): 0.19, ("gcp", "n2-standard-2"): 0.0971,
    ("gcp", "n2-standard-4"): 0.1942, ("gcp", "n2d-standard-2"): 0.0845,
    ("gcp", "c2-standard-4"): 0.2088, ("gcp", "g2-standard-4"): 0.7068,
    ("azure", "Standard_B2s"): 0.0416, ("azure", "Standard_B2ms"): 0.0832,
    ("azure", "Standard_B4ms"): 0.166, ("azure", "Standard_D2s_v5"): 0.096,
    ("azure", "Standard_D4s_v5"): 0.192, ("azure", "Standard_D8s_v5"): 0.384,
    ("azure", "Standard_D2as_v5"): 0.086, ("azure", "Standard_F2s_v2"): 0.0846,
    ("azure", "Standard_E2s_v5"): 0.126, ("azure", "Standard_NC4as_T4_v3"): 0.526,
}


class PriceUnavailable(FleetError):
    """No quote and no catalog row for a shape: the planner must not launch it blind."""


@dataclass(frozen=True, slots=True)
class CachedQuote:
    quote: PriceQuote
    fetched_at: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


class PriceCatalog:
    """Provider quotes with their age, over the built-in fallback table. Time is passed
    in (`now`), never read, so the catalog behaves the same under a simulated clock."""

    def __init__(self, max_age_s: float = 3600.0,
                 fallback: dict[tuple[str, str], float] | None = None) -> None:
        self.max_age_s = max_age_s
        self._fallback = FALLBACK_ON_DEMAND if fallback is None else fallback
        self._quotes: dict[tuple[str, str, str, bool], CachedQuote] = {}

    def record(self, provider: str, quote: PriceQuote, at: float) -> None:
        """Remember `quote` (from `provider`) as fetched at `at`. An older quote never
        replaces a newer one (answers to concurrent refreshes can arrive out of order)."""
        key = (provider, quote.shape, quote.region, quote.spot)
        current = self._quotes.get(key)
        if current is None or current.fetched_at <= at:
            self._quotes[key] = CachedQuote(quote, at)

    def cached(self, provider: str, shape: str, region: str, spot: bool) -> CachedQuote | None:
        return self._quotes.get((provider, shape, region, spot))

    def price_for(self, provider: str, shape: str, region: str, spot: bool,
                  now: float) -> PriceQuote:
        """The hourly price to record for a host launched now. Raises PriceUnavailable
        when nothing is known about the shape."""
        hit = self.cached(provider, shape, region, spot)
        if hit is not None and hit.age(now) <= self.max_age_s:
            return hit.quote
        listed = self._fallback.get((provider, shape))
        if listed is not None:
            ref = REFERENCE_REGION.get(provider, "?")
            note = " (upper bound for spot)" if spot else ""
            return PriceQuote(shape, region, spot, listed,
                              f"fallback list price {FALLBACK_DATE}, {ref} on-demand{note}")
        if hit is not None:
            return PriceQuote(shape, region, spot, hit.quote.usd_per_hour,
                              f"{hit.quote.source} (stale: {hit.age(now):.0f}s old)")
        if provider in FREE_PROVIDERS:
            return PriceQuote(shape, region, spot, 0.0, f"{provider}: no hourly charge")
        raise PriceUnavailable(
            f'no price known for {provider} "{shape}" in {region} '
            f'({"spot" if spot else "on-demand"}): the provider gave no quote and the '
            f"built-in table has no row for it; set the pool's max_price_per_hour or pick "
            f"a listed shape ({', '.join(self.shapes(provider)[:6]) or 'none listed'}, ...)"
        )

    async def refresh(self, provider: str, driver: Provider, shape: str, region: str,
                      spot: bool, now: float) -> PriceQuote:
        """Ask `driver` for a fresh quote and cache it; when the driver fails, answer from
        the cache or the table as `price_for` does (a price lookup never stops a tick)."""
        try:
            quote = await driver.prices(shape, region, spot)
        except ProviderError:
            return self.price_for(provider, shape, region, spot, now)
        self.record(provider, quote, now)
        return quote

    def shapes(self, provider: str) -> list[str]:
        return sorted(s for p, s in self._fallback if p == provider)
