"""Fake price sources on 127.0.0.1, answering in the documented shapes, with paging.

- `FakeAwsPricing`: the Price List Query API (JSON 1.1, X-Amz-Target
  AWSPriceListService.GetProducts). Every request is checked against botocore's own
  service model (members, required members, the Filter Type enum) and so is every
  answer; a request the real service would refuse gets a 400 ValidationException and
  is recorded in `refused`. One product per page, so NextToken paging is exercised.
- `FakeAzureRetail`: the Retail Prices API (GET /api/retail/prices?$filter=...): the
  filter must be `field eq 'value'` clauses joined by `and`, as the API documents;
  pages of two items linked by NextPageLink (with $skip, as the real API does).
- `FakeGcpCatalog`: the Cloud Billing Catalog's services.skus.list, behind an API key.
The two GET APIs share `_GetServer` (the query recorded, any other method or path
refused).
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import botocore.session

PRICING = botocore.session.get_session().get_service_model("pricing")


class _Server:
    def __init__(self) -> None:
        fake = self
        self.requests: list[Any] = []
        self.refused: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.answer(self.command, self.path, dict(self.headers), raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def refuse(self, why: str) -> tuple[int, Any]:
        self.refused.append(why)
        return 400, {"__type": "ValidationException", "message": why}

    def answer(self, method: str, path: str, headers: dict[str, str],
               raw: bytes) -> tuple[int, Any]:
        raise NotImplementedError


class _GetServer(_Server):
    """A GET-only API at one path (`PATH`): each request's query is recorded, any other
    method or path refused, and the query (one value a name) goes to `answer_query`."""

    PATH = ""

    def answer(self, method: str, path: str, headers: dict[str, str],
               raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.requests.append(query)
        if method != "GET" or parts.path != self.PATH:
            return self.refuse(f"no such endpoint {method} {parts.path}")
        return self.answer_query(query)

    def answer_query(self, query: dict[str, str]) -> tuple[int, Any]:
        raise NotImplementedError


def aws_product(shape: str, region: str, usd: str, os_name: str = "Linux",
                tenancy: str = "Shared") -> dict[str, Any]:
    """One price-list document as GetProducts returns it (FormatVersion aws_v1)."""
    sku = f"SKU{zlib.crc32(f'{shape}|{region}|{os_name}|{tenancy}'.encode()):010d}"
    return {
        "product": {"productFamily": "Compute Instance", "sku": sku, "attributes": {
            "instanceType": shape, "regionCode": region, "operatingSystem": os_name,
            "tenancy": tenancy, "preInstalledSw": "NA", "capacitystatus": "Used",
            "servicecode": "AmazonEC2", "location": region}},
        "serviceCode": "AmazonEC2", "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z",
            "termAttributes": {},
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs",
                "description": f"${usd} per On Demand {os_name} {shape} Instance Hour",
                "beginRange": "0", "endRange": "Inf", "appliesTo": [],
                "pricePerUnit": {"USD": usd}}}}}},
    }


class FakeAwsPricing(_Server):
    def __init__(self, products: list[dict[str, Any]]) -> None:
        self.products = products
        super().__init__()

    def answer(self, method: str, path: str, headers: dict[str, str],
               raw: bytes) -> tuple[int, Any]:
        target = headers.get("X-Amz-Target", "")
        if method != "POST" or path != "/" or target != "AWSPriceListService.GetProducts":
            return self.refuse(f"unknown operation {method} {path} {target}")
        body = json.loads(raw or b"{}")
        self.requests.append(body)
        problem = _check_shape(PRICING.operation_model("GetProducts").input_shape, body)
        if problem:
            return self.refuse(problem)
        if body["ServiceCode"] != "AmazonEC2":
            return self.refuse(f"unknown ServiceCode {body['ServiceCode']}")
        matching = [p for p in self.products if all(
            p["product"]["attributes"].get(f["Field"]) == f["Value"]
            for f in body.get("Filters", []) if f["Type"] == "TERM_MATCH")]
        start = int(body.get("NextToken") or 0)
        page: dict[str, Any] = {"FormatVersion": "aws_v1",
                                "PriceList": [json.dumps(p) for p in matching[start:start + 1]]}
        if start + 1 < len(matching):
            page["NextToken"] = str(start + 1)
        problem = _check_shape(PRICING.operation_model("GetProducts").output_shape, page)
        assert not problem, problem  # the fake itself must answer as documented
        return 200, page


def _check_shape(shape: Any, value: Any, where: str = "") -> str | None:
    """The first way `value` breaks botocore's `shape`, or None."""
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return f"{where or 'body'}: not an object"
        for name in value:
            if name not in shape.members:
                return f"{where}{name}: not a member of {shape.name}"
        for name in shape.required_members:
            if name not in value:
                return f"{where}{name}: required"
        for name, member in shape.members.items():
            if name in value:
                problem = _check_shape(member, value[name], f"{where}{name}.")
                if problem:
                    return problem
    elif shape.type_name == "list":
        if not isinstance(value, list):
            return f"{where}: not a list"
        for item in value:
            problem = _check_shape(shape.member, item, where)
            if problem:
                return problem
    elif shape.type_name == "string":
        if not isinstance(value, str):
            return f"{where}: not a string"
        if shape.enum and value not in shape.enum:
            return f"{where}: {value!r} not one of {shape.enum}"
    elif shape.type_name == "integer" and not isinstance(value, int):
        return f"{where}: not an integer"
    return None


def azure_item(shape: str, region: str, usd: float, sku_name: str,
               product: str = "Virtual Machines BS Series") -> dict[str, Any]:
    """One Retail Prices API item, with the documented fields."""
    return {
        "currencyCode": "USD", "tierMinimumUnits": 0.0, "retailPrice": usd, "unitPrice": usd,
        "armRegionName": region, "location": "US East", "effectiveStartDate":
        "2026-11-01T00:00:00Z", "meterId": f"m-{sku_name}-{region}", "meterName": sku_name,
        "productId": "DZH318Z0BQ4L", "skuId": "DZH318Z0BQ4L/00PF", "availabilityId": None,
        "productName": product, "skuName": sku_name, "serviceName": "Virtual Machines",
        "serviceId": "DZH313Z7MMC8", "serviceFamily": "Compute", "unitOfMeasure": "1 Hour",
        "type": "Consumption", "isPrimaryMeterRegion": True, "armSkuName": shape,
    }


_CLAUSE = re.compile(r"^(\w+) eq '([^']*)'$")
# The filterable fields the API documents, and the response field each one matches
# (priceType filters the item's "type").
_FILTERS = {f: f for f in ("armRegionName", "location", "meterId", "meterName", "productId",
                           "skuId", "productName", "skuName", "serviceName", "serviceId",
                           "serviceFamily", "armSkuName")} | {"priceType": "type"}


class FakeAzureRetail(_GetServer):
    PATH = "/api/retail/prices"
    PAGE = 2

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        super().__init__()

    def answer_query(self, query: dict[str, str]) -> tuple[int, Any]:
        clauses = [_CLAUSE.match(c) for c in query.get("$filter", "").split(" and ")]
        if not query.get("$filter") or not all(clauses):
            return self.refuse(f"unsupported $filter {query.get('$filter')!r}")
        wanted = {m.group(1): m.group(2) for m in clauses if m}
        unknown = set(wanted) - set(_FILTERS)
        if unknown:
            return self.refuse(f"not a filterable field: {sorted(unknown)}")
        matching = [i for i in self.items
                    if all(str(i.get(_FILTERS[k])) == v for k, v in wanted.items())]
        skip = int(query.get("$skip", "0"))
        page = matching[skip:skip + self.PAGE]
        nxt = None
        if skip + self.PAGE < len(matching):
            nxt = f"{self.url}{self.PATH}?" + urlencode(
                {"$filter": query["$filter"], "$skip": skip + self.PAGE})
        return 200, {"BillingCurrency": "USD", "CustomerEntityId": "Default",
                     "CustomerEntityType": "Retail", "Items": page, "NextPageLink": nxt,
                     "Count": len(page)}


def gcp_sku(description: str, region: str, usage: str, group: str, unit: str,
            usd: float) -> dict[str, Any]:
    """One Cloud Billing Catalog SKU as services.skus.list returns it."""
    units, nanos = int(usd), round((usd - int(usd)) * 1e9)
    return {
        "name": f"services/6F81-5844-456A/skus/{zlib.crc32(description.encode()):08X}",
        "skuId": f"{zlib.crc32((description + region).encode()):08X}",
        "description": description,
        "category": {"serviceDisplayName": "Compute Engine", "resourceFamily": "Compute",
                     "resourceGroup": group, "usageType": usage},
        "serviceRegions": [region],
        "pricingInfo": [{
            "effectiveTime": "2026-11-01T00:00:00Z", "summary": "",
            "pricingExpression": {
                "usageUnit": unit, "displayQuantity": 1,
                "usageUnitDescription": "hour" if unit == "h" else "gibibyte hour",
                "baseUnit": "s" if unit == "h" else "By.s", "baseUnitConversionFactor": 3600,
                "baseUnitDescription": "second",
                "tieredRates": [{"startUsageAmount": 0, "unitPrice": {
                    "currencyCode": "USD", "units": str(units), "nanos": nanos}}]},
            "currencyConversionRate": 1}],
        "serviceProviderName": "Google",
        "geoTaxonomy": {"type": "REGIONAL", "regions": [region]},
    }


class FakeGcpCatalog(_GetServer):
    """GET /v1/services/6F81-5844-456A/skus?key=...&currencyCode=USD[&pageToken=...]:
    an API key is required (the API's 403 otherwise); three SKUs a page."""

    PATH = "/v1/services/6F81-5844-456A/skus"
    PAGE = 3

    def __init__(self, skus: list[dict[str, Any]], key: str) -> None:
        self.skus, self.key = skus, key
        super().__init__()

    def answer_query(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("key") != self.key:
            self.refused.append("no valid API key")
            return 403, {"error": {"code": 403, "message": "The request is missing a valid "
                                   "API key.", "status": "PERMISSION_DENIED"}}
        unknown = set(query) - {"key", "currencyCode", "pageToken", "pageSize", "startTime",
                                "endTime"}
        if unknown:
            return self.refuse(f"unknown parameters {sorted(unknown)}")
        start = int(query.get("pageToken") or 0)
        page: dict[str, Any] = {"skus": self.skus[start:start + self.PAGE]}
        if start + self.PAGE < len(self.skus):
            page["nextPageToken"] = str(start + self.PAGE)
        return 200, page
