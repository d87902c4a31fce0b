"""A fake Azure Resource Manager: just the calls the Azure driver makes, answered the way
ARM answers them, so the real azure-mgmt-compute/network clients can talk to it.

Every request is first checked against the Azure REST API specs (tests/fakes/arm_spec):
one the real service would refuse gets ARM's 400 `InvalidRequestContent` and is recorded
in `violations`, as is any answer of the fake the specs do not document; the test
fixtures fail on any violation. Resource types outside the copied specs (`UNSPECIFIED`)
are answered but recorded in `unvalidated`.

Async operations follow the ARM contract (azure-resource-manager-rpc
async-api-reference.md) with the status URLs the RPs' own examples show:
`/subscriptions/{sub}/providers/{ns}/locations/{loc}/operations/{id}` for
`Azure-AsyncOperation`, and for `Location` Network's `.../operationResults/{id}` or
Compute's `.../operations/{id}?monitor=true`. PUT answers 201 with an
`Azure-AsyncOperation` URL that reports InProgress (`polls_until_done` times) then
Succeeded; a VM PUT answers 201 with provisioningState Creating, and GETs of the VM turn
it Succeeded (or Failed, with an instance-view status, when a provisioning error was
injected). DELETE answers 202 with a `Location` that answers 202 until done, then 204.

As in Azure, a VM made from an image gets a managed OS disk (`storageProfile.osDisk.name`,
no tags: ARM does not copy the VM's), and when a VM goes (deleted, or evicted with
eviction policy Delete) its OS disk and NICs go with it where their `deleteOption` is
`Delete`; a public IP on such a NIC stays (it is its own resource)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from tests.fakes.arm_spec import arm_spec
from tests.fakes.jsonhttp import JsonServer, Reply

RG = r"^/subscriptions/(?P<s>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
KINDS = {
    "Microsoft.Network/publicIPAddresses": "ip", "Microsoft.Network/networkInterfaces": "nic",
    "Microsoft.Compute/virtualMachines": "vm", "Microsoft.Compute/disks": "disk",
}
RESOURCE = re.compile(RG + r"(?P<type>Microsoft\.\w+/\w+)/(?P<n>[^/]+)$")
COLLECTION = re.compile(RG + r"(?P<type>Microsoft\.\w+/\w+)$")
OPERATION = re.compile(
    r"^/subscriptions/[^/]+/providers/(?P<ns>Microsoft\.\w+)/locations/(?P<loc>[^/]+)/"
    r"(?P<kind>\w+)/(?P<id>[^/]+)$")
# Resource types the drivers use that the copied specs do not cover (and why).
UNSPECIFIED = {"Microsoft.Compute/disks": "DiskRP's disk.json is not among the copied specs"}
ACTIONS = {"PUT": "write", "GET": "read", "DELETE": "delete"}
VM_SIZES = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.Compute/locations/"
                      r"(?P<loc>[^/]+)/vmSizes$")
# The VM sizes the fake's locations offer (a real subscription sees hundreds).
CATALOG_SIZES = {loc: ("Standard_D2s_v5", "Standard_D2as_v5", "Standard_B2ms")
                 for loc in ("eastus", "westeurope", "westus2")}


@dataclass
class Injection:
    action: str
    location: str | None
    status: int | None = None  # answer the call with this HTTP error and `code`
    code: str = "AuthorizationFailed"
    message: str = "injected"
    provision_error: str | None = None  # or let the VM end in provisioningState Failed


class FakeArm(JsonServer):
    def __init__(self, polls_until_done: int = 1) -> None:
        super().__init__()
        self.polls_until_done = polls_until_done
        self.slow_locations: set[str] = set()  # VMs there never finish provisioning
        self.resources: dict[str, dict[str, Any]] = {}  # path (lower case) -> resource
        self.ops: dict[str, dict[str, Any]] = {}
        self.injections: list[Injection] = []
        self._ids = itertools.count(1)
        self.violations: list[str] = []  # requests or answers the specs refuse
        self.unvalidated: set[str] = set()  # calls on resource types outside the specs
        self.newer_fields: set[tuple[str, str]] = set()  # (model, field) only newer specs have
        self.open_enum_values: set[tuple[str, str]] = set()  # unlisted extensible enum values

    def inject(self, action: str, location: str | None = None, **kw: Any) -> None:
        self.injections.append(Injection(action, location, **kw))

    def evict(self, name: str) -> None:
        """What Azure does to a Spot VM with eviction policy Delete."""
        with self.lock:
            for path in [p for p, r in self.resources.items()
                         if r["name"] == name and r["_kind"] == "vm"]:
                self._vm_gone(path)

    def _vm_gone(self, key: str) -> None:
        """Remove a VM and what it owns with deleteOption Delete (its OS disk, NICs)."""
        vm = self.resources.pop(key, None)
        if vm is None:
            return
        props = vm.get("properties", {})
        disk = props.get("storageProfile", {}).get("osDisk", {})
        if disk.get("deleteOption") == "Delete" and disk.get("name"):
            self.resources.pop(_disk_key(key, disk["name"]), None)
        for ref in props.get("networkProfile", {}).get("networkInterfaces", []):
            if ref.get("properties", {}).get("deleteOption") == "Delete":
                self.resources.pop(str(ref.get("id", "")).lower(), None)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r["_kind"] == kind]

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if m := OPERATION.match(path):
            return self._status(m, query)
        spec = arm_spec()
        found = spec.match(method, path)
        m = RESOURCE.match(path) or COLLECTION.match(path)
        if found is None and m is not None and m["type"] in UNSPECIFIED:
            self.unvalidated.add(f"{method} {m['type']}")
        elif found is None:
            self.violations.append(f"{method} {path}: no such operation in the specs")
            return _error(404, "InvalidResourceType", f"{method} {path}")
        else:
            seen = len(spec.newer_fields_used), len(spec.open_enum_values)
            problems = spec.check_request(found[0], found[1], query, body)
            self.newer_fields.update(spec.newer_fields_used[seen[0]:])
            self.open_enum_values.update(spec.open_enum_values[seen[1]:])
            if problems:
                self.violations.extend(problems)
                return _error(400, "InvalidRequestContent", "; ".join(problems))
        if (sizes := VM_SIZES.match(path)) is not None:
            reply = self._vm_sizes(sizes["loc"])
            self.violations += spec.check_response(found[0], *reply) if found else []
            return reply
        if m is None or m["type"] not in KINDS:
            self.violations.append(f"{method} {path}: valid, but the fake does not serve it")
            return _error(501, "NotImplemented", f"{method} {path}")
        reply = self._resource(method, path, m, body)
        if found is not None:
            self.violations += spec.check_response(found[0], *reply)
        return reply

    def _vm_sizes(self, location: str) -> Reply:
        """The VM sizes of a location (read by `czarina doctor`)."""
        self.operation("Microsoft.Compute/locations/vmSizes/read")
        if location not in CATALOG_SIZES:
            return _error(400, "NoRegisteredProviderFound", f"No registered resource provider "
                          f"found for location '{location}'")
        return 200, {"value": [{"name": n, "numberOfCores": 2, "osDiskSizeInMB": 1047552,
                                "resourceDiskSizeInMB": 0, "memoryInMB": 8192,
                                "maxDataDiskCount": 4} for n in CATALOG_SIZES[location]]}, {}

    def _resource(self, method: str, path: str, m: re.Match[str], body: Any) -> Reply:
        action = f"{m['type']}/{ACTIONS[method]}"
        self.operation(action)
        location = (body or {}).get("location") if body else None
        injected = self._injected(action, location)
        if injected and injected.status:
            return _error(injected.status, injected.code, injected.message)
        key = path.lower()
        if "n" not in m.groupdict():
            items = [_public(r) for p, r in self.resources.items()
                     if p.startswith(key + "/")]
            return 200, {"value": items}, {}
        if method == "PUT":
            return self._put(key, path, m, body, injected)
        if method == "DELETE":
            return self._delete(key, m["type"])
        return self._get(key)

    def _put(self, key: str, path: str, m: re.Match[str], body: dict[str, Any],
             injected: Injection | None) -> Reply:
        kind = KINDS[m["type"]]
        n = len(self.resources) + 2
        res = {**body, "id": path, "name": m["n"], "type": m["type"], "_kind": kind}
        props = res.setdefault("properties", {})
        if kind == "ip":
            props["ipAddress"] = f"198.51.100.{n}"  # TEST-NET-2: never routed
        if kind == "nic":
            for cfg in props.get("ipConfigurations", []):
                cfg.setdefault("properties", {})["privateIPAddress"] = f"10.1.0.{n}"
        if kind == "vm":
            props["timeCreated"] = "2026-01-01T00:00:00+00:00"
            res["_polls"] = self.polls_until_done
            res["_error"] = injected.provision_error if injected else None
            props["provisioningState"] = "Creating"
            self._make_os_disk(key, res)
        else:
            props["provisioningState"] = "Updating"
        self.resources[key] = res
        op = self._new_op(m["type"], res["location"], on_done=lambda: props.update(
            provisioningState="Succeeded"))
        if kind == "vm":
            op["on_done"] = lambda: None  # VMs finish through GETs (the driver reads them)
        return 201, _public(res), {"Azure-AsyncOperation": op["url"]}

    def _make_os_disk(self, vm_key: str, vm: dict[str, Any]) -> None:
        disk = vm["properties"].get("storageProfile", {}).get("osDisk", {})
        if disk.get("createOption") != "FromImage" or not disk.get("name"):
            return
        key = _disk_key(vm_key, disk["name"])
        group = vm["id"].rsplit("/providers/", 1)[0]
        path = f"{group}/providers/Microsoft.Compute/disks/{disk['name']}"
        self.resources[key] = {
            "id": path, "name": disk["name"], "type": "Microsoft.Compute/disks",
            "location": vm["location"], "_kind": "disk",
            "properties": {"provisioningState": "Succeeded", "diskState": "Attached"}}

    def _get(self, key: str) -> Reply:
        res = self.resources.get(key)
        if res is None:
            return _error(404, "ResourceNotFound", f"{key} was not found")
        props = res["properties"]
        if res["_kind"] == "vm" and props["provisioningState"] == "Creating" \
                and res["location"] not in self.slow_locations:
            res["_polls"] -= 1
            if res["_polls"] < 0:
                self._finish_vm(res)
        return 200, _public(res), {}

    def _finish_vm(self, res: dict[str, Any]) -> None:
        props = res["properties"]
        if res["_error"]:
            props["provisioningState"] = "Failed"
            props["instanceView"] = {"statuses": [{
                "code": f"ProvisioningState/failed/{res['_error']}", "level": "Error",
                "displayStatus": "Provisioning failed", "message": "injected"}]}
        else:
            props["provisioningState"] = "Succeeded"
            props["instanceView"] = {"statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info"},
                {"code": "PowerState/running", "level": "Info"}]}

    def _delete(self, key: str, rtype: str) -> Reply:
        res = self.resources.get(key)
        if res is None:
            return 204, None, {}  # ARM: deleting what is not there is a no-op
        res["properties"]["provisioningState"] = "Deleting"
        gone = (lambda: self._vm_gone(key)) if res["_kind"] == "vm" else (
            lambda: self.resources.pop(key, None))
        op = self._new_op(rtype, res["location"], on_done=gone)
        return 202, None, {"Location": op["location_url"]}

    def _new_op(self, rtype: str, location: str, on_done: Any) -> dict[str, Any]:
        """An async operation and its two status URLs: `url` (Azure-AsyncOperation) and
        `location_url` (Location), shaped as the RP's examples in the specs show."""
        op_id = f"op{next(self._ids)}"
        ns = rtype.split("/")[0]
        base = f"{self.url}/subscriptions/sub/providers/{ns}/locations/{location}"
        version = "api-version=2024-01-01"
        if (ns, "operationResults") in arm_spec().status_url_shapes:
            location_url = f"{base}/operationResults/{op_id}?{version}"
        else:
            location_url = f"{base}/operations/{op_id}?monitor=true&{version}"
        op = {"url": f"{base}/operations/{op_id}?{version}", "location_url": location_url,
              "left": self.polls_until_done, "on_done": on_done, "done": False}
        self.ops[op_id] = op
        return op

    def _status(self, m: re.Match[str], query: dict[str, str]) -> Reply:
        """GET of a status URL: `Location` semantics (202 until done, then 204) for
        operationResults or `monitor=true`, else an OperationStatusResult body."""
        self.operation(f"{m['ns']}/locations/{m['kind']}/read")
        spec = arm_spec()
        if (m["ns"], m["kind"]) not in spec.status_url_shapes or "api-version" not in query:
            self.violations.append(f"status URL {m[0]} {query}: not a documented shape")
        op = self.ops.get(m["id"])
        if op is None:
            return _error(404, "NotFound", f"operation {m['id']} not found")
        if not op["done"]:
            op["left"] -= 1
            if op["left"] < 0:
                op["done"] = True
                op["on_done"]()
        if m["kind"] == "operationResults" or query.get("monitor") == "true":
            return (204, None, {}) if op["done"] else (202, None, {"Location": op["location_url"]})
        status = {"name": m["id"], "status": "Succeeded" if op["done"] else "InProgress"}
        self.violations += spec.check_operation_status(status)
        return 200, status, {}

    def _injected(self, action: str, location: str | None) -> Injection | None:
        for inj in self.injections:
            if inj.action == action and inj.location in (None, location):
                self.injections.remove(inj)
                return inj
        return None


def _disk_key(vm_key: str, disk_name: str) -> str:
    group = vm_key.rsplit("/providers/", 1)[0]
    return f"{group}/providers/microsoft.compute/disks/{disk_name}".lower()


def _public(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if not k.startswith("_")}


def _error(status: int, code: str, message: str) -> Reply:
    return status, {"error": {"code": code, "message": message}}, {}
