"""Where the real captured fixtures live, for any test that reads them.

They are shared between checkouts (``/work/shared/fixtures/real`` beside the
repository at ``/work/main``), not part of the repository; set
``REAL_FIXTURES_DIR`` to read them from somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from advisories.sources import SOURCES

# tests/fixtures_path.py → parents[1] is the repository, parents[2] its parent.
_DEFAULT: Final = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"

#: Root of the real captures (``us_state_dept/``, ``uk_fcdo/``, ``canada/``).
REAL_FIXTURES: Final[Path] = Path(os.environ.get("REAL_FIXTURES_DIR") or _DEFAULT)


def shared_fixtures(source: str) -> Path:
    """The folder of ``source``'s real captures under :data:`REAL_FIXTURES`.

    The shared folders predate the source ids and some keep older names
    (``canada/`` for ``canada_travel``, ``uk_fcdo/`` for ``uk_foreign_office``);
    each source's ``fixtures`` names its folder, and tests find it here.
    """
    return REAL_FIXTURES / SOURCES[source].fixtures
