"""AWS interruption notices as Karpenter takes them: EventBridge rules route EC2's own
events to one SQS queue (terraform-examples/aws creates both), and the driver polls the
queue each reconcile step, keeps what concerns its instances and deletes the messages
once the controller has acted on them.

Events read (the documented shapes, cloud-specs/metadata/aws):
- `EC2 Spot Instance Interruption Warning` (source `aws.ec2`): the instance is taken two
  minutes after the event's `time`;
- `EC2 Instance Rebalance Recommendation`: elevated risk, no deadline;
- `EC2 Instance State-change Notification` with state `stopping`, `stopped`,
  `shutting-down` or `terminated`: the instance is gone, as of the event's `time`;
- `AWS Health Event` (source `aws.health`), category `scheduledChange` for EC2: each
  affected instance is taken at the event's `startTime`.

Pool options: `interruption_queue` (a queue name or URL; without it nothing is polled),
`interruption_queue_region` (default: the pool's first region), `interruption_queue_wait_s`
(the long poll's wait, default 1 s: the poll runs inside the reconcile step, where
Karpenter's 20 s would hold the step up).

A queue may serve several pools: a message about an instance this pool does not own is
let go at once (visible again for the other pools' drivers) and deleted once it is
`UNCLAIMED_AFTER_S` old, so the queue cannot fill with strangers' events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from czarina_fleet.providers.base import InterruptionNotice

SPOT_WARNING_LEAD_S = 120.0
UNCLAIMED_AFTER_S = 600.0
MAX_BATCHES = 10  # 10 messages each: a burst of 100 events per step at most
_GONE_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})


@dataclass
class QueueEvent:
    instance_ids: list[str]
    notice: str            # "interruption" | "rebalance" | "gone"
    reason: str
    at: float              # the event's time
    deadline: float | None = None


@dataclass
class Received:
    notices: dict[str, InterruptionNotice] = field(default_factory=dict)  # instance id ->
    handled: list[str] = field(default_factory=list)    # receipt handles to delete
    foreign: list[str] = field(default_factory=list)    # receipt handles to let go


def parse_event(body: str) -> QueueEvent | None:
    """One EventBridge event (a message body); None for an event of another kind."""
    try:
        event = json.loads(body)
        kind, detail = event.get("detail-type"), event.get("detail") or {}
        at = _time(event["time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if kind == "EC2 Spot Instance Interruption Warning":
        return QueueEvent([detail["instance-id"]], "interruption",
                          f"AWS spot interruption warning ({detail.get('instance-action')})",
                          at, at + SPOT_WARNING_LEAD_S)
    if kind == "EC2 Instance Rebalance Recommendation":
        return QueueEvent([detail["instance-id"]], "rebalance",
                          "AWS rebalance recommendation", at)
    if kind == "EC2 Instance State-change Notification" and detail.get("state") in _GONE_STATES:
        return QueueEvent([detail["instance-id"]], "gone",
                          f"AWS instance state change: {detail['state']}", at)
    if (kind == "AWS Health Event" and detail.get("service") == "EC2"
            and detail.get("eventTypeCategory") == "scheduledChange"):
        ids = [e["entityValue"] for e in detail.get("affectedEntities") or []
               if str(e.get("entityValue", "")).startswith("i-")]
        start = detail.get("startTime")
        return QueueEvent(ids, "interruption",
                          f"AWS Health scheduled change ({detail.get('eventTypeCode')})", at,
                          _time(start) if start else at + SPOT_WARNING_LEAD_S)
    return None


def _time(text: str) -> float:
    """ISO 8601 (`2021-06-05T18:00:00Z`) or RFC 1123 (`Sat, 05 Jun 2021 18:00:00 GMT`)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return parsedate_to_datetime(text).timestamp()


def sort_messages(messages: list[dict[str, Any]], hosts: dict[str, str], now: float,
                  into: Received) -> None:
    """Sort received messages: notices for our instances (`hosts`: instance id -> host
    id) to act on then delete, others to let go or, when old, to delete."""
    for m in messages:
        event = parse_event(m.get("Body", ""))
        mine = [i for i in (event.instance_ids if event else []) if i in hosts]
        if event is None or mine:
            into.handled.append(m["ReceiptHandle"])  # not ours to wait on, or acted on
        elif now - float(m.get("Attributes", {}).get("SentTimestamp", 0)) / 1000 \
                > UNCLAIMED_AFTER_S:
            into.handled.append(m["ReceiptHandle"])
        else:
            into.foreign.append(m["ReceiptHandle"])
        for instance_id in mine:
            assert event is not None
            into.notices[instance_id] = _notice(event, instance_id, hosts[instance_id])


def _notice(event: QueueEvent, instance_id: str, host_id: str) -> InterruptionNotice:
    if event.notice == "gone":
        return InterruptionNotice(instance_id, host_id, event.reason, None,
                                  taken_at=event.at)
    return InterruptionNotice(instance_id, host_id, event.reason, event.deadline,
                              kind=event.notice)


class QueuePoller:
    """The queue of one pool's driver. `call(operation, **params)` is one SQS call
    (the driver's, with its error mapping, retries and recorder)."""

    def __init__(self, call: Any, queue: str, wait_s: float, clock: Any) -> None:
        self.call, self.queue, self.wait_s, self.clock = call, queue, wait_s, clock
        self._url: str | None = queue if queue.startswith(("https://", "http://")) else None
        self.remembered: dict[str, InterruptionNotice] = {}  # until the instance is gone
        self._pending = Received()

    async def url(self) -> str:
        if self._url is None:
            self._url = str((await self.call("GetQueueUrl", QueueName=self.queue))["QueueUrl"])
        return self._url

    async def poll(self, hosts: dict[str, str]) -> list[InterruptionNotice]:
        """Long-poll (briefly), sort what came, and return every notice known for the
        instances in `hosts` (instance id -> host id): those remembered from earlier
        steps too, since a message is read once."""
        url = await self.url()
        wait = int(round(self.wait_s))
        for _ in range(MAX_BATCHES):
            reply = await self.call("ReceiveMessage", QueueUrl=url, MaxNumberOfMessages=10,
                                    WaitTimeSeconds=wait, AttributeNames=["SentTimestamp"])
            messages = reply.get("Messages") or []
            sort_messages(messages, hosts, self.clock.now(), self._pending)
            if len(messages) < 10:
                break
            wait = 0  # drain what is there without waiting again
        self.remembered.update(self._pending.notices)
        self._pending.notices = {}
        self.remembered = {i: n for i, n in self.remembered.items() if i in hosts}
        return list(self.remembered.values())

    async def handled(self) -> None:
        """Delete the messages acted on; let the others' go (visible again at once).
        One call per message: the IAM actions are exactly these operations' names."""
        url = await self.url()
        done, foreign = self._pending.handled, self._pending.foreign
        self._pending = Received()
        for handle in done:
            await self.call("DeleteMessage", QueueUrl=url, ReceiptHandle=handle)
        for handle in foreign:
            await self.call("ChangeMessageVisibility", QueueUrl=url, ReceiptHandle=handle,
                            VisibilityTimeout=0)
