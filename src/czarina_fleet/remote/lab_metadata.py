"""A lab host's instance metadata service: answers at 169.254.169.254:80 inside the
host's own network namespace (and nowhere else) exactly as the cloud it stands in for
documents its interruption notices (cloud-specs/metadata), so the probe's metadata
path runs unchanged on lab hosts.

It serves what `<state_dir>/metadata.json` says, read on every request:
`{"cloud": "aws"|"gcp"|"azure", "instance": NAME, "notice": null |
{"kind": "interruption"|"rebalance", "at": EPOCH, "deadline": EPOCH, "id": EVENT_ID}}`.
`czarina lab interrupt` writes the notice (remote/netns.py `post_notice`). Azure
approvals (POST StartRequests) are appended to `<state_dir>/metadata-acks.log`.

Run as `python -m czarina_fleet.remote.lab_metadata STATE_DIR` inside the namespace.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ADDRESS = "169.254.169.254"
GCE_PREEMPT_NOTICE_S = 30.0


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Handler(BaseHTTPRequestHandler):
    state_dir: Path = Path(".")
    tokens: set[str] = set()

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the probe asks every few seconds

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state_dir / "metadata.json").read_text()))
        except (OSError, ValueError):
            return {}

    def _send(self, code: int, body: str = "", ctype: str = "text/plain",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        state = self._state()
        if state.get("cloud") != "aws" or urlsplit(self.path).path != "/latest/api/token":
            return self._send(404)
        try:
            ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
        except ValueError:
            return self._send(400)
        if not 1 <= ttl <= 21600:
            return self._send(400)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        self._send(200, token, headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})

    def do_GET(self) -> None:
        state = self._state()
        cloud = state.get("cloud")
        notice = state.get("notice") or None
        path = urlsplit(self.path).path
        if cloud == "aws":
            self._aws(path, notice)
        elif cloud == "gcp":
            self._gcp(path, notice)
        elif cloud == "azure":
            self._azure_get(path, notice, str(state.get("instance", "")))
        else:
            self._send(404)

    def _aws(self, path: str, notice: dict[str, Any] | None) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") not in self.tokens:
            return self._send(401)
        kind = notice.get("kind") if notice else None
        if path == "/latest/meta-data/spot/instance-action" and kind == "interruption":
            assert notice is not None
            body = json.dumps({"action": "terminate", "time": _iso(notice["deadline"])})
            return self._send(200, body)
        if path == "/latest/meta-data/events/recommendations/rebalance" and notice:
            return self._send(200, json.dumps({"noticeTime": _iso(notice["at"])}))
        self._send(404)

    def _gcp(self, path: str, notice: dict[str, Any] | None) -> None:
        if self.headers.get("Metadata-Flavor") != "Google":
            return self._send(403, "Missing Metadata-Flavor:Google header.")
        headers = {"Metadata-Flavor": "Google", "ETag": secrets.token_hex(8)}
        if path == "/computeMetadata/v1/instance/preempted":
            # GCE flips it about 30 s before the preemption, however early we were told.
            due = (notice is not None and notice.get("kind") == "interruption"
                   and time.time() >= notice["deadline"] - GCE_PREEMPT_NOTICE_S)
            return self._send(200, "TRUE" if due else "FALSE", "application/text", headers)
        if path == "/computeMetadata/v1/instance/maintenance-event":
            return self._send(200, "NONE", "application/text", headers)
        self._send(404)

    def _azure_get(self, path: str, notice: dict[str, Any] | None, instance: str) -> None:
        if self.headers.get("Metadata") != "true":
            return self._send(400, json.dumps({"error": "Bad request. Required metadata "
                                               "header not specified"}), "application/json")
        if path != "/metadata/scheduledevents":
            return self._send(404)
        events = []
        if notice is not None and notice.get("kind") == "interruption":
            events.append({
                "EventId": notice["id"], "EventStatus": "Scheduled", "EventType": "Preempt",
                "ResourceType": "VirtualMachine", "Resources": [instance],
                "NotBefore": formatdate(notice["deadline"], usegmt=True),
                "Description": "", "EventSource": "Platform", "DurationInSeconds": -1})
        doc = {"DocumentIncarnation": 2 if events else 1, "Events": events}
        self._send(200, json.dumps(doc), "application/json")

    def do_POST(self) -> None:
        state = self._state()
        path = urlsplit(self.path).path
        if state.get("cloud") != "azure" or path != "/metadata/scheduledevents":
            return self._send(404)
        if self.headers.get("Metadata") != "true":
            return self._send(400)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            ids = [r["EventId"] for r in json.loads(self.rfile.read(length))["StartRequests"]]
        except (ValueError, KeyError, TypeError):
            return self._send(400)
        notice = state.get("notice") or {}
        if not ids or any(i != notice.get("id") for i in ids):
            return self._send(400)
        with open(self.state_dir / "metadata-acks.log", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"EventId": ids[0], "at": time.time()}) + "\n")
        self._send(200)


def serve(state_dir: Path) -> None:
    Handler.state_dir = state_dir
    Handler.tokens = set()
    server = ThreadingHTTPServer((ADDRESS, 80), Handler)
    (state_dir / "metadata.ready").write_text("listening\n")
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
