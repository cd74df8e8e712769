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

from workflows.retry_policies import UNTIL_DONE_RETRY

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


class BadPayload(ValueError):
    """A signal payload that is not nothing, a string or ``{"note": "..."}``."""


#: Longest note kept (a note is for people, not a place to store documents).
MAX_NOTE = 2000


def _note(payload: Any) -> str | None:
    """The note of a signal: nothing, a string, or ``{"note": "..."}``.

    Raises:
        BadPayload: for anything else (numbers, lists, other keys, huge notes).
    """
    if payload is None:
        return None
    if isinstance(payload, dict):
        if set(payload) - {"note"}:
            raise BadPayload(f'unexpected keys {sorted(payload)}; send {{"note": "..."}}')
        payload = payload.get("note")
        if payload is None:
            return None
    if not isinstance(payload, str):
        raise BadPayload(f"a note must be a string, got {type(payload).__name__}")
    if len(payload) > MAX_NOTE:
        raise BadPayload(f"note longer than {MAX_NOTE} characters")
    return payload.strip() or None


@workflow.defn
class QuarantineWorkflow:
    """Holds one failed job until it is requeued successfully or resolved."""

    @workflow.init
    def __init__(self, inp: QuarantineInput) -> None:
        # The state exists before any signal handler can run.
        self._state: QuarantineState = QuarantineState(
            workflow_id=workflow.info().workflow_id,
            source=inp.source,
            country=inp.task.country,
            job_key=inp.task.job_key,
            status="open",
            failure=inp.failure,
        )
        self._requeues_wanted = 0
        self._resolve_note: str | None = None
        self._resolved = False

    @workflow.run
    async def run(self, inp: QuarantineInput) -> QuarantineState:
        """Wait for signals; requeue or close."""
        info = workflow.info()
        state = self._state
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
        """Run the scrape again (an optional note is only logged).

        A malformed payload is ignored, and the refusal is kept in the history.
        """
        if self._state.status in ("recovered", "resolved"):
            return
        try:
            note = _note(payload)
        except BadPayload as exc:
            self._log(f"ignored requeue: {exc}")
            workflow.logger.warning("ignored requeue signal: %s", exc)
            return
        self._log(f"requeue requested{': ' + note if note else ''}")
        self._requeues_wanted += 1

    @workflow.signal
    def resolve(self, payload: Any = None) -> None:
        """Close the quarantine without running anything (a person fixed it or gave up).

        A malformed payload is ignored, and the refusal is kept in the history.
        """
        try:
            note = _note(payload)
        except BadPayload as exc:
            self._log(f"ignored resolve: {exc}")
            workflow.logger.warning("ignored resolve signal: %s", exc)
            return
        self._resolve_note = note
        self._resolved = True

    @workflow.query
    def state(self) -> dict[str, Any]:
        """The current state, as mirrored in ``dead_letter_jobs``."""
        return asdict(self._state)

    def _log(self, line: str) -> None:
        self._state.history.append(f"{workflow.now().isoformat()} {line}")

    async def _mirror(self) -> None:
        await workflow.execute_activity_method(
            QuarantineActivities.mirror_quarantine,
            self._state,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=UNTIL_DONE_RETRY,
        )
