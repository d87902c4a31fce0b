"""A fake Compute Engine REST API: just the calls the GCP driver makes, answered the way
the real API answers them, so the real google-cloud-compute client can talk to it.

Every request is checked against Google's discovery document first (tests/fakes/gce_spec):
one the real API would refuse gets the documented 400 error and is recorded in
`violations`, as is any answer of the fake that the document does not allow; the test
fixtures fail on any violation. Handlers are found by discovery method id
(`compute.instances.insert` -> `_instances_insert`).

Long-running operations go RUNNING (for `polls_until_done` polls) then DONE. Tests can
inject an HTTP error or an operation error, slow a zone down, and preempt a VM."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from tests.fakes import gce_filter
from tests.fakes.gce_spec import discovery
from tests.fakes.jsonhttp import JsonServer, Reply


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
        self.violations: list[str] = []  # requests or answers the discovery document refuses

    def inject(self, operation: str, zone: str | None = None, **kw: Any) -> None:
        self.injections.append(Injection(operation, zone, **kw))

    def preempt(self, zone: str, name: str) -> None:
        """What GCE does to a Spot VM with termination action DELETE."""
        with self.lock:
            vm = self.instances.pop((zone, name))
            op = self._new_op("p", zone, PREEMPTED_TYPE, vm["selfLink"], done=True)
            op["targetId"] = vm["id"]

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        spec = discovery()
        found = spec.match(method, path)
        if found is None:
            self.violations.append(f"{method} {path}: no such method in the discovery document")
            return _error(404, "notFound", f"The requested URL {path} was not found")
        m, params = found
        self.operation(m.id)
        problems = spec.check_request(m, params, query, body)
        if problems:
            self.violations.extend(problems)
            return _error(400, "invalid", "; ".join(problems))
        handler = getattr(self, "_" + m.id.split(".", 1)[1].replace(".", "_"), None)
        if handler is None:
            self.violations.append(f"{m.id}: valid, but the fake does not serve it")
            return _error(501, "notImplemented", f"the fake does not serve {m.id}")
        injected = self._injected(m.id, params.get("zone", ""))
        if injected and injected.http_status:
            reply: Reply = _error(injected.http_status, injected.reason, "injected")
        else:
            reply = handler(params, query, body, injected)
        self.violations += spec.check_response(m, reply[0], reply[1])
        return reply

    # -- instances ---------------------------------------------------------------------

    def _instances_insert(self, g: dict[str, str], q: dict[str, str], body: Any,
                          injected: Injection | None) -> Reply:
        zone, name = g["zone"], body["name"]
        if q.get("requestId") in self.by_request:
            return 200, _public(self.ops[self.by_request[q["requestId"]]]), {}
        if (zone, name) in self.instances:
            return _error(409, "alreadyExists", f"The resource '{name}' already exists")
        project = f"{self.url}/compute/v1/projects/{g['project']}"
        link = f"{project}/zones/{zone}/instances/{name}"
        op = self._new_op(g["project"], zone, "insert", link)
        if injected and injected.op_error:
            op["pendingError"] = injected.op_error
        else:
            vm = {**body, "id": str(next(self._ids)), "status": "PROVISIONING",
                  "metadata": {**body.get("metadata", {}), "fingerprint": "fp0"},
                  "selfLink": link, "zone": f"projects/{g['project']}/zones/{zone}",
                  "creationTimestamp": "2026-01-01T00:00:00.000-00:00",
                  "machineType": f"{project}/{body['machineType']}"}
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
        wanted = gce_filter.parse(q.get("filter", ""))
        items = [vm for (zone, _), vm in self.instances.items()
                 if zone == g["zone"] and gce_filter.matches(wanted, vm)]
        return 200, {"kind": "compute#instanceList", "items": items}, {}

    def _instances_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                       injected: Injection | None) -> Reply:
        vm = self.instances.get((g["zone"], g["instance"]))
        if vm is None:
            return _error(404, "notFound", f"'{g['instance']}' was not found")
        return 200, vm, {}

    def _instances_setMetadata(self, g: dict[str, str], q: dict[str, str], body: Any,
                               injected: Injection | None) -> Reply:
        vm = self.instances.get((g["zone"], g["instance"]))
        if vm is None:
            return _error(404, "notFound", f"'{g['instance']}' was not found")
        meta = vm.setdefault("metadata", {})
        if body.get("fingerprint") != meta.get("fingerprint"):
            return _error(412, "conditionNotMet", "Supplied fingerprint does not match "
                          "current metadata fingerprint.")
        meta["items"] = body.get("items", [])
        meta["fingerprint"] = f"fp{next(self._ids)}"
        return 200, _public(self._new_op(g["project"], g["zone"], "setMetadata",
                                         vm["selfLink"])), {}

    def _instances_delete(self, g: dict[str, str], q: dict[str, str], body: Any,
                          injected: Injection | None) -> Reply:
        vm = self.instances.pop((g["zone"], g["instance"]), None)
        if vm is None:
            return _error(404, "notFound", f"'{g['instance']}' was not found")
        return 200, _public(self._new_op(g["project"], g["zone"], "delete", vm["selfLink"])), {}

    # -- catalog (read by `czarina doctor`) ---------------------------------------------

    def _zones_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                   injected: Injection | None) -> Reply:
        if g["zone"] not in CATALOG_ZONES:
            return _error(404, "notFound", f"The resource 'projects/{g['project']}/zones/"
                          f"{g['zone']}' was not found")
        region = g["zone"].rsplit("-", 1)[0]
        return 200, {"kind": "compute#zone", "name": g["zone"], "status": "UP",
                     "region": f"{self.url}/compute/v1/projects/{g['project']}/regions/"
                               f"{region}"}, {}

    def _machineTypes_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                          injected: Injection | None) -> Reply:
        cpus = CATALOG_TYPES.get(g["machineType"])
        if g["zone"] not in CATALOG_ZONES or cpus is None:
            return _error(404, "notFound", f"The resource 'projects/{g['project']}/zones/"
                          f"{g['zone']}/machineTypes/{g['machineType']}' was not found")
        return 200, {"kind": "compute#machineType", "name": g["machineType"],
                     "guestCpus": cpus, "memoryMb": cpus * 4096, "zone": g["zone"]}, {}

    def _images_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                    injected: Injection | None) -> Reply:
        name = g["image"]
        if (g["project"], name) not in {(p, n) for p, _, n in CATALOG_IMAGES}:
            return _error(404, "notFound", f"The resource 'projects/{g['project']}/global/"
                          f"images/{name}' was not found")
        return 200, self._image(g["project"], name), {}

    def _images_getFromFamily(self, g: dict[str, str], q: dict[str, str], body: Any,
                              injected: Injection | None) -> Reply:
        found = [n for p, f, n in CATALOG_IMAGES if (p, f) == (g["project"], g["family"])]
        if not found:
            return _error(404, "notFound", f"The resource 'projects/{g['project']}/global/"
                          f"images/family/{g['family']}' was not found")
        return 200, self._image(g["project"], found[-1]), {}

    def _image(self, project: str, name: str) -> dict[str, Any]:
        family = next(f for p, f, n in CATALOG_IMAGES if (p, n) == (project, name))
        return {"kind": "compute#image", "name": name, "family": family, "status": "READY",
                "selfLink": f"{self.url}/compute/v1/projects/{project}/global/images/{name}"}

    # -- operations --------------------------------------------------------------------

    def _zoneOperations_get(self, g: dict[str, str], q: dict[str, str], body: Any,
                            injected: Injection | None) -> Reply:
        op = self.ops.get(g["operation"])
        if op is None:
            return _error(404, "notFound", "no such operation")
        if op["status"] != "DONE" and g["zone"] not in self.slow_zones:
            self.pending[op["name"]] -= 1
            if self.pending[op["name"]] < 0:
                self._finish(op)
        return 200, _public(op), {}

    _zoneOperations_wait = _zoneOperations_get

    def _zoneOperations_list(self, g: dict[str, str], q: dict[str, str], body: Any,
                             injected: Injection | None) -> Reply:
        wanted = gce_filter.parse(q.get("filter", ""))
        items = [_public(op) for op in self.ops.values() if op["zone"].endswith(g["zone"])
                 and gce_filter.matches(wanted, op)]
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
# What the fake's catalog holds (a real project sees many more).
CATALOG_ZONES = frozenset({"us-central1-a", "us-central1-b", "europe-west4-b"})
CATALOG_TYPES = {"e2-standard-2": 2, "e2-standard-4": 4, "n2-standard-2": 2}
CATALOG_IMAGES = [("debian-cloud", "debian-12", "debian-12-bookworm-v20260101")]


def _public(op: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in op.items() if k not in ("pendingError", "vm")}


def _error(status: int, reason: str, message: str) -> Reply:
    return status, {"error": {"code": status, "message": message,
                              "errors": [{"reason": reason, "message": message}]}}, {}
