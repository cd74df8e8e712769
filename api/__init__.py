"""The read-only advisory service: ``python -m api`` (see :mod:`api.app` for the endpoints)."""
