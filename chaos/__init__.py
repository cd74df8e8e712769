"""``python -m chaos``: break the running system on purpose and prove nothing is lost.

During a full crawl (rate limits off, everything on loopback, every component its own process)
the harness, in sequence, kills a worker with SIGKILL, restarts the Temporal dev server, stops
PostgreSQL for a while, and makes the replay server fail a share of requests; then it heals,
runs ``python -m starter process-dlq`` and fresh cycles until the system is quiescent, and
checks the store against the catalogue: nothing lost, no duplicate version, no job left stuck.

Modules: :mod:`chaos.profile` (full and ``--short`` sizes), :mod:`chaos.stack` (the
processes), :mod:`chaos.catalogue` (the replay catalogue, its waves and the expected state),
:mod:`chaos.temporal` (what the harness asks Temporal), :mod:`chaos.scenario` (the phases),
:mod:`chaos.checks` (the final accounting), :mod:`chaos.report` (table and JSON), and
:mod:`chaos.race` (``python -m chaos.race``: two activities storing one new advisory at once).
"""
