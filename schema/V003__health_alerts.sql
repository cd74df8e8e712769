-- V003: health checks, deduplicated alerts, webhook deliveries (an outbox), the
-- change-notification cursor, worker heartbeats.

-- One row per check per health run, with what was measured and where it turns bad.
CREATE TABLE health_checks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,              -- the HealthWorkflow run, or cli-<id>
    name        text NOT NULL,              -- advisories.health.CheckName
    source      text,                       -- the subject: a source, a queue or a worker
    queue       text,
    worker      text,
    ok          boolean NOT NULL,
    value       double precision,
    threshold   double precision,
    detail      text NOT NULL DEFAULT '',
    checked_at  timestamptz NOT NULL
);
CREATE INDEX health_checks_checked_at ON health_checks (checked_at DESC);
CREATE INDEX health_checks_run_id ON health_checks (run_id);
CREATE INDEX health_checks_failing ON health_checks (name, checked_at DESC) WHERE NOT ok;

-- The alert state of each check and subject: fire once, remind after a cool-down, resolve.
CREATE TABLE alerts (
    dedup_key      text PRIMARY KEY,        -- <check>[:<subject>], e.g. queue_workers:monitoring
    check_name     text NOT NULL,
    state          text NOT NULL CHECK (state IN ('firing', 'resolved')),
    first_seen_at  timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    last_sent_at   timestamptz,
    resolved_at    timestamptz,
    notifications  integer NOT NULL DEFAULT 0,
    payload        jsonb NOT NULL           -- the latest check result
);
CREATE INDEX alerts_firing ON alerts (check_name) WHERE state = 'firing';

-- Every notification for every webhook target: queued in the transaction that decided
-- it, then delivered (retried with backoff until delivered or failed).
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id      text NOT NULL,         -- X-Webhook-Id, the same on every attempt
    target           text NOT NULL,         -- scheme://host:port only: paths may hold tokens
    target_key       text NOT NULL,         -- hash of the full URL, to match the configuration
    event            text NOT NULL CHECK (event IN ('firing', 'reminder', 'resolved', 'change')),
    dedup_key        text NOT NULL,         -- the alert key, or change:<changes.id>
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'abandoned')),
    status_code      integer,               -- of the last attempt
    attempts         integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    sent_at          timestamptz,           -- when a receiver answered 2xx
    error            text,
    UNIQUE (target_key, delivery_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_created_at ON webhook_deliveries (created_at);

-- How far notifications have read a table (name 'changes': the last changes.id notified).
CREATE TABLE notification_cursors (
    name        text PRIMARY KEY,
    last_id     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Each worker process records its memory and queues every 30 s; identity = its pollers'.
CREATE TABLE worker_heartbeats (
    identity     text PRIMARY KEY,          -- pid@host
    host         text NOT NULL,
    pid          integer NOT NULL,
    queues       text[] NOT NULL,
    rss_mb       real NOT NULL,
    peak_rss_mb  real NOT NULL,
    started_at   timestamptz NOT NULL,
    seen_at      timestamptz NOT NULL,
    stopped_at   timestamptz                -- set by a clean shutdown
);
CREATE INDEX worker_heartbeats_seen_at ON worker_heartbeats (seen_at DESC);
