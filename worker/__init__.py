"""The worker process: Temporal workers, telemetry, memory settings.

httpx imports its command-line client (click, rich, pygments: about 3.5 MB of resident
memory) whenever those happen to be installed, as they are here for the project's CLI.
The worker never runs httpx's CLI: marking that module absent makes httpx skip it.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
