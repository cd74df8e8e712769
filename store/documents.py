"""Raw documents (gzip) and the conditional-request validators of each source URL.

Raw documents are keyed by their SHA-256, so storing one again is a no-op.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class DocumentState:
    """Validators of the last good response for a URL."""

    etag: str | None
    last_modified: str | None
    body_sha256: str


class DocumentStore:
    """Raw document bytes and conditional-request state per source URL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, source: str, url: str) -> DocumentState | None:
        """Validators stored for ``url``, if any."""
        row = await self._pool.fetchrow(
            "SELECT etag, last_modified, body_sha256 FROM source_documents"
            " WHERE source = $1 AND url = $2",
            source,
            url,
        )
        if row is None:
            return None
        return DocumentState(row["etag"], row["last_modified"], row["body_sha256"])

    async def put(
        self,
        source: str,
        url: str,
        state: DocumentState,
        *,
        fetched_at: datetime,
    ) -> None:
        """Remember validators of a response whose content was stored."""
        await self._pool.execute(
            """
            INSERT INTO source_documents (source, url, etag, last_modified, body_sha256, fetched_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (source, url) DO UPDATE SET
                etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified,
                body_sha256 = EXCLUDED.body_sha256, fetched_at = EXCLUDED.fetched_at
            """,
            source,
            url,
            state.etag,
            state.last_modified,
            state.body_sha256,
            fetched_at,
        )

    async def save_raw(self, source: str, url: str, body: bytes, *, fetched_at: datetime) -> str:
        """Keep ``body`` (gzip) once per distinct content; return its SHA-256."""
        sha = hashlib.sha256(body).hexdigest()
        await self._pool.execute(
            """
            INSERT INTO documents (sha256, source, url, size_bytes, body_gzip, fetched_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (sha256) DO NOTHING
            """,
            sha,
            source,
            url,
            len(body),
            gzip.compress(body, compresslevel=6),
            fetched_at,
        )
        return sha

    async def raw(self, sha256: str) -> bytes | None:
        """The body :meth:`save_raw` kept as ``sha256``, if it is still kept."""
        body_gzip = await self._pool.fetchval(
            "SELECT body_gzip FROM documents WHERE sha256 = $1", sha256
        )
        return None if body_gzip is None else gunzip(body_gzip)

    async def touch_source(self, source: str, *, checked_at: datetime) -> int:
        """Mark every current advisory of ``source`` as checked (after a 304)."""
        result = await self._pool.execute(
            "UPDATE advisories SET last_checked_at = $2 WHERE source = $1", source, checked_at
        )
        return int(result.split()[-1])


def gunzip(body_gzip: bytes) -> bytes:
    """Inverse of what :meth:`DocumentStore.save_raw` stores."""
    return gzip.decompress(body_gzip)
