"""Per-source parsers: pure functions of (bytes, url, fetched_at) to domain objects."""
