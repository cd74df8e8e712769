"""Activities of the dead-letter queue: the PostgreSQL mirror and requeue candidates."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import asyncpg
from temporalio import activity

from activities.types import DeadLetterQuery, DeadLetterRow, QuarantineState
from store.dead_letters import DeadLetterStore


class QuarantineActivities:
    """Constructed once per worker."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._dead_letters = DeadLetterStore(pool)

    @activity.defn
    async def mirror_quarantine(self, state: QuarantineState) -> None:
        """Write a quarantine's state to ``dead_letter_jobs``."""
        failure = asdict(state.failure)
        await self._dead_letters.upsert(
            {
                "workflow_id": state.workflow_id,
                "source": state.source,
                "country": state.country,
                "job_key": state.job_key,
                "failure_kind": failure["kind"],
                "message": failure["message"],
                "traceback": failure["traceback"],
                "attempts": failure["attempts"],
                "http_status": failure["http_status"],
                "first_failure_at": datetime.fromisoformat(failure["first_failure_at"]),
                "last_failure_at": datetime.fromisoformat(failure["last_failure_at"]),
                "requeue_count": state.requeue_count,
                "status": state.status,
                "note": state.note,
            }
        )

    @activity.defn
    async def recoverable_dead_letters(self, query: DeadLetterQuery) -> list[DeadLetterRow]:
        """Open dead letters of the given kinds whose source looks healthy again."""
        rows = await self._dead_letters.list(status="open", kinds=query.kinds, limit=query.limit)
        healthy: dict[str, bool] = {}
        out: list[DeadLetterRow] = []
        for row in rows:
            source = row["source"]
            if source not in healthy:
                healthy[source] = await self._dead_letters.source_healthy(source)
            if healthy[source]:
                out.append(
                    DeadLetterRow(row["workflow_id"], source, row["country"], row["failure_kind"])
                )
        # Whatever their kind: a later cycle already did their job, the requeue only confirms it.
        chosen = {row.workflow_id for row in out}
        for row in await self._dead_letters.superseded(limit=query.limit):
            if row["workflow_id"] not in chosen and len(out) < query.limit:
                out.append(
                    DeadLetterRow(
                        row["workflow_id"], row["source"], row["country"], row["failure_kind"]
                    )
                )
        return out
