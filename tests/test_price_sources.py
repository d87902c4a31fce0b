"""Prices from the providers' published sources (AWS Price List Query API through the
real boto3 client, the Azure Retail Prices API through urllib), against local fakes that
answer in the documented shapes and page (tests/fakes/price_servers.py); cached on disk
with their age. No real endpoint is contacted: every URL points at 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from czarina_fleet.providers.price_sources import (
    PriceCache,
    PriceSourceError,
    SourcedPrice,
    aws_on_demand,
    azure_retail,
    cached,
    http_get_json,
)
from tests.fakes.price_servers import FakeAwsPricing, FakeAzureRetail, aws_product, azure_item


@pytest.fixture
def aws_pricing() -> Iterator[FakeAwsPricing]:
    fake = FakeAwsPricing([
        aws_product("t3.large", "us-east-1", "0.0832000000"),
        aws_product("t3.large", "us-east-1", "0.1108000000", os_name="Windows"),
        aws_product("t3.large", "eu-west-1", "0.0912000000"),
        aws_product("m5.large", "us-east-1", "0.0960000000"),
        # Two Linux products for one type (e.g. two capacity meters): the lowest counts.
        aws_product("c7i.large", "us-east-1", "0.0893000000"),
        aws_product("c7i.large", "us-east-1", "0.0900000000", tenancy="Shared"),
    ])
    yield fake
    fake.stop()


def pricing_client(url: str):  # type: ignore[no-untyped-def]
    return boto3.client("pricing", region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_aws_on_demand_price_from_the_price_list_api(aws_pricing: FakeAwsPricing) -> None:
    client = pricing_client(aws_pricing.url)
    assert aws_on_demand(client, "t3.large", "us-east-1") == 0.0832
    assert aws_on_demand(client, "t3.large", "eu-west-1") == 0.0912
    assert aws_pricing.refused == []
    sent = aws_pricing.requests[0]
    assert {f["Field"]: f["Value"] for f in sent["Filters"]} == {
        "instanceType": "t3.large", "regionCode": "us-east-1", "operatingSystem": "Linux",
        "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}


def test_aws_pages_are_followed(aws_pricing: FakeAwsPricing) -> None:
    client = pricing_client(aws_pricing.url)
    before = len(aws_pricing.requests)
    # One product per page: the second (and cheaper) needs NextToken.
    assert aws_on_demand(client, "c7i.large", "us-east-1") == 0.0893
    pages = aws_pricing.requests[before:]
    assert len(pages) == 2 and "NextToken" not in pages[0] and pages[1]["NextToken"] == "1"


def test_aws_unknown_type_is_a_source_error(aws_pricing: FakeAwsPricing) -> None:
    with pytest.raises(PriceSourceError, match="no Linux on-demand price for x9.huge"):
        aws_on_demand(pricing_client(aws_pricing.url), "x9.huge", "us-east-1")


def test_fake_refuses_what_the_service_model_does_not_allow(
        aws_pricing: FakeAwsPricing) -> None:
    from botocore.exceptions import ClientError, ParamValidationError

    client = pricing_client(aws_pricing.url)
    with pytest.raises(ParamValidationError):  # botocore refuses before sending
        client.get_products(ServiceCode="AmazonEC2", Filters=[{"Field": "x", "Value": "y"}])
    import urllib.request
    req = urllib.request.Request(
        aws_pricing.url + "/", method="POST", data=json.dumps(
            {"ServiceCode": "AmazonEC2", "Filters": [{"Type": "FUZZY", "Field": "a",
                                                        "Value": "b"}]}).encode(),
        headers={"X-Amz-Target": "AWSPriceListService.GetProducts",
                 "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400 and "not one of" in aws_pricing.refused[-1]
    with pytest.raises(ClientError):
        client.get_products(ServiceCode="AmazonS3")


@pytest.fixture
def azure_prices() -> Iterator[FakeAzureRetail]:
    fake = FakeAzureRetail([
        azure_item("Standard_B2ms", "eastus", 0.0832, "B2ms"),
        azure_item("Standard_B2ms", "eastus", 0.0166, "B2ms Spot"),
        azure_item("Standard_B2ms", "eastus", 0.0928, "B2ms", "Virtual Machines BS Series Windows"),
        azure_item("Standard_B2ms", "eastus", 0.0200, "B2ms Low Priority"),
        azure_item("Standard_B2ms", "westeurope", 0.0912, "B2ms"),
    ])
    yield fake
    fake.stop()


def test_azure_retail_prices_with_paging(azure_prices: FakeAzureRetail) -> None:
    base = f"{azure_prices.url}/api/retail/prices"
    get = http_get_json()
    assert azure_retail(get, "Standard_B2ms", "eastus", False, base) == 0.0832
    # Four eastus items, two per page: the spot meter is on the first, read it all.
    assert azure_retail(get, "Standard_B2ms", "eastus", True, base) == 0.0166
    assert azure_prices.refused == []
    assert sum("$skip" in q for q in azure_prices.requests) == 2  # one NextPageLink each
    with pytest.raises(PriceSourceError, match="no Linux pay-as-you-go price"):
        azure_retail(get, "Standard_Z9", "eastus", False, base)


def test_unreachable_source_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(PriceSourceError):
        azure_retail(http_get_json(timeout_s=2), "Standard_B2ms", "eastus", False,
                     "http://127.0.0.1:9/api/retail/prices")


def test_cache_keeps_prices_on_disk_with_their_age(tmp_path: Path) -> None:
    cache = PriceCache(tmp_path / "prices.json")
    calls: list[int] = []

    def fetch() -> float:
        calls.append(1)
        return 0.0832

    first = cached(cache, "aws/t3.large/us-east-1/od", 1000.0, 3600, fetch, "AWS Price List API")
    assert first == SourcedPrice(0.0832, "AWS Price List API", 1000.0)
    # A new cache object on the same file: the price and its fetch time survive.
    again = cached(PriceCache(tmp_path / "prices.json"), "aws/t3.large/us-east-1/od", 2800.0,
                   3600, fetch, "AWS Price List API")
    assert again == first and len(calls) == 1
    assert again.describe(2800.0) == "AWS Price List API, fetched 1800s ago"
    # Older than max_age: fetched anew.
    cached(cache, "aws/t3.large/us-east-1/od", 5000.0, 3600, fetch, "AWS Price List API")
    assert len(calls) == 2
    assert json.loads((tmp_path / "prices.json").read_text())[
        "aws/t3.large/us-east-1/od"]["fetched_at"] == 5000.0
    (tmp_path / "prices.json").write_text("{not json")  # a damaged cache is an empty one
    assert PriceCache(tmp_path / "prices.json").get("aws/t3.large/us-east-1/od", 5000, 60) is None


def gcp_skus() -> list[dict]:
    from tests.fakes.price_servers import gcp_sku

    return [
        gcp_sku("N2 Instance Core running in Americas", "us-central1", "OnDemand", "CPU", "h",
                0.031611),
        gcp_sku("N2 Instance Ram running in Americas", "us-central1", "OnDemand", "RAM",
                "GiBy.h", 0.004237),
        gcp_sku("Spot Preemptible N2 Instance Core running in Americas", "us-central1",
                "Preemptible", "CPU", "h", 0.007650),
        gcp_sku("Spot Preemptible N2 Instance Ram running in Americas", "us-central1",
                "Preemptible", "RAM", "GiBy.h", 0.001025),
        gcp_sku("N2 Instance Core running in Belgium", "europe-west1", "OnDemand", "CPU", "h",
                0.034773),
        gcp_sku("N2D AMD Instance Core running in Americas", "us-central1", "OnDemand", "CPU",
                "h", 0.027502),
        gcp_sku("N2 Instance Ram running in Belgium", "europe-west1", "OnDemand", "RAM",
                "GiBy.h", 0.004661),
    ]


def test_gcp_catalog_prices_cores_and_memory_across_pages() -> None:
    from czarina_fleet.providers.price_sources import gcp_catalog, gcp_machine
    from tests.fakes.price_servers import FakeGcpCatalog

    fake = FakeGcpCatalog(gcp_skus(), key="k-123")
    base = f"{fake.url}/v1/services/6F81-5844-456A/skus"
    try:
        get = http_get_json()
        assert gcp_machine("n2-standard-4") == ("n2", 4, 16.0)
        assert gcp_machine("n1-standard-2") == ("n1", 2, 7.5)
        od = gcp_catalog(get, "n2-standard-4", "us-central1-a", False, "k-123", base)
        assert od == pytest.approx(4 * 0.031611 + 16 * 0.004237)
        spot = gcp_catalog(get, "n2-standard-4", "us-central1", True, "k-123", base)
        assert spot == pytest.approx(4 * 0.00765 + 16 * 0.001025)
        eu = gcp_catalog(get, "n2-highmem-2", "europe-west1-b", False, "k-123", base)
        assert eu == pytest.approx(2 * 0.034773 + 16 * 0.004661)  # RAM on the 3rd page
        assert fake.refused == [] and {q.get("pageToken") for q in fake.requests} == {
            None, "3", "6"}
        with pytest.raises(PriceSourceError, match="not a predefined"):
            gcp_catalog(get, "e2-medium", "us-central1", False, "k-123", base)
        with pytest.raises(PriceSourceError):  # the API refuses a request without a key
            gcp_catalog(get, "n2-standard-4", "us-central1", False, "wrong", base)
    finally:
        fake.stop()
