-- V004: generated reports, and the indexes that let cleanup delete old rows in
-- small batches without scanning whole tables.

-- Every generated report with its content, so the CLI (and anyone without the
-- worker's file system) can fetch any report; files are written only on demand.
CREATE TABLE reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Idempotency key of the activity that generated it (NULL from the CLI):
    -- a retried activity replaces its own report instead of adding one.
    report_key    text UNIQUE,
    generated_at  timestamptz NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    formats       text[] NOT NULL,
    html          text NOT NULL,
    markdown      text NOT NULL,
    json          jsonb NOT NULL,
    -- Files written for this report (empty when none were asked for).
    paths         text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end > period_start)
);
CREATE INDEX reports_generated_at ON reports (generated_at);

-- Cleanup deletes the oldest requests of every source together; the existing
-- (source, requested_at) index only serves one source at a time.
CREATE INDEX source_requests_requested_at ON source_requests (requested_at);

-- Cleanup clears the reference of old versions to a raw document it deletes,
-- and the foreign key check of that delete looks the referencing versions up.
CREATE INDEX advisory_versions_document_sha256 ON advisory_versions (document_sha256)
    WHERE document_sha256 IS NOT NULL;
