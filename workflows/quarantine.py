"""QuarantineWorkflow: the dead-letter queue, one workflow per finally failed job.

It holds the failure, answers the ``state`` query and waits for the signals
``requeue`` (run the scrape again: success closes it, failure keeps it
quarantined with the count raised) and ``resolve`` (a person closes it, with a
note). Both work from the plain CLI::

    temporal workflow signal --workflow-id quarantine-... --name requeue
    temporal workflow signal --workflow-id quarantine-... --name resolve --input '"fixed parser"'

Its state is mirrored in PostgreSQL (``dead_letter_jobs``) at every change.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.quarantine import QuarantineActivities
    from activities.types import QuarantineInput, QuarantineState, ScrapeSourceInput
    from advisories import search_attributes as sa
    from advisories.sources import get_source
    from workflows.common import failure_from_error, scrape_one_country

SOURCE_KEY = SearchAttributeKey.for_keyword(sa.SOURCE)
COUNTRY_KEY = SearchAttributeKey.for_keyword(sa.COUNTRY)
FAILURE_KIND_KEY = SearchAttributeKey.for_keyword(sa.FAILURE_KIND)
#: The country of a quarantined index (the whole source cycle failed).
INDEX_COUNTRY = "*"


def quarantine_search_attributes(source: str, country: str, kind: str) -> TypedSearchAttributes:
    """Search attributes a quarantine is listed by."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SOURCE_KEY, source),
            SearchAttributePair(COUNTRY_KEY, country),
            SearchAttributePair(FAILURE_KIND_KEY, kind),
        ]
    )


def _note(payload: Any) -> str | None:
    """A note from whatever a person sent: nothing, a string or ``{"note": ...}``."""
    if payload is None:
        return None
    if isinstance(payload, dict):
        value = payload.get("note")
        return None if value is None else str(value)
    return str(payload)


@workflow.defn
class QuarantineWorkflow:
    """Holds one failed job until it is requeued successfully or resolved."""

    def __init__(self) -> None:
        self._state: QuarantineState | None = None
        self._requeues_wanted = 0
        self._resolve_note: str | None = None
        self._resolved = False

    @workflow.run
    async def run(self, inp: QuarantineInput) -> QuarantineState:
        """Wait for signals; requeue or close."""
        info = workflow.info()
        state = QuarantineState(
            workflow_id=info.workflow_id,
            source=inp.source,
            country=inp.task.country,
            job_key=inp.task.job_key,
            status="open",
            failure=inp.failure,
        )
        self._state = state
        self._log(f"quarantined: {inp.failure.kind}: {inp.failure.message}")
        await self._mirror()
        spec = get_source(inp.source)
        while True:
            await workflow.wait_condition(lambda: self._requeues_wanted > 0 or self._resolved)
            if self._resolved:
                state.status = "resolved"
                state.note = self._resolve_note
                self._log(f"resolved: {self._resolve_note or '(no note)'}")
                await self._mirror()
                return state
            self._requeues_wanted = 0
            state.requeue_count += 1
            state.status = "requeued"
            self._log(f"requeue #{state.requeue_count}")
            await self._mirror()
            try:
                if inp.task.country == INDEX_COUNTRY:
                    await workflow.execute_child_workflow(
                        "ScrapeSourceWorkflow",
                        ScrapeSourceInput(source=spec.id, retry=inp.retry),
                        id=f"{info.workflow_id}-requeue-{state.requeue_count}",
                        task_queue=spec.priority.task_queue,
                    )
                else:
                    await scrape_one_country(spec, inp.task, inp.retry, attempts_before=0)
            except (ActivityError, ChildWorkflowError) as err:
                now = workflow.now().isoformat()
                failure = failure_from_error(err, attempts=inp.retry.maximum_attempts, now=now)
                state.failure = replace(
                    failure,
                    first_failure_at=state.failure.first_failure_at,
                    attempts=state.failure.attempts + failure.attempts,
                )
                state.status = "open"
                self._log(f"requeue failed: {failure.kind}: {failure.message}")
                workflow.upsert_search_attributes([FAILURE_KIND_KEY.value_set(failure.kind)])
                await self._mirror()
                continue
            state.status = "recovered"
            self._log("requeue succeeded")
            await self._mirror()
            return state

    @workflow.signal
    def requeue(self, payload: Any = None) -> None:
        """Run the scrape again (an optional note is only logged)."""
        if self._state is None or self._state.status in ("recovered", "resolved"):
            return
        note = _note(payload)
        self._log(f"requeue requested{': ' + note if note else ''}")
        self._requeues_wanted += 1

    @workflow.signal
    def resolve(self, payload: Any = None) -> None:
        """Close the quarantine without running anything (a person fixed it or gave up)."""
        self._resolve_note = _note(payload)
        self._resolved = True

    @workflow.query
    def state(self) -> dict[str, Any]:
        """The current state, as mirrored in ``dead_letter_jobs``."""
        return {} if self._state is None else asdict(self._state)

    def _log(self, line: str) -> None:
        assert self._state is not None
        self._state.history.append(f"{workflow.now().isoformat()} {line}")

    async def _mirror(self) -> None:
        assert self._state is not None
        await workflow.execute_activity_method(
            QuarantineActivities.mirror_quarantine,
            self._state,
            start_to_close_timeout=timedelta(seconds=30),
        )
