"""What the harness asks the Temporal server: robust to the server being restarted under it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from temporalio.api.enums.v1 import DescribeTaskQueueMode, PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue, TaskQueueVersionSelection
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError

T = TypeVar("T")


class TemporalUnavailable(RuntimeError):
    """The server did not answer within the time allowed."""


async def patiently(
    what: str, call: Callable[[], Awaitable[T]], *, within: float = 60.0, pause: float = 0.5
) -> T:
    """``call()``, retried on RPC / connection errors for up to ``within`` seconds."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            return await asyncio.wait_for(call(), timeout=max(1.0, min(15.0, within)))
        except (RPCError, RuntimeError, TimeoutError, ConnectionError) as exc:
            last = exc
            await asyncio.sleep(pause)
    raise TemporalUnavailable(f"{what}: no answer within {within:.0f} s ({last})")


async def describe(
    client: Client, workflow_id: str, run_id: str | None = None, *, within: float = 30.0
) -> WorkflowExecutionDescription:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return await patiently(f"describe {workflow_id}", handle.describe, within=within)


def is_running(description: WorkflowExecutionDescription) -> bool:
    return description.status == WorkflowExecutionStatus.RUNNING


@dataclass(frozen=True, slots=True)
class RunningActivity:
    """An activity attempt the server believes is running on a worker."""

    workflow_id: str
    activity_id: str
    activity_type: str
    attempt: int
    identity: str
    last_heartbeat: datetime | None
    heartbeat_timeout_seconds: float | None


def running_activities(description: WorkflowExecutionDescription) -> list[RunningActivity]:
    """Pending activities of a workflow in state STARTED (a worker holds them)."""
    out = []
    for pending in description.raw_description.pending_activities:
        if pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
            continue
        heartbeat = (
            pending.last_heartbeat_time.ToDatetime()
            if pending.HasField("last_heartbeat_time")
            else None
        )
        timeout = None
        if pending.HasField("activity_options") and pending.activity_options.HasField(
            "heartbeat_timeout"
        ):
            timeout = pending.activity_options.heartbeat_timeout.ToTimedelta().total_seconds()
        out.append(
            RunningActivity(
                workflow_id=description.id,
                activity_id=pending.activity_id,
                activity_type=pending.activity_type.name,
                attempt=pending.attempt,
                identity=pending.last_worker_identity,
                last_heartbeat=heartbeat,
                heartbeat_timeout_seconds=timeout,
            )
        )
    return out


def pending_attempts(description: WorkflowExecutionDescription) -> dict[str, tuple[int, str]]:
    """activity id → (attempt, state name) of every pending activity."""
    return {
        p.activity_id: (p.attempt, PendingActivityState.Name(p.state))
        for p in description.raw_description.pending_activities
    }


async def pollers(client: Client, queue: str, kind: str) -> dict[str, datetime]:
    """identity → last access time of the pollers of one task queue (``workflow``/``activity``).

    Asks in the enhanced mode, which gathers the pollers of every partition: the plain mode
    lists the root partition's only, where a worker's few pollers may be missing for a whole
    long poll (~60 s) while they wait on other partitions.
    """
    queue_type = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if kind == "workflow"
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    seen: dict[str, datetime] = {}

    def note(identity: str, at: datetime) -> None:
        if identity not in seen or at > seen[identity]:
            seen[identity] = at

    try:
        enhanced = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
                versions=TaskQueueVersionSelection(unversioned=True),
                task_queue_types=[queue_type],
                report_pollers=True,
            )
        )
        for version in enhanced.versions_info.values():
            for info in version.types_info.values():
                for poller in info.pollers:
                    note(poller.identity, poller.last_access_time.ToDatetime())
    except RPCError:  # a server without the enhanced mode: the root partition will do
        plain = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=queue_type,
            )
        )
        for poller in plain.pollers:
            note(poller.identity, poller.last_access_time.ToDatetime())
    return seen


async def list_ids(client: Client, query: str, *, within: float = 30.0) -> list[str]:
    """Workflow ids matching a visibility query."""

    async def go() -> list[str]:
        return [wf.id async for wf in client.list_workflows(query)]

    return await patiently(f"list {query}", go, within=within)


def failure_text(exc: BaseException | None) -> str:
    """A failure and its causes on one line (``A: b <- C: d``)."""
    parts: list[str] = []
    seen = 0
    while exc is not None and seen < 6:
        message = getattr(exc, "message", None) or str(exc)
        parts.append(f"{type(exc).__name__}: {message}")
        exc = getattr(exc, "cause", None) or exc.__cause__
        seen += 1
    return " <- ".join(parts)


def jsonable(value: Any) -> Any:
    """Dataclass results of workflows → plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value
