"""How fast the sandbox starts with many tenants, and how much memory it holds.

Run: .venv/bin/python benchmarks/sandbox_start.py [--tenants 1000]
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


def main() -> None:
    """Print the figures beside their targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()

    seconds, resident = measure(args.tenants)
    print(f"sandbox --tenants {args.tenants}")
    print(f"  ready after   {seconds:6.2f} s   (target < {START_TARGET_S:.0f} s)")
    print(f"  resident      {resident:6.1f} MB  (target < {MEMORY_TARGET_MB:.0f} MB)")


if __name__ == "__main__":
    main()
