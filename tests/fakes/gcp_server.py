"""A fake Compute Engine REST API: just the calls the GCP driver makes, answered the way
the real API answers them, so the real google-cloud-compute client can talk to it.

Long-running operations go RUNNING (for `polls_until_done` polls) then DONE. Tests can
inject an HTTP error or an operation error, slow a zone down, and preempt a VM."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from tests.fakes.jsonhttp import JsonServer, Reply

BASE = r"^/compute/v1/projects/(?P<p>[^/]+)/zones/(?P<z>[^/]+)"
ROUTES = [
    ("POST", re.compile(BASE + r"/instances$"), "compute.instances.insert"),
    ("GET", re.compile(BASE + r"/instances$"), "compute.instances.list"),
    ("GET", re.compile(BASE + r"/instances/(?P<n>[^/]+)$"), "compute.instances.get"),
    ("DELETE", re.compile(BASE + r"/instances/(?P<n>[^/]+)$"), "compute.instances.delete"),
    ("GET", re.compile(BASE + r"/operations$"), "compute.zoneOperations.list"),
    ("GET", re.compile(BASE + r"/operations/(?P<o>[^/]+)$"), "compute.zoneOperations.get"),
    ("POST", re.compile(BASE + r"/operations/(?P<o>[^/]+)/wait$"), "compute.zoneOperations.wait"),
]
FILTER_TERM = re.compile(r'([\w.-]+)\s*=\s*"([^"]*)"')


@dataclass
class Injection:
    operation: str
    zone: str | None
    http_status: int | None = None  # answer the call itself with this error
    op_error: str | None = None  # or let the operation finish DONE with this error code
    reason: str = "forbidden"


class FakeGce(JsonServer):
    def __init__(self, polls_until_done: int = 1) -> None:
        super().__init__()
        self.polls_until_done = polls_until_done
        self.slow_zones: set[str] = set()  # operations there never finish
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}  # (zone, name) -> VM
        self.ops: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, int] = {}
        self.by_request: dict[str, str] = {}
        self.injections: list[Injection] = []
        self._ids = itertools.count(4_000_000_000_000_000_001)

    def inject(self, operation: str, zone: str | None = None, **kw: Any) -> None:
        self.injections.append(Injection(operation, zone, **kw))

    def preempt(self, zone: str, name: str) -> None:
        """What GCE does to a Spot VM with termination action DELETE."""
        with self.lock:
            vm = self.instances.pop((zone, name))
            op = self._new_op("p", zone, PREEMPTED_TYPE, vm["selfLink"], done=True)
            op["targetId"] = vm["id"]

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        for verb, pattern, name in ROUTES:
            m = pattern.match(path)
            if verb == method and m:
                self.operation(name)
                injected = self._injected(name, m.group("z"))
                if injected and injected.http_status:
                    return _error(injected.http_status, injected.reason, "injected")
                return getattr(self, "_" + name.rsplit(".", 2)[-2] + "_" + name.rsplit(".")[-1])(
                    m.groupdict(), query, body, injected)
        return _error(404, "notFound", f"no route for {method} {path}")

    # -- instances ---------------------------------------------------------------------

    def _instances_insert(self, g: dict[str, str], q: dict[str, str], body: Any,
                          injected: Injection | None) -> Reply:
        zone, name = g["z"], body["name"]
        if q.get("requestId") in self.by_request:
            return 200, self.ops[self.by_request[q["requestId"]]], {}
        if (zone, name) in self.instances:
            return _error(409, "alreadyExists", f"The resource '{name}' already exists")
        link = f"{self.url}/compute/v1/projects/{g['p']}/zones/{zone}/instances/{name}"
        op = self._new_op(g["p"], zone, "insert", link)
        if injected and injected.op_error:
            op["pendingError"] = injected.op_error
        else:
            vm = {**body, "id": str(next(self._ids)), "status": "PROVISIONING",
                  "selfLink": link, "zone": f"projects/{g['p']}/zones/{zone}",
                  "creationTimestamp": "2026-01-01T00:00:00.000-00:00",
                  "machineType": f"{self.url}/compute/v1/projects/{g['p']}/{body['machineType']}"}
            n = len(self.instances) + 2
            for nic in vm.get("networkInterfaces", []):
                nic["networkIP"] = f"10.128.0.{n}"
                for cfg in nic.get("accessConfigs", []):
                    cfg["natIP"] = f"192.0.2.{n}"  # TEST-NET-1: never routed
            self.instances[(zone, name)] = vm
            op["vm"] = (zone, name)
        if q.get("requestId"):
            self.by_request[q["requestId"]] = op["name"]
        return 200, _public(op), {}

    def _instances_list(self, g: dict[str, str], q: dict[str, str], body: Any,
                        injected: Injection | None) -> Reply:
        wanted = FILTER_TERM.findall(q.get("filter", ""))
        items = [vm for (zone, _), vm in self.instances.items()
                 if zone == g["z"] and all(_field(vm, k) == v for k, v in wanted)]
        return 200, {"kind": "compute#instanceList", "items": items}, {}

    def _instances_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                       injected: Injection | None) -> Reply:
        vm = self.instances.get((g["z"], g["n"]))
        return (200, vm, {}) if vm else _error(404, "notFound", f"'{g['n']}' was not found")

    def _instances_delete(self, g: dict[str, str], q: dict[str, str], body: Any,
                          injected: Injection | None) -> Reply:
        vm = self.instances.pop((g["z"], g["n"]), None)
        if vm is None:
            return _error(404, "notFound", f"'{g['n']}' was not found")
        return 200, _public(self._new_op(g["p"], g["z"], "delete", vm["selfLink"])), {}

    # -- operations --------------------------------------------------------------------

    def _zoneOperations_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                            injected: Injection | None) -> Reply:
        op = self.ops.get(g["o"])
        if op is None:
            return _error(404, "notFound", "no such operation")
        if op["status"] != "DONE" and g["z"] not in self.slow_zones:
            self.pending[op["name"]] -= 1
            if self.pending[op["name"]] < 0:
                self._finish(op)
        return 200, _public(op), {}

    _zoneOperations_wait = _zoneOperations_get

    def _zoneOperations_list(self, g: dict[str, str], q: dict[str, str], body: Any,
                             injected: Injection | None) -> Reply:
        wanted = FILTER_TERM.findall(q.get("filter", ""))
        items = [_public(op) for op in self.ops.values() if op["zone"].endswith(g["z"])
                 and all(str(op.get(k)) == v for k, v in wanted)]
        return 200, {"kind": "compute#operationList", "items": items}, {}

    def _new_op(self, project: str, zone: str, kind: str, target: str,
                done: bool = False) -> dict[str, Any]:
        name = f"operation-{next(self._ids)}"
        op = {"kind": "compute#operation", "id": name.split("-")[1], "name": name,
              "zone": f"{self.url}/compute/v1/projects/{project}/zones/{zone}",
              "operationType": kind, "targetLink": target,
              "status": "DONE" if done else "RUNNING", "progress": 100 if done else 0}
        self.ops[name] = op
        self.pending[name] = self.polls_until_done
        return op

    def _finish(self, op: dict[str, Any]) -> None:
        op["status"], op["progress"] = "DONE", 100
        if "pendingError" in op:
            code = op.pop("pendingError")
            op["error"] = {"errors": [{"code": code, "message": f"injected {code}"}]}
            op["httpErrorStatusCode"] = 503
        elif "vm" in op:
            vm = self.instances.get(op.pop("vm"))
            if vm is not None:
                vm["status"] = "RUNNING"

    def _injected(self, operation: str, zone: str) -> Injection | None:
        for inj in self.injections:
            if inj.operation == operation and inj.zone in (None, zone):
                self.injections.remove(inj)
                return inj
        return None


PREEMPTED_TYPE = "compute.instances.preempted"


def _public(op: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in op.items() if k not in ("pendingError", "vm")}


def _field(vm: dict[str, Any], dotted: str) -> str | None:
    value: Any = vm
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else str(value)


def _error(status: int, reason: str, message: str) -> Reply:
    return status, {"error": {"code": status, "message": message,
                              "errors": [{"reason": reason, "message": message}]}}, {}
