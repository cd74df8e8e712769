-- V001: the first tables: sources, source_documents (conditional-request state),
-- advisories (current), advisory_versions (history), scrape_jobs.

CREATE TABLE sources (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    priority    text NOT NULL CHECK (priority IN ('high', 'regular')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Validators of the last good response per URL, for conditional requests (ETag / Last-Modified).
CREATE TABLE source_documents (
    source         text NOT NULL REFERENCES sources (id),
    url            text NOT NULL,
    etag           text,
    last_modified  text,
    body_sha256    text NOT NULL,
    fetched_at     timestamptz NOT NULL,
    PRIMARY KEY (source, url)
);

-- Every distinct version of a country's advisory, in the order it was seen.
CREATE TABLE advisory_versions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source             text NOT NULL REFERENCES sources (id),
    country            text NOT NULL,
    country_name       text NOT NULL,
    level              smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    regional_level     smallint CHECK (regional_level BETWEEN 1 AND 4),
    raw_level          text NOT NULL,
    title              text NOT NULL,
    summary            text NOT NULL,
    url                text NOT NULL,
    source_updated_at  timestamptz NOT NULL,
    mapping_version    text NOT NULL,
    content_hash       text NOT NULL,
    fetched_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX advisory_versions_source_country ON advisory_versions (source, country, id DESC);

-- The current advisory per source and country.
CREATE TABLE advisories (
    source             text NOT NULL REFERENCES sources (id),
    country            text NOT NULL,
    country_name       text NOT NULL,
    level              smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    regional_level     smallint CHECK (regional_level BETWEEN 1 AND 4),
    raw_level          text NOT NULL,
    title              text NOT NULL,
    summary            text NOT NULL,
    url                text NOT NULL,
    source_updated_at  timestamptz NOT NULL,
    mapping_version    text NOT NULL,
    content_hash       text NOT NULL,
    version_id         bigint NOT NULL REFERENCES advisory_versions (id),
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    last_checked_at    timestamptz NOT NULL,
    PRIMARY KEY (source, country)
);

-- One row per job: a source cycle, an index fetch, or a country fetch.
CREATE TABLE scrape_jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_key           text NOT NULL UNIQUE,  -- idempotency key: replays update, never duplicate
    source            text NOT NULL REFERENCES sources (id),
    country           text,
    kind              text NOT NULL CHECK (kind IN ('cycle', 'index', 'country')),
    status            text NOT NULL
                      CHECK (status IN ('pending', 'started', 'success', 'failure', 'retry', 'dead_letter')),
    workflow_id       text,
    run_id            text,
    activity_id       text,
    attempt           integer NOT NULL DEFAULT 1,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    duration_ms       integer,
    peak_rss_mb       real,
    http_status       integer,
    requests_made     integer NOT NULL DEFAULT 0,
    items_seen        integer NOT NULL DEFAULT 0,
    versions_created  integer NOT NULL DEFAULT 0,
    error             text,
    traceback         text
);
CREATE INDEX scrape_jobs_started_at ON scrape_jobs (started_at DESC);
CREATE INDEX scrape_jobs_source_status ON scrape_jobs (source, status);
