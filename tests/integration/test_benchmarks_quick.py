"""The benchmarks run from one command: ``run_all.py --quick`` ends well and prints a
figure for every benchmark (timings are the benchmarks' business, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = {
    "start",
    "config reload",
    "idle",
    "page",
    "sandbox start",
    "sync scale",
    "memory",
}

pytestmark = pytest.mark.slow


def test_run_all_quick_prints_a_figure_for_every_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Summary (quick sizes)" in done.stdout
    summary = done.stdout.split("Summary (quick sizes)", 1)[1]
    for name in BENCHMARKS:
        assert any(line.startswith(name + " ") for line in summary.splitlines()), (
            f"no figure for {name}:\n{summary}"
        )
