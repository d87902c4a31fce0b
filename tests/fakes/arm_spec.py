"""Azure Resource Manager requests checked against the Azure REST API specs (swagger 2.0)
in tests/data/cloud-specs/azure: Compute 2024-07-01, Network 2024-01-01.

Every swagger file there with paths is loaded (so a call the drivers add later is
validated too). A request is matched to an operation by method and path template
(case-insensitive, as ARM is), then its path parameters (patterns, lengths), query
parameters (known names, enums, `api-version` required) and body (the operation's body
schema with `allOf`, `required`, enums, types; unknown fields refused, as Compute and
Network refuse them with InvalidRequestContent) are checked, and the fake's answer is
checked against the operation's responses: a documented status code, a body of the
documented schema, and for long-running operations the ARM async-operation headers.

The SDKs send newer api-versions (compute 2026-04-01, network 2026-03-01) than these
files. `NEWER_FIELDS` holds the wire fields the newer versions add (from
azure/README.md): such a field is accepted, since the service behind the SDK's version
accepts it, and recorded in `ArmSpec.newer_fields_used` so a test can list them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

SPEC_ROOT = (Path(__file__).resolve().parents[1]
             / "data/cloud-specs/azure/azure-rest-api-specs/specification")
OPERATION_STATUS = ("common-types/resource-management/v3/types.json", "OperationStatusResult")
NEWER_FIELDS = {
    ("VirtualMachine", "placement"), ("VirtualMachineProperties", "flexProfile"),
    ("VirtualMachineProperties", "interconnectBlockProfile"),
    ("VirtualMachineProperties", "resiliencyProfile"),
    ("NetworkProfile", "interconnectGroupProfile"),
    ("VirtualMachineNetworkInterfaceIPConfigurationProperties", "privateIPAddressPrefixLength"),
    ("HardwareProfile", "processorMode"), ("StorageProfile", "alignRegionalDisksToVMZone"),
    ("StorageProfile", "diskApiVersion"), ("OSDisk", "storageFaultDomainAlignment"),
    ("VirtualMachineInstanceView", "capacityReservationType"),
    ("VirtualMachineInstanceView", "interconnectInstanceView"),
    ("NetworkInterfacePropertiesFormat", "defaultOutboundConnectivityEnabled"),
    ("PublicIPAddressPropertiesFormat", "upgradedToV2"),
    ("SubnetPropertiesFormat", "ipamPoolPrefixAllocations"),
    ("SubnetPropertiesFormat", "serviceGateway"),
}
STATUS_URL = re.compile(r"/subscriptions/[^/]+(?:/resourceGroups/[^/]+)?/providers/"
                        r"(?P<ns>Microsoft\.\w+)/locations/(?P<loc>[^/]+)/(?P<kind>\w+)/"
                        r"(?P<id>[^/?&]+)")


@dataclass(frozen=True)
class Operation:
    id: str
    http: str
    path: str
    regex: re.Pattern[str]
    file: Path
    spec: dict[str, Any]
    version: str

    @property
    def namespace(self) -> str:
        return self.path.split("/providers/", 1)[1].split("/", 1)[0]


class ArmSpec:
    def __init__(self, root: Path = SPEC_ROOT) -> None:
        self.root = root
        self.docs: dict[Path, dict[str, Any]] = {}
        self.operations: list[Operation] = []
        self.newer_fields_used: list[tuple[str, str]] = []  # every use, in order
        # values sent for extensible enums (`x-ms-enum.modelAsString`) that the spec does
        # not list: the spec allows any string there, so they are recorded, not refused
        self.open_enum_values: list[tuple[str, str]] = []
        for file in sorted(root.rglob("*.json")):
            if "examples" in file.parts:
                continue
            doc = self._doc(file)
            for path, item in doc.get("paths", {}).items():
                for http, op in item.items():
                    if http != "parameters":
                        self.operations.append(Operation(
                            op["operationId"], http.upper(), path, _template(path), file,
                            op, doc["info"]["version"]))
        self.operations.sort(key=lambda o: -len(re.sub(r"\{[^}]*\}", "", o.path)))

    def _doc(self, file: Path) -> dict[str, Any]:
        file = file.resolve()
        if file not in self.docs:
            self.docs[file] = json.loads(file.read_text())
        return self.docs[file]

    def resolve(self, node: dict[str, Any], file: Path) -> tuple[dict[str, Any], Path, str]:
        """Follow `$ref`s; returns the node, the file it is in and its definition name."""
        name = ""
        while "$ref" in node:
            target, _, pointer = node["$ref"].partition("#")
            if target:
                file = (file.parent / target).resolve()
            node = self._doc(file)
            for part in pointer.strip("/").split("/"):
                node = node[part]
            name = pointer.rsplit("/", 1)[-1]
        return node, file, name

    def match(self, http: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.operations:
            hit = op.regex.fullmatch(path)
            if hit and op.http == http:
                return op, {k: v for k, v in zip(_names(op.path), hit.groups(), strict=True)}
        return None

    def parameters(self, op: Operation) -> list[tuple[dict[str, Any], Path]]:
        found = []
        for raw in op.spec.get("parameters", []):
            node, file, _ = self.resolve(raw, op.file)
            found.append((node, file))
        return found

    # -- requests ----------------------------------------------------------------------

    def check_request(self, op: Operation, path_params: dict[str, str],
                      query: dict[str, str], body: Any) -> list[str]:
        problems: list[str] = []
        known = set()
        for param, file in self.parameters(op):
            name, where = param["name"], param["in"]
            known.add(name)
            if where == "path":
                problems += _string_param(op, name, path_params.get(name, ""), param)
            elif where == "query":
                if name in query:
                    problems += _string_param(op, name, query[name], param)
                elif param.get("required"):
                    problems.append(f"{op.id}: required query parameter {name!r} missing")
            elif where == "body":
                if body is None:
                    if param.get("required"):
                        problems.append(f"{op.id}: the request needs a body")
                else:
                    problems += self.check_value(body, param["schema"], file, op.id, "body")
        problems += [f"{op.id}: unknown query parameter {name!r}"
                     for name in query if name not in known]
        version = query.get("api-version", "")
        if version and version < op.version:
            problems.append(f"{op.id}: api-version {version} is older than the spec "
                            f"({op.version}) the fake validates against")
        return problems

    def check_value(self, value: Any, schema: dict[str, Any], file: Path, op_id: str,
                    where: str, request: bool = True) -> list[str]:
        schema, file, name = self.resolve(schema, file)
        props, required, extra = self._merged(schema, file)
        kind = schema.get("type") or ("object" if props or extra is not None else None)
        if kind == "object":
            return self._object(value, (props, required, extra), file, op_id, where,
                                name, request)
        if kind == "array":
            if not isinstance(value, list):
                return [f"{op_id}: {where}: expected a list, got {value!r}"]
            return [p for i, item in enumerate(value) for p in self.check_value(
                item, schema["items"], file, op_id, f"{where}[{i}]", request)]
        enum, open_enum = schema.get("enum"), schema.get("x-ms-enum", {}).get("modelAsString")
        if enum and open_enum and value not in enum and isinstance(value, str):
            self.open_enum_values.append((schema["x-ms-enum"].get("name", where), value))
            return _scalar(value, {k: v for k, v in schema.items() if k != "enum"},
                           f"{op_id}: {where}")
        return _scalar(value, schema, f"{op_id}: {where}")

    def _merged(self, schema: dict[str, Any], file: Path
                ) -> tuple[dict[str, tuple[dict[str, Any], Path]], set[str], Any]:
        """Properties (with the file each is defined in), required names and
        additionalProperties of a schema and everything it `allOf`s."""
        props = {k: (v, file) for k, v in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        extra = schema.get("additionalProperties")
        for part in schema.get("allOf", []):
            node, part_file, _ = self.resolve(part, file)
            more, more_required, more_extra = self._merged(node, part_file)
            props = {**more, **props}
            required |= more_required
            extra = extra if extra is not None else more_extra
        return props, required, extra

    def _object(self, value: Any, merged: tuple[dict[str, Any], set[str], Any], file: Path,
                op_id: str, where: str, name: str, request: bool) -> list[str]:
        if not isinstance(value, dict):
            return [f"{op_id}: {where}: expected an object, got {value!r}"]
        props, required, extra = merged
        problems = []
        for key, item in value.items():
            if key in props:
                sub, sub_file = props[key]
                problems += self.check_value(item, sub, sub_file, op_id, f"{where}.{key}",
                                             request)
            elif extra not in (None, False):
                if isinstance(extra, dict) and extra:
                    problems += self.check_value(item, extra, file, op_id, f"{where}.{key}",
                                                 request)
            elif request and (name, key) in NEWER_FIELDS:
                self.newer_fields_used.append((name, key))
            else:
                problems.append(f"{op_id}: {where}: unknown field {key!r} ({name or 'object'} "
                                f"has no such property)")
        if request:
            problems += [f"{op_id}: {where}.{key} is required" for key in sorted(required)
                         if key not in value and not props.get(key, ({}, file))[0].get(
                             "readOnly")]
        return problems

    # -- responses ---------------------------------------------------------------------

    def check_response(self, op: Operation, status: int, body: Any,
                       headers: dict[str, str]) -> list[str]:
        responses = op.spec["responses"]
        spec = responses.get(str(status))
        if spec is None and status >= 400:
            spec = responses.get("default")
        if spec is None:
            return [f"{op.id}: status {status} is not a documented response "
                    f"({sorted(responses)})"]
        problems = []
        if "schema" in spec and body is not None:
            problems += self.check_value(body, spec["schema"], op.file, op.id,
                                         f"{status} reply", request=False)
        if op.spec.get("x-ms-long-running-operation") and status in (201, 202):
            problems += self._async_headers(op, status, headers)
        return problems

    def _async_headers(self, op: Operation, status: int, headers: dict[str, str]) -> list[str]:
        """The ARM async contract (azure-resource-manager-rpc async-api-reference.md): a
        202 carries `Location`; a 201 of an async PUT carries `Azure-AsyncOperation`;
        each status URL must have a shape the RP's own examples show."""
        problems = []
        if status == 202 and "Location" not in headers:
            problems.append(f"{op.id}: 202 without a Location header")
        if status == 201 and "Azure-AsyncOperation" not in headers:
            problems.append(f"{op.id}: 201 of a long-running PUT without Azure-AsyncOperation")
        for header in ("Azure-AsyncOperation", "Location"):
            if header in headers:
                m = STATUS_URL.search(headers[header])
                shape = (m["ns"], m["kind"]) if m else None
                if shape not in self.status_url_shapes:
                    problems.append(f"{op.id}: {header} {headers[header]} is not a status URL "
                                    f"shape found in the specs' examples")
        return problems

    @cached_property
    def status_url_shapes(self) -> frozenset[tuple[str, str]]:
        """(namespace, collection) of every `…/providers/{ns}/locations/{loc}/{collection}/
        {id}` URL in an example's response headers: the async-operation status URLs the
        RPs really answer (they are not paths in the swagger)."""
        shapes = set()
        for file in self.root.rglob("examples/**/*.json"):
            for reply in json.loads(file.read_text()).get("responses", {}).values():
                for value in (reply.get("headers") or {}).values():
                    if m := STATUS_URL.search(str(value)):
                        shapes.add((m["ns"], m["kind"]))
        return frozenset(shapes)

    def check_operation_status(self, body: Any) -> list[str]:
        file = self.root / OPERATION_STATUS[0]
        return self.check_value(body, {"$ref": f"#/definitions/{OPERATION_STATUS[1]}"},
                                file, "operation status", "reply", request=False)


def _names(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", path)
    return re.compile("([^/]+)".join(re.escape(p) for p in parts), re.IGNORECASE)


def _string_param(op: Operation, name: str, value: str, param: dict[str, Any]) -> list[str]:
    where = f"{op.id}: parameter {name}={value!r}"
    if param.get("pattern") and not re.search(param["pattern"], value):
        return [f"{where} does not match {param['pattern']}"]
    if len(value) < param.get("minLength", 0) or len(value) > param.get("maxLength", 1 << 30):
        return [f"{where} has the wrong length"]
    if param.get("enum") and value not in param["enum"]:
        return [f"{where} is not one of {param['enum']}"]
    if param.get("type") == "boolean" and value not in ("true", "false", "True", "False"):
        return [f"{where} is not a boolean"]
    return []


def _scalar(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    kind, enum = schema.get("type"), schema.get("enum")
    checks = {"string": lambda v: isinstance(v, str),
              "boolean": lambda v: isinstance(v, bool),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool)}
    if kind in checks and not checks[kind](value):
        return [f"{where}: expected {kind}, got {value!r}"]
    if enum and value not in enum:
        return [f"{where}: {value!r} is not one of {enum}"]
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(value, int | float) and not isinstance(value, bool) and (
            (low is not None and value < low) or (high is not None and value > high)):
        return [f"{where}: {value!r} is outside [{low}, {high}]"]
    return []


@cache
def arm_spec() -> ArmSpec:
    return ArmSpec()
