"""``python -m advisories.sources [--markdown]``: the registered sources.

Without options, one source id per line; ``--markdown`` prints README's
source table (README.md holds it between ``sources-table`` markers, and
``tests/unit/test_source_registry.py`` checks that the two agree).
"""

from __future__ import annotations

import argparse
import sys

from advisories.sources import markdown_table, source_ids


def main(argv: list[str] | None = None) -> int:
    """Print the registry; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m advisories.sources", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="README's source table")
    args = parser.parse_args(argv)
    print(markdown_table() if args.markdown else "\n".join(source_ids()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
