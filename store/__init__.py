"""PostgreSQL store: the project's SQL, one module per aggregate.

``store.pool`` opens the one pool of a process (``create_pool``); the other modules hold the
store classes of one aggregate each:

* ``store.advisories``: current advisories, their versions and classified changes
  (``AdvisoryStore``, ``StoredChange``, ``StoreResult``).
* ``store.documents``: raw documents and the validators of each URL (``DocumentStore``,
  ``DocumentState``, ``gunzip``).
* ``store.index``: what each source's index last said (``IndexStore``, ``PlannedCountry``).
* ``store.jobs``: the ``scrape_jobs`` rows (``JobStore``, ``JobFinish``, ``JOB_COLUMNS``).
* ``store.dead_letters``: the mirror of the quarantine workflows (``DeadLetterStore``).
* ``store.ratelimits``: the limits in force and every request granted (``RateLimitStore``,
  ``Grant``, ``RequestRecord``, ``UsageRow``).
* ``store.reports``: what a report reads, and the stored reports (``ReportStore``).
* ``store.cleanup``: counting and deleting old operational rows (``CleanupStore``).
* ``store.health``: health metrics, check verdicts, alerts, the webhook outbox and worker
  heartbeats (``MetricsStore``, ``HealthCheckStore``, ``AlertStore``, ``WebhookOutbox``,
  ``WorkerHeartbeatStore``).
* ``store.read``: the advisory service's read-only queries (``ReadStore``, ``Snapshot`` and
  its row types).

Activities, the CLI, the API, bench and chaos are thin callers of these classes; no SQL lives
outside this package except migrations (``schema/``), the dev stack's ``CREATE DATABASE``
and the measuring scripts' own read-outs (``bench/``, ``chaos/``).
"""
