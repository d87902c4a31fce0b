"""Interruption notices for an AWS pool, from three sources: owned instances whose state
reason is a spot termination, EC2's scheduled events (advance notice of a stop,
termination or retirement), and the EventBridge -> SQS queue when the pool names one
(providers/aws_queue.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from czarina_fleet.providers.aws_instances import SPOT_INTERRUPTION
from czarina_fleet.providers.aws_queue import QueuePoller
from czarina_fleet.providers.base import (
    Instance,
    InstanceState,
    InterruptionNotice,
    InvalidPoolConfig,
    ProviderError,
)

if TYPE_CHECKING:
    from czarina_fleet.providers.aws import AwsProvider

log = logging.getLogger(__name__)


async def interruption_notices(p: AwsProvider) -> list[InterruptionNotice]:
    notices: list[InterruptionNotice] = []
    hosts: dict[str, str] = {}  # every owned instance id (terminated too) -> host id
    for region in p._regions:
        owned = await p._describe(region, [p._owner_filters()])
        hosts.update({i.instance_id: i.host_id for i in owned})
        notices.extend(InterruptionNotice(i.instance_id, i.host_id, SPOT_INTERRUPTION, None)
                       for i in owned if i.interrupted)
        live = {i.instance_id: i for i in owned if i.state is not InstanceState.TERMINATED}
        notices.extend(await _scheduled_events(p, region, live))
    if p._queue is not None:
        try:
            notices.extend(await p._queue.poll(hosts))
        except ProviderError as e:  # the queue's trouble must not blind the pool
            log.warning("pool %s: interruption queue %s: %s", p.pool.name, p._queue.queue, e)
            notices.extend(p._queue.remembered.values())
    return notices


def queue_poller(p: AwsProvider) -> QueuePoller | None:
    """The EventBridge -> SQS interruption queue, if the pool names one; InvalidPoolConfig
    for a long-poll wait outside 0..20 s (SQS's range)."""
    opts = p.pool.options
    queue = opts.get("interruption_queue")
    if not queue:
        return None
    region = str(opts.get("interruption_queue_region") or p._regions[0])
    try:
        wait = float(opts.get("interruption_queue_wait_s", 1))
    except (TypeError, ValueError):
        wait = -1.0
    if not 0 <= wait <= 20:
        raise InvalidPoolConfig(f'pool "{p.pool.name}": options.'
                                "interruption_queue_wait_s must be 0 to 20 seconds")

    async def call(operation: str, **params: Any) -> dict[str, Any]:
        return await p._call(region, operation, service="sqs", **params)
    return QueuePoller(call, str(queue), wait, p.clock)


async def _scheduled_events(
    p: AwsProvider, region: str, mine: dict[str, Instance]
) -> list[InterruptionNotice]:
    """Scheduled stop/terminate/retirement events (EC2's advance notice)."""
    if not mine:
        return []
    reply = await p._call(
        region, "DescribeInstanceStatus", InstanceIds=list(mine), IncludeAllInstances=True)
    notices = []
    for status in reply.get("InstanceStatuses", []):
        inst = mine.get(status["InstanceId"])
        for event in status.get("Events", []):
            if inst is not None and "Completed" not in event.get("Description", ""):
                when = event.get("NotBefore")
                notices.append(InterruptionNotice(
                    inst.instance_id, inst.host_id, event.get("Code", "scheduled-event"),
                    when.timestamp() if when else None))
    return notices
