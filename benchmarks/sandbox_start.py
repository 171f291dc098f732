"""How fast the sandbox starts with many tenants, and how much memory it holds.

Run: .venv/bin/python benchmarks/sandbox_start.py [--quick] [--tenants 1000]
Targets (issue: foundation): start under 10 s, resident memory under 300 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import Figure, report  # noqa: E402

START_TARGET_S = 10.0
MEMORY_TARGET_MB = 300.0


def measure(tenants: int) -> tuple[float, float]:
    """Start ``integration-agent sandbox``; return (seconds to ready, resident MB)."""
    with tempfile.TemporaryDirectory() as folder:
        ready_file = Path(folder) / "sandbox.json"
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "sandbox",
                "--tenants",
                str(tenants),
                "--data-dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not ready_file.exists():
                if process.poll() is not None:
                    raise SystemExit("The sandbox exited before it was ready")
                if time.perf_counter() - started > 60:
                    raise SystemExit("The sandbox was not ready within 60 s")
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            time.sleep(1.0)
            resident = psutil.Process(process.pid).memory_info().rss / 1e6
        finally:
            process.terminate()
            process.wait(20)
    return seconds, resident


def main() -> int:
    """Print the figures beside their targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 tenants")
    parser.add_argument("--tenants", type=int, default=None)
    args = parser.parse_args()
    tenants = args.tenants or (100 if args.quick else 1000)

    seconds, resident = measure(tenants)
    figures = [
        Figure(
            "sandbox start",
            "ready after",
            seconds,
            "s",
            f"< {START_TARGET_S:.0f} s",
            seconds < START_TARGET_S,
        ),
        Figure(
            "sandbox start",
            "resident memory",
            resident,
            "MB",
            f"< {MEMORY_TARGET_MB:.0f} MB",
            resident < MEMORY_TARGET_MB,
        ),
    ]
    return report(f"sandbox --tenants {tenants}", figures)


if __name__ == "__main__":
    raise SystemExit(main())
