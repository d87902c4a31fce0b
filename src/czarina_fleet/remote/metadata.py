"""The cloud's own interruption notice, read on the host from its instance metadata
service, inside the one-round-trip probe (remote/probe.py).

Only on hosts of that cloud: the probe appends the block for the host's cloud (fixed
text chosen here; nothing of it comes from data) and none for other hosts. Each
request is bounded (`curl --connect-timeout 1 -m 2`), goes straight to the link-local
address (never through a proxy), and answers in one record per item:

    N <cloud> <item> <body, newlines removed>      (HTTP 200)
    N <cloud> error <item> <curl exit status>      (no answer; 22 = HTTP error)

A 404 (AWS: no notice) prints nothing. What each cloud documents (copies in
cloud-specs/metadata):

- AWS, IMDSv2: `PUT /latest/api/token` first, then `spot/instance-action`
  (`{"action": "terminate", "time": "...Z"}`, 404 without a notice) and
  `events/recommendations/rebalance` (`{"noticeTime": "...Z"}`).
- GCE (`Metadata-Flavor: Google`): `instance/preempted` (`TRUE` about 30 s before a
  preemption) and `instance/maintenance-event` (`TERMINATE_ON_HOST_MAINTENANCE` about
  60 s before).
- Azure Scheduled Events (`Metadata: true`): `Preempt` (at least 30 s ahead, its
  `NotBefore`) and `Terminate` events naming this VM; approved with a POST of
  `{"StartRequests": [{"EventId": ...}]}` once acted upon (`ack_argv`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from czarina_fleet.model.fleet import MetadataNotice

CLOUDS = ("aws", "gcp", "azure")
ENDPOINT = "http://169.254.169.254"
GCE_PREEMPT_NOTICE_S = 30.0      # instance/preempted turns TRUE about 30 s ahead
GCE_MAINTENANCE_NOTICE_S = 60.0  # maintenance-event changes about 60 s ahead
AZURE_API = "api-version=2020-07-01"

_MD = r"""md() { curl -s -f --noproxy '*' --connect-timeout 1 -m 2 "$@"; }
mdout() {  # cloud item rc body
  case $3 in
    0) printf 'N\t%s\t%s\t' "$1" "$2"; printf '%s' "$4" | tr -d '\r\n'; printf '\n' ;;
    *) printf 'N\t%s\terror\t%s %s\n' "$1" "$2" "$3" ;;
  esac
}
"""

_AWS = _MD + r"""tok=$(md -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
  http://169.254.169.254/latest/api/token); rc=$?
if [ "$rc" -ne 0 ]; then mdout aws token "$rc" ""; else
  for item in spot/instance-action events/recommendations/rebalance; do
    body=$(md -H "X-aws-ec2-metadata-token: $tok" \
      "http://169.254.169.254/latest/meta-data/$item"); rc=$?
    [ "$rc" -eq 22 ] || mdout aws "$item" "$rc" "$body"
  done
fi
"""

_GCP = _MD + r"""for item in preempted maintenance-event; do
  body=$(md -H 'Metadata-Flavor: Google' \
    "http://169.254.169.254/computeMetadata/v1/instance/$item"); rc=$?
  mdout gcp "$item" "$rc" "$body"
done
"""

_AZURE = _MD + r"""body=$(md -H 'Metadata: true' \
  'http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01'); rc=$?
mdout azure scheduledevents "$rc" "$body"
"""

_SCRIPTS = {"aws": _AWS, "gcp": _GCP, "azure": _AZURE}

ACK_SCRIPT = r"""curl -s -f --noproxy '*' --connect-timeout 1 -m 5 -X POST -H 'Metadata: true' \
  -d "$1" 'http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01'"""


def metadata_script(cloud: str | None) -> str:
    """The probe's block for `cloud`; empty for any other host (never asked)."""
    return _SCRIPTS.get(cloud or "", "")


def ack_argv(event_ids: list[str]) -> list[str]:
    """Approve Azure scheduled events (the ids travel as data, JSON-encoded)."""
    body = json.dumps({"StartRequests": [{"EventId": e} for e in event_ids]})
    return ["sh", "-c", ACK_SCRIPT, "czarina-ack", body]


def parse_records(records: list[list[str]], now: float, instance: str | None
                  ) -> tuple[tuple[MetadataNotice, ...], str | None]:
    """Turn `N` records (fields after the "N") into notices and, if the metadata service
    did not answer, why. `instance` is the VM's name (Azure events name theirs)."""
    notices: list[MetadataNotice] = []
    errors: list[str] = []
    for fields in records:
        if len(fields) < 3:
            continue
        cloud, item, body = fields[0], fields[1], "\t".join(fields[2:])
        if item == "error":
            errors.append(_error(cloud, body))
            continue
        try:
            notices.extend(_notices(cloud, item, body, now, instance))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            errors.append(f"{cloud} metadata {item}: unreadable answer ({e}): {body[:120]}")
    return tuple(notices), "; ".join(errors) or None


def _error(cloud: str, body: str) -> str:
    item, _, rc = body.partition(" ")
    why = {"127": "curl is not installed", "22": "HTTP error", "7": "no metadata service",
           "28": "timed out"}.get(rc, f"curl exit {rc}")
    return f"{cloud} metadata {item}: {why}"


def _notices(cloud: str, item: str, body: str, now: float, instance: str | None
             ) -> list[MetadataNotice]:
    if cloud == "aws" and item == "spot/instance-action":
        doc = json.loads(body)
        return [MetadataNotice("aws", "interruption",
                               f"AWS spot interruption warning ({doc['action']})",
                               deadline=_iso(doc["time"]))]
    if cloud == "aws" and item == "events/recommendations/rebalance":
        json.loads(body)["noticeTime"]  # the documented shape, or KeyError
        return [MetadataNotice("aws", "rebalance", "AWS rebalance recommendation")]
    if cloud == "gcp" and item == "preempted":
        if body.strip() != "TRUE":
            return []
        return [MetadataNotice("gcp", "interruption", "GCE preemption (instance/preempted)",
                               deadline=now + GCE_PREEMPT_NOTICE_S)]
    if cloud == "gcp" and item == "maintenance-event":
        if body.strip() != "TERMINATE_ON_HOST_MAINTENANCE":
            return []  # NONE, or a live migration: the host stays
        return [MetadataNotice("gcp", "interruption", "GCE host maintenance (terminate)",
                               deadline=now + GCE_MAINTENANCE_NOTICE_S)]
    if cloud == "azure" and item == "scheduledevents":
        return _azure(json.loads(body), now, instance)
    return []


def _azure(doc: dict[str, object], now: float, instance: str | None) -> list[MetadataNotice]:
    found = []
    for event in doc.get("Events") or []:  # type: ignore[union-attr]
        assert isinstance(event, dict)
        if event.get("EventType") not in ("Preempt", "Terminate"):
            continue  # Freeze, Reboot, Redeploy: the VM and its disk stay
        resources = event.get("Resources") or []
        if instance and resources and instance not in resources:
            continue  # an event for another VM of the same availability set
        not_before = str(event.get("NotBefore") or "")
        started = event.get("EventStatus") == "Started" or not not_before
        deadline = now if started else parsedate_to_datetime(not_before).timestamp()
        found.append(MetadataNotice("azure", "interruption",
                                    f"Azure scheduled event {event['EventType']}",
                                    deadline=deadline, ack=str(event["EventId"])))
    return found


def _iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
