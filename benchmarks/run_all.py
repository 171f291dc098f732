"""Every benchmark from one command, then a table of each figure against its target.

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--strict] [--only NAME ...]

Each script runs in its own process, one after the other (so that none disturbs
another's timings), with ``--quick`` passed on for small sizes. The memory figures
come from the sync-scale run (``memory.py`` runs the same scenario alone). Exit
code: 1 when a script fails or prints no figure; with ``--strict``, also when a
figure misses its target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import MARK, ROOT, quiet_environment  # noqa: E402

HERE = Path(__file__).resolve().parent
#: (script, the benchmarks whose figures it prints), in the order they run.
SCRIPTS = [
    ("agent_start.py", ["start"]),
    ("config_reload.py", ["config reload"]),
    ("idle_cpu.py", ["idle"]),
    ("page_render.py", ["page"]),
    ("sandbox_start.py", ["sandbox start"]),
    ("sync_scale.py", ["sync scale", "memory"]),
]
SCRIPT_TIMEOUT = 1800.0


def run_script(script: str, quick: bool) -> tuple[int, list[dict], float]:
    """Run one script, echoing its output; (exit code, its figures, seconds)."""
    command = [sys.executable, str(HERE / script)] + (["--quick"] if quick else [])
    print(f"=== {script}", flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=quiet_environment(),
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        print(f"{script} did not finish within {SCRIPT_TIMEOUT:.0f} s")
        return -1, [], time.perf_counter() - started
    seconds = time.perf_counter() - started
    figures = []
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            figures.append(json.loads(line[len(MARK) :]))
        else:
            print(line)
    if done.returncode not in (0, 1) or not figures:
        print(done.stderr[-4000:])
    print(f"--- {script}: {seconds:.1f} s", flush=True)
    return done.returncode, figures, seconds


def table(rows: list[dict]) -> str:
    """The summary: benchmark, figure, value, target, pass or MISS."""
    lines = [
        f"{'benchmark':<14} {'figure':<40} {'value':>12}  {'target':<14} result",
        "-" * 92,
    ]
    for row in rows:
        value = f"{row['value']:.3f} {row['unit']}"
        result = "pass" if row["ok"] else "MISS"
        lines.append(
            f"{row['benchmark']:<14} {row['name']:<40} {value:>12}  "
            f"{row['target']:<14} {result}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scripts and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--strict", action="store_true", help="fail on a miss")
    parser.add_argument(
        "--only", nargs="+", default=None, help="script names, such as idle_cpu.py"
    )
    args = parser.parse_args(argv)

    rows: list[dict] = []
    broken = []
    for script, benchmarks in SCRIPTS:
        if args.only and script not in args.only:
            continue
        code, figures, _ = run_script(script, args.quick)
        shown = {f["benchmark"] for f in figures}
        if code not in (0, 1) or any(name not in shown for name in benchmarks):
            broken.append(script)
        rows += figures

    print()
    print(f"Summary ({'quick sizes' if args.quick else 'full sizes'})")
    print(table(rows))
    if broken:
        print(f"Failed or printed no figure: {', '.join(broken)}")
        return 1
    if args.strict and not all(row["ok"] for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
