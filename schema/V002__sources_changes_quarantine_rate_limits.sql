-- V002: change-driven fetching, raw documents, classified changes, rate limits,
-- the dead-letter mirror.

ALTER TABLE advisories ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;
ALTER TABLE advisory_versions ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;

-- Raw document bytes (gzip), stored once per distinct body and referenced by the
-- versions derived from them, so advisories can be re-derived without refetching.
CREATE TABLE documents (
    sha256        text PRIMARY KEY,
    source        text NOT NULL REFERENCES sources (id),
    url           text NOT NULL,
    size_bytes    integer NOT NULL,
    body_gzip     bytea NOT NULL,
    fetched_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_created_at ON documents (created_at);
ALTER TABLE advisory_versions ADD COLUMN document_sha256 text REFERENCES documents (sha256);

-- What each source's index last said about each country: decides what to fetch.
CREATE TABLE index_entries (
    source          text NOT NULL REFERENCES sources (id),
    country         text NOT NULL,
    country_name    text NOT NULL,
    published_at    timestamptz,
    entry_hash      text NOT NULL,
    document_path   text,
    -- entry_hash of the entry whose document was stored successfully; a
    -- country is fetched while this differs from entry_hash.
    stored_hash     text,
    withdrawn       boolean NOT NULL DEFAULT false,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL,
    PRIMARY KEY (source, country)
);

-- Every stored change, classified.
CREATE TABLE changes (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source               text NOT NULL REFERENCES sources (id),
    country              text NOT NULL,
    kind                 text NOT NULL
                         CHECK (kind IN ('new', 'raised', 'lowered', 'regional', 'text', 'withdrawn')),
    version_id           bigint NOT NULL UNIQUE REFERENCES advisory_versions (id),
    previous_version_id  bigint REFERENCES advisory_versions (id),
    level_before         smallint,
    level_after          smallint NOT NULL,
    regional_before      smallint,
    regional_after       smallint,
    source_updated_at    timestamptz NOT NULL,
    detected_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_detected_at ON changes (detected_at DESC);
CREATE INDEX changes_source_country ON changes (source, country, id DESC);

-- Per-source rate limits: adjustable at run time (the worker reads them per request).
CREATE TABLE rate_limits (
    source                 text PRIMARY KEY REFERENCES sources (id),
    requests_per_hour      integer NOT NULL CHECK (requests_per_hour > 0),
    burst_limit            integer NOT NULL CHECK (burst_limit > 0),
    burst_window_seconds   real NOT NULL CHECK (burst_window_seconds > 0),
    min_delay_seconds      real NOT NULL CHECK (min_delay_seconds >= 0),
    respectful_start_hour  smallint NOT NULL CHECK (respectful_start_hour BETWEEN 0 AND 23),
    respectful_end_hour    smallint NOT NULL CHECK (respectful_end_hour BETWEEN 0 AND 24),
    respectful_factor      real NOT NULL CHECK (respectful_factor > 0 AND respectful_factor <= 1),
    timezone               text NOT NULL,
    enabled                boolean NOT NULL DEFAULT true,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Every request made to a source (index, document, retry): the shared
-- rate-limit state and the utilisation metric.
CREATE TABLE source_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL REFERENCES sources (id),
    requested_at  timestamptz NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('index', 'document', 'robots')),
    url           text NOT NULL,
    status        integer,
    bytes         integer,
    not_modified  boolean NOT NULL DEFAULT false
);
CREATE INDEX source_requests_source_time ON source_requests (source, requested_at DESC);

-- Mirror of each QuarantineWorkflow (the dead-letter queue) for the CLI and metrics.
CREATE TABLE dead_letter_jobs (
    workflow_id        text PRIMARY KEY,
    source             text NOT NULL REFERENCES sources (id),
    country            text NOT NULL,
    job_key            text NOT NULL,
    failure_kind       text NOT NULL
                       CHECK (failure_kind IN ('network', 'http_4xx', 'http_5xx', 'rate_limited',
                                               'parse', 'contract', 'internal')),
    message            text NOT NULL,
    traceback          text,
    attempts           integer NOT NULL,
    http_status        integer,
    first_failure_at   timestamptz NOT NULL,
    last_failure_at    timestamptz NOT NULL,
    requeue_count      integer NOT NULL DEFAULT 0,
    status             text NOT NULL CHECK (status IN ('open', 'requeued', 'recovered', 'resolved')),
    note               text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letter_jobs_status ON dead_letter_jobs (status, source);
