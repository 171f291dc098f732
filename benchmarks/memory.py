"""Memory: the agent's peak and idle resident memory in the sync-scale run.

Run: .venv/bin/python benchmarks/memory.py [--quick] [--tenants 1000] [--devices 50]

The same scenario as ``sync_scale.py`` (whose docstring says how it runs), printing
only the memory figures. Targets: peak under 150 MB, idle under 80 MB.
``run_all.py`` takes both from one run of ``sync_scale.py`` instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_scale  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(sync_scale.main(only="memory"))
