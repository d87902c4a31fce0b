"""Compute Engine requests checked against Google's discovery document (compute.v1.json).

Every call the fake GCE answers is first matched to a discovery method by HTTP method and
path template, then its path parameters (patterns), query parameters (known names, types,
enums, ranges, required), body (the method's request schema: known fields, types, enums,
fields annotated required for this method) and `filter` (gce_filter's grammar, fields of
the listed resource) are checked. The fake's own answer is checked against the method's
response schema too, so the fake cannot invent fields either. Nothing here is hand-written
per method: adding a call to the driver gets it validated as soon as the fake serves it.

Beyond the document: `$alt` is Google's system-parameter spelling of `alt`, which the
google-cloud-compute REST transport sends as `json;enum-encoding=int`
(https://cloud.google.com/apis/docs/system-parameters); proto3 JSON lets int64 fields be
numbers or strings and enums be names or numbers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.fakes import gce_filter

SPEC_FILE = Path(__file__).resolve().parents[1] / "data/cloud-specs/gcp/compute.v1.json"
SYSTEM_PARAMS = {"$alt": re.compile(r"json(;enum-encoding=int)?")}
INT64 = {"int64", "uint64"}


@dataclass(frozen=True)
class Method:
    id: str
    http: str
    path: str
    regex: re.Pattern[str]
    params: dict[str, dict[str, Any]]
    request: str | None
    response: str | None

    @property
    def collection(self) -> str:
        return self.id.split(".")[1]


class Discovery:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.schemas: dict[str, dict[str, Any]] = doc["schemas"]
        self.global_params: dict[str, dict[str, Any]] = doc["parameters"]
        self.prefix = "/" + doc["servicePath"]
        self.methods: list[Method] = []
        self._collect(doc["resources"])
        # literal segments first, so `instances/bulkInsert` wins over `instances/{instance}`
        self.methods.sort(key=lambda m: -len(re.sub(r"\{[^}]*\}", "", m.path)))

    def _collect(self, resources: dict[str, Any]) -> None:
        for resource in resources.values():
            for m in resource.get("methods", {}).values():
                self.methods.append(Method(
                    m["id"], m["httpMethod"], m["path"], _template(m["path"]),
                    m.get("parameters", {}), (m.get("request") or {}).get("$ref"),
                    (m.get("response") or {}).get("$ref")))
            self._collect(resource.get("resources", {}))

    def method(self, method_id: str) -> Method | None:
        return next((m for m in self.methods if m.id == method_id), None)

    def match(self, http: str, path: str) -> tuple[Method, dict[str, str]] | None:
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix):]
        for m in self.methods:
            hit = m.regex.fullmatch(rest)
            if hit and m.http == http:
                return m, hit.groupdict()
        return None

    # -- requests ----------------------------------------------------------------------

    def check_request(self, m: Method, path_params: dict[str, str], query: dict[str, str],
                      body: Any) -> list[str]:
        problems = [p for name, value in path_params.items()
                    for p in self._param(m, name, value, m.params[name])]
        for name, value in query.items():
            if name in SYSTEM_PARAMS:
                if not SYSTEM_PARAMS[name].fullmatch(value):
                    problems.append(f"{m.id}: system parameter {name}={value!r}")
            elif spec := (m.params.get(name) or self.global_params.get(name)):
                if spec.get("location") == "query":
                    problems += self._param(m, name, value, spec)
                else:
                    problems.append(f"{m.id}: {name} is a {spec['location']} parameter")
            else:
                problems.append(f"{m.id}: unknown query parameter {name!r}")
        problems += [f"{m.id}: required parameter {name!r} missing"
                     for name, spec in m.params.items()
                     if spec.get("required") and spec["location"] == "query" and name not in query]
        if "filter" in query:
            problems += self._filter(m, query["filter"])
        if m.request:
            if body is None:
                problems.append(f"{m.id}: the request needs a {m.request} body")
            else:
                problems += self.check_value(body, {"$ref": m.request}, m.request, m.id)
        elif body not in (None, {}):
            problems.append(f"{m.id}: takes no request body")
        return problems

    def _param(self, m: Method, name: str, value: str, spec: dict[str, Any]) -> list[str]:
        where = f"{m.id}: parameter {name}={value!r}"
        if spec.get("pattern") and not re.fullmatch(spec["pattern"], value):
            return [f"{where} does not match {spec['pattern']}"]
        if spec.get("enum") and value not in spec["enum"]:
            return [f"{where} is not one of {spec['enum']}"]
        if spec.get("type") == "boolean" and value not in ("true", "false"):
            return [f"{where} is not a boolean"]
        if spec.get("type") == "integer":
            if not re.fullmatch(r"-?\d+", value):
                return [f"{where} is not an integer"]
            low, high = spec.get("minimum"), spec.get("maximum")
            if (low and int(value) < int(low)) or (high and int(value) > int(high)):
                return [f"{where} is outside [{low}, {high}]"]
        return []

    def _filter(self, m: Method, text: str) -> list[str]:
        try:
            expr = gce_filter.parse(text)
        except gce_filter.FilterError as exc:
            return [f"{m.id}: invalid filter {text!r}: {exc}"]
        item = self.list_item_schema(m)
        if item is None:
            return [f"{m.id}: takes no filter"]
        return [f"{m.id}: filter field {f!r} is not a field of {item}"
                for f in gce_filter.fields(expr) if not self.has_field(item, f)]

    def list_item_schema(self, m: Method) -> str | None:
        listing = self.schemas.get(m.response or "", {})
        items = listing.get("properties", {}).get("items", {}).get("items", {})
        return items.get("$ref")

    def has_field(self, schema_name: str, dotted: str) -> bool:
        schema: dict[str, Any] = {"$ref": schema_name}
        for part in dotted.split("."):
            schema = self._resolve(schema)
            if schema.get("type") == "array":
                schema = self._resolve(schema["items"])
            if part in schema.get("properties", {}):
                schema = schema["properties"][part]
            elif "additionalProperties" in schema:
                schema = schema["additionalProperties"]
            else:
                return False
        return True

    # -- values ------------------------------------------------------------------------

    def check_value(self, value: Any, schema: dict[str, Any], where: str,
                    method_id: str | None = None) -> list[str]:
        schema = self._resolve(schema)
        kind = schema.get("type")
        if kind == "object":
            return self._object(value, schema, where, method_id)
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected a list, got {value!r}"]
            return [p for i, v in enumerate(value)
                    for p in self.check_value(v, schema["items"], f"{where}[{i}]", method_id)]
        return _scalar(value, schema, where)

    def _object(self, value: Any, schema: dict[str, Any], where: str,
                method_id: str | None) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {value!r}"]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        problems = []
        for key, v in value.items():
            if key in props:
                problems += self.check_value(v, props[key], f"{where}.{key}", method_id)
            elif extra is not None:
                problems += self.check_value(v, extra, f"{where}[{key!r}]", method_id)
            else:
                problems.append(f"{where}: unknown field {key!r}")
        if method_id:
            problems += [f"{where}.{key} is required by {method_id}"
                         for key, spec in props.items() if key not in value
                         and method_id in spec.get("annotations", {}).get("required", [])]
        return problems

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        return schema

    # -- responses ---------------------------------------------------------------------

    def check_response(self, m: Method, status: int, body: Any) -> list[str]:
        if status >= 400:
            return _error_shape(body, f"{m.id} error reply")
        if m.response is None:
            return []
        return self.check_value(body, {"$ref": m.response}, f"{m.id} reply {m.response}")


def _template(path: str) -> re.Pattern[str]:
    out, last = "", 0
    for hit in re.finditer(r"\{(\+?)([^}]+)\}", path):
        out += re.escape(path[last:hit.start()])
        out += f"(?P<{hit[2]}>.+)" if hit[1] else f"(?P<{hit[2]}>[^/]+)"
        last = hit.end()
    return re.compile(out + re.escape(path[last:]))


def _scalar(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    kind, fmt, enum = schema.get("type"), schema.get("format"), schema.get("enum")
    if kind == "any":
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    if kind == "integer" or (kind == "string" and fmt in INT64):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if enum:
        if isinstance(value, int) and not isinstance(value, bool):
            return []  # proto3 JSON: an enum by number (enum-encoding=int replies)
        return [] if value in enum else [f"{where}: {value!r} is not one of {enum}"]
    return [] if isinstance(value, str) else [f"{where}: expected a string, got {value!r}"]


def _error_shape(body: Any, where: str) -> list[str]:
    """Google's JSON error: {"error": {"code": int, "message": str, "errors": [...]}}."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), int) \
            or not isinstance(error.get("message"), str):
        return [f"{where}: not Google's error shape: {body!r}"]
    return []


@cache
def discovery() -> Discovery:
    return Discovery(json.loads(SPEC_FILE.read_text()))
