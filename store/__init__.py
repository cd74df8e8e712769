"""PostgreSQL store: the project's SQL, one module per aggregate.

``store.pool`` opens the one pool of a process (``create_pool``); the other modules hold the
store classes of one aggregate each. Activities, the CLI, the API, bench and chaos are thin
callers of these classes; no SQL lives outside this package except migrations (``schema/``)
and the measuring scripts' own read-outs.
"""
