"""AWS interruption notices the Karpenter way: EventBridge rules (the ones the Terraform
example creates) route EC2's events to an SQS queue; the driver long-polls it, keeps
what concerns its instances, and deletes the messages once acted upon. Against moto
(events + sqs + ec2) over real HTTP, with the documented event shapes
(cloud-specs/metadata/aws)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from czarina_fleet.clock import FakeClock
from czarina_fleet.providers.aws_queue import SPOT_WARNING_LEAD_S, parse_event
from tests.test_aws_provider import (
    Injector,
    driver,
    fleet_name,
    image,
    make_pool,
    request,
    session,
)

__all__ = ["image", "session"]  # fixtures used here, defined there
TERRAFORM = Path(__file__).resolve().parents[1] / "terraform-examples" / "aws" / "main.tf"


def documented(detail_type: str, detail: dict[str, Any], source: str = "aws.ec2",
               time: str = "2026-11-27T10:00:00Z") -> dict[str, Any]:
    """An event as EventBridge delivers it (the docs' example, our values)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
            "source": source, "account": "123456789012", "time": time,
            "region": "us-east-1", "resources": [], "detail": detail}


def test_the_documented_shapes_parse() -> None:
    warning = {"instance-id": "i-1", "instance-action": "terminate"}
    warn = parse_event(json.dumps(documented("EC2 Spot Instance Interruption Warning", warning)))
    assert warn is not None and warn.notice == "interruption" and warn.instance_ids == ["i-1"]
    assert warn.deadline == warn.at + SPOT_WARNING_LEAD_S
    rebalance = parse_event(json.dumps(documented("EC2 Instance Rebalance Recommendation",
                                                  {"instance-id": "i-1"})))
    assert rebalance is not None and rebalance.notice == "rebalance" and rebalance.deadline is None
    gone = parse_event(json.dumps(documented("EC2 Instance State-change Notification",
                                             {"instance-id": "i-1", "state": "terminated"})))
    assert gone is not None and gone.notice == "gone"
    running = documented("EC2 Instance State-change Notification",
                         {"instance-id": "i-1", "state": "running"})
    assert parse_event(json.dumps(running)) is None
    health = parse_event(json.dumps(documented("AWS Health Event", {
        "service": "EC2", "eventTypeCategory": "scheduledChange",
        "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        "startTime": "Sat, 28 Nov 2026 18:00:00 GMT",
        "affectedEntities": [{"entityValue": "i-1"}, {"entityValue": "i-2"}]},
        source="aws.health")))
    assert health is not None and health.instance_ids == ["i-1", "i-2"]
    assert health.deadline is not None and health.deadline > health.at
    assert parse_event("not json") is None


def terraform_patterns() -> list[dict[str, Any]]:
    """The event patterns the Terraform example's rules use (jsonencode({...}) blocks)."""
    text = TERRAFORM.read_text()
    found = []
    for block in re.findall(r"event_pattern = jsonencode\((\{.*?\})\)", text, re.S):
        hcl = re.sub(r"(\w[\w-]*)\s*=", r'"\1":', block)  # HCL object -> JSON
        found.append(json.loads(re.sub(r",(\s*[}\]])", r"\1", hcl)))
    return found


@pytest.fixture
def queue(moto_url: str, session: boto3.Session) -> tuple[str, Any, Any]:
    """A queue with the Terraform example's rules routing to it."""
    sqs = session.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    events = session.client("events", endpoint_url=moto_url, region_name="us-east-1")
    name = f"czq-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    patterns = terraform_patterns()
    assert len(patterns) == 4
    for n, pattern in enumerate(patterns):
        rule = f"{name}-{n}"
        events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
    return name, sqs, events


def emit(events: Any, detail_type: str, detail: dict[str, Any], source: str = "aws.ec2") -> None:
    reply = events.put_events(Entries=[{"Source": source, "DetailType": detail_type,
                                        "Detail": json.dumps(detail), "Resources": []}])
    assert reply["FailedEntryCount"] == 0


def left_in(sqs: Any, name: str) -> list[str]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"])["detail"].get("instance-id", "") for m in got.get("Messages", [])]


def test_notices_from_the_queue_then_deleted_once_acted_upon(
        moto_url: str, session: boto3.Session, image: str, queue: tuple[str, Any, Any]) -> None:
    name, sqs, events = queue
    fleet = fleet_name()
    inj = Injector()
    pool = make_pool(image, options={"interruption_queue": name,
                                     "interruption_queue_wait_s": 0})
    aws = driver(moto_url, session, pool, fleet, inj, FakeClock(start=_now()))

    async def scenario() -> None:
        a = await aws.launch(request("h1", fleet))
        b = await aws.launch(request("h2", fleet))
        emit(events, "EC2 Spot Instance Interruption Warning",
             {"instance-id": a.instance_id, "instance-action": "terminate"})
        emit(events, "EC2 Instance Rebalance Recommendation", {"instance-id": b.instance_id})
        emit(events, "EC2 Spot Instance Interruption Warning",
             {"instance-id": "i-0stranger000000", "instance-action": "terminate"})
        emit(events, "EC2 Instance State-change Notification",
             {"instance-id": b.instance_id, "state": "running"})  # not a notice
        notices = {n.host_id: n for n in await aws.interruption_notices()
                   if n.reason.startswith("AWS")}
        assert set(notices) == {"h1", "h2"}
        assert notices["h1"].kind == "interruption" and notices["h1"].deadline is not None
        assert abs(notices["h1"].deadline - (_now() + SPOT_WARNING_LEAD_S)) < 60
        assert notices["h2"].kind == "rebalance"
        await aws.notices_handled()
        # ours (and the event of no interest) are deleted; the stranger's is let go for
        # the pool it belongs to
        assert left_in(sqs, name) == ["i-0stranger000000"]
        # a message is read once: the notice is remembered while the instance exists
        again = {n.host_id for n in await aws.interruption_notices()
                 if n.reason.startswith("AWS")}
        assert again == {"h1", "h2"}
        emit(events, "EC2 Instance State-change Notification",
             {"instance-id": a.instance_id, "state": "terminated"})
        gone = [n for n in await aws.interruption_notices()
                if n.host_id == "h1" and n.reason.startswith("AWS instance state")]
        assert gone and gone[0].deadline is None and gone[0].taken_at is not None
        await aws.notices_handled()
        for inst in (a, b):
            await aws.terminate(inst.instance_id)
        await aws.close()

    asyncio.run(scenario())
    sqs_ops = {op for op in inj.recorder.operations if op.startswith("sqs:")}
    assert sqs_ops == {"sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                       "sqs:ChangeMessageVisibility"}


def test_a_queue_that_cannot_be_read_does_not_blind_the_pool(
        moto_url: str, session: boto3.Session, image: str) -> None:
    fleet = fleet_name()
    pool = make_pool(image, options={"interruption_queue": "no-such-queue",
                                     "interruption_queue_wait_s": 0})
    aws = driver(moto_url, session, pool, fleet)

    async def scenario() -> None:
        inst = await aws.launch(request("h1", fleet))
        assert [n for n in await aws.interruption_notices()
                if n.reason.startswith("AWS")] == []
        await aws.terminate(inst.instance_id)
        await aws.close()

    asyncio.run(scenario())


def _now() -> float:
    import time
    return time.time()
