"""Pure domain core: sources, advisories, levels, parsers, settings.

Nothing in this package imports Temporal, asyncpg or httpx, so it is tested
without any server.
"""
