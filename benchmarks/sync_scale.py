"""Sync scale and memory: one service order cycle of the real agent over a big sandbox.

Run: .venv/bin/python benchmarks/sync_scale.py [--quick] [--tenants 1000] [--devices 50]

What happens:

1. ``python -m agent sandbox --tenants N --devices D`` starts as its own process.
2. A KSC integration is stored in a fresh data folder as the page stores it (every
   virtual server mapped to its account and agreement, the test suite's choices:
   critical events and every device problem open service orders), and the real
   agent (``python -m agent --headless``) starts on that folder, with
   ``ServiceOrderSyncMinutes`` at 1440 so that only the cycles we ask for run.
3. Warm-up: the agent's first cycle (no added latency) opens the orders for what
   the seed already holds.
4. Each tenant gets ``--events`` new events (by default 20: 1 critical, 3
   functional failures, 6 warnings, 10 information; only critical ones open
   orders under these choices), KSC gets 20 ms and Tigerpaw 50 ms added to every
   answer (``POST /_sandbox/faults``), the emulators' ``calls`` counters are read,
   and ``ServiceOrderSyncMinutes`` is hand-edited to 1, which makes the next
   service order cycle due at once. Its wall time runs from the first status poll
   that shows it running to the first that shows it finished (polls every 0.25 s).
5. The counters are read again: the difference is the calls the cycle made.

The lower bound of the wall time: the fewest calls the work needs, per API, times
that API's added latency, divided by the concurrency the agent allows per API
(``agent.sync.limits.DEFAULT_PER_API``), summed over the two APIs (the cycle reads
KSC before it writes to Tigerpaw). Processing time is left out, so the bound is
below what any implementation could reach; the target is at most 1.2 times it.
The bound if both APIs were busy at once (the larger of the two terms) is printed
too. The fewest calls:

- KSC, per cycle: a login to the main server, ``VServers.GetVServers`` (a renamed
  virtual server is found by its id) and its logout; per virtual server: a login,
  ``HostGroup.FindHosts``, one ``ChunkAccessor.GetItemsChunk`` per 200 devices,
  ``ChunkAccessor.Release``, an event iterator (``CreateEventProcessing2``,
  ``GetRecordCount``, one ``GetRecordRange`` per 200 new events,
  ``ReleaseIterator``) and a logout.
- Tigerpaw, per cycle: the look-ups of the bootstrap (the two custom field lists,
  reps, statuses, priorities, types, boards, note topics); per service order opened:
  its creation and the key field; per repeat noted: a read of the order (did a
  person close it?) and the note. The orders opened and notes added are counted in
  Tigerpaw's state, before and after.

Memory: the agent's resident memory is sampled every 0.1 s from its start to the
end of the measured cycle (peak, warm-up included), and read once more after the
agent has been idle for ``--idle-seconds`` (idle).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import (  # noqa: E402
    INTEGRATION_NAME,
    Figure,
    SandboxProcess,
    agent_process,
    calls,
    report,
    sandbox_get,
    sandbox_post,
    set_up_ksc_integration,
    wait_until_answering,
    write_config,
)

from agent.sync.bootstrap import FIELD_CATEGORY, KEY_FIELD_LABEL  # noqa: E402
from agent.sync.limits import DEFAULT_PER_API  # noqa: E402

RATIO_TARGET = 1.2
CALLS_TARGET = 1.1
PEAK_TARGET_MB = 150.0
IDLE_TARGET_MB = 80.0
KEY_FIELD = f"{FIELD_CATEGORY}/{KEY_FIELD_LABEL}"
#: New events per tenant and cycle, by severity (20 in all).
EVENT_MIX = {"critical": 1, "functional_failure": 3, "warning": 6, "info": 10}
PAGE = 200
#: Tigerpaw look-ups of every cycle's bootstrap.
BOOTSTRAP_LOOKUPS = 8
CYCLE_TIMEOUT = 1800.0


class MemorySampler:
    """Samples a process's resident memory on a thread; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        """Sample ``pid`` every ``every`` seconds once started."""
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemorySampler:
        """Start sampling."""
        self._thread.start()
        return self

    def _run(self) -> None:
        """Sample until stopped or the process ends."""
        while not self._stop.wait(self.every):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop.set()
        self._thread.join(5)
        return self.peak


def integration_status(agent: Any) -> dict[str, Any]:
    """The scheduler's view of the one integration."""
    return dict(agent.status()["sync"]["integrations"][0])


def wait_for_runs(agent: Any, runs: int, timeout: float) -> None:
    """Poll until the integration has finished ``runs`` cycles."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = integration_status(agent)
        if status["runs"] >= runs and status["state"] != "running":
            return
        time.sleep(0.5)
    raise SystemExit(f"The cycle did not finish within {timeout:.0f} s")


def log_time(output: str, text: str) -> dt.datetime:
    """When the agent logged the first line holding ``text`` (to the millisecond)."""
    for line in output.splitlines():
        if text in line:
            return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    raise SystemExit(f"The agent never logged '{text}'")


def cycle_seconds(output: str) -> float:
    """Seconds from the scheduler's start (its first cycle starts then) to the end
    of that cycle, from the agent's own log."""
    started = log_time(output, "Sync scheduler started")
    ended = log_time(output, f"Sync of {INTEGRATION_NAME}:")
    return (ended - started).total_seconds()


def our_orders(state: dict[str, Any]) -> tuple[int, int]:
    """(orders holding the agent's key, notes on them) in Tigerpaw's state."""
    orders = [o for o in state["service_orders"] if o["custom_fields"].get(KEY_FIELD)]
    return len(orders), sum(len(o["notes"]) for o in orders)


def by_endpoint(counts: Counter[str]) -> Counter[str]:
    """Counters with record numbers in paths folded ("/serviceorders/{n}")."""
    folded: Counter[str] = Counter()
    for name, count in counts.items():
        folded[re.sub(r"/\d+", "/{n}", name)] += count
    return folded


def ksc_fewest(tenants: int, devices: int, events: int) -> int:
    """The fewest KSC calls of a service order cycle (see the module)."""
    per_tenant = 7 + math.ceil(devices / PAGE) + max(1, math.ceil(events / PAGE))
    return 3 + tenants * per_tenant


def post_events(ksc: dict[str, Any], tenants: int) -> int:
    """Raise EVENT_MIX on every virtual server; how many events were raised."""
    raised = 0
    for start in range(1, tenants + 1, 100):
        batch = [
            {"tenant": number, "severity": severity, "count": count}
            for number in range(start, min(start + 100, tenants + 1))
            for severity, count in EVENT_MIX.items()
        ]
        raised += len(sandbox_post(ksc, "events", {"events": batch})["events"])
    return raised


def run(args: argparse.Namespace) -> tuple[list[Figure], list[str]]:
    """Run the scenario; the sync and memory figures, and notes."""
    events = sum(EVENT_MIX.values())
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as temp:
        folder = Path(temp)
        sandbox = SandboxProcess(folder / "sandbox", args.tenants, args.devices)
        description = sandbox.start()
        ksc, tigerpaw = description["ksc"], description["tigerpaw"]
        agent = None
        try:
            set_up_ksc_integration(
                folder / "agent" / "data", description, args.tenants, args.devices
            )
            # The daily billing cycle is kept away: its time was an hour ago.
            earlier = (dt.datetime.now() - dt.timedelta(hours=1)).strftime("%H:%M")
            config = folder / "agent" / "IntegrationUI.exe.config"
            write_config(
                config, ServiceOrderSyncMinutes="1440", LicenseSyncTime=earlier
            )
            agent = agent_process(folder / "agent")
            agent.start(timeout=120)
            assert agent.process is not None
            warm_up = MemorySampler(agent.process.pid).start()
            wait_for_runs(agent, 1, CYCLE_TIMEOUT)
            warm_up_peak = warm_up.stop()
            agent.stop()
            warm_up_seconds = cycle_seconds(agent.output())
            print(f"warm-up cycle (no added latency): {warm_up_seconds:.1f} s")
            sys.stdout.flush()
            agent = None

            raised = post_events(ksc, args.tenants)
            sandbox_post(ksc, "faults", {"latency_ms": args.ksc_latency})
            sandbox_post(tigerpaw, "faults", {"latency_ms": args.tigerpaw_latency})
            ksc_before, tp_before = calls(ksc), calls(tigerpaw)
            orders_before, notes_before = our_orders(sandbox_get(tigerpaw, "state"))

            # A new start runs its first service order cycle at once.
            agent = agent_process(folder / "agent", name="agent-measured")
            agent.launch()
            assert agent.process is not None
            sampler = MemorySampler(agent.process.pid).start()
            wait_until_answering(agent, timeout=120)
            wait_for_runs(agent, 1, CYCLE_TIMEOUT)
            peak = sampler.stop()
            wall = cycle_seconds(agent.output())
            status = integration_status(agent)

            ksc_calls = calls(ksc) - ksc_before
            tp_calls = calls(tigerpaw) - tp_before
            sandbox_post(ksc, "faults", {"latency_ms": 0})
            sandbox_post(tigerpaw, "faults", {"latency_ms": 0})
            orders_after, notes_after = our_orders(sandbox_get(tigerpaw, "state"))

            time.sleep(args.idle_seconds)
            idle = psutil.Process(agent.process.pid).memory_info().rss
        finally:
            if agent is not None and agent.process is not None:
                agent.stop()
            sandbox.stop()

    opened = orders_after - orders_before
    noted = notes_after - notes_before
    ksc_min = ksc_fewest(args.tenants, args.devices, events)
    tp_min = BOOTSTRAP_LOOKUPS + 2 * opened + 2 * noted
    ksc_total, tp_total = sum(ksc_calls.values()), sum(tp_calls.values())
    ksc_bound = ksc_min * args.ksc_latency / 1000 / DEFAULT_PER_API
    tp_bound = tp_min * args.tigerpaw_latency / 1000 / DEFAULT_PER_API
    bound = ksc_bound + tp_bound

    print(
        f"Sync scale: {args.tenants} tenants x {args.devices} devices, {raised} new "
        f"events ({events} per tenant: {EVENT_MIX}), latency KSC "
        f"{args.ksc_latency:.0f} ms, Tigerpaw {args.tigerpaw_latency:.0f} ms, "
        f"{DEFAULT_PER_API} calls at once per API"
    )
    print(
        f"  cycle result: error={status['error']}, pending writes "
        f"{status['pending_writes']}, orders opened {opened}, notes added {noted}"
    )
    for name, counted, fewest in (
        ("KSC", ksc_calls, ksc_min),
        ("Tigerpaw", tp_calls, tp_min),
    ):
        print(f"  {name} calls {sum(counted.values())} (fewest needed {fewest}):")
        for endpoint, count in by_endpoint(counted).most_common():
            print(f"    {count:7d}  {endpoint}")
    print(
        f"  lower bound {bound:.1f} s = KSC {ksc_min} x {args.ksc_latency:.0f} ms / "
        f"{DEFAULT_PER_API} ({ksc_bound:.1f} s) + Tigerpaw {tp_min} x "
        f"{args.tigerpaw_latency:.0f} ms / {DEFAULT_PER_API} ({tp_bound:.1f} s); "
        f"with both APIs busy at once {max(ksc_bound, tp_bound):.1f} s"
    )

    name = "sync scale"
    figures = [
        Figure(
            name,
            "wall time / lower bound",
            wall / bound,
            "x",
            f"<= {RATIO_TARGET}",
            wall / bound <= RATIO_TARGET,
        ),
        Figure(
            name,
            "KSC calls / fewest needed",
            ksc_total / ksc_min,
            "x",
            f"<= {CALLS_TARGET}",
            ksc_total / ksc_min <= CALLS_TARGET,
        ),
        Figure(
            name,
            "Tigerpaw calls / fewest needed",
            tp_total / tp_min,
            "x",
            f"<= {CALLS_TARGET}",
            tp_total / tp_min <= CALLS_TARGET,
        ),
    ]
    figures.insert(
        0,
        Figure(
            name,
            "cycle wall time",
            wall,
            "s",
            f"<= {bound * RATIO_TARGET:.1f} s",
            wall <= bound * RATIO_TARGET,
        ),
    )
    memory = [
        Figure(
            "memory",
            "agent peak resident memory",
            peak / 1e6,
            "MB",
            f"< {PEAK_TARGET_MB:.0f} MB",
            peak / 1e6 < PEAK_TARGET_MB,
        ),
        Figure(
            "memory",
            "agent idle resident memory",
            idle / 1e6,
            "MB",
            f"< {IDLE_TARGET_MB:.0f} MB",
            idle / 1e6 < IDLE_TARGET_MB,
        ),
    ]
    notes = [
        f"warm-up cycle (no added latency) {warm_up_seconds:.1f} s, its peak "
        f"resident memory {warm_up_peak / 1e6:.1f} MB (a first cycle opens the "
        "orders for every problem the seed holds)",
        f"KSC {ksc_total} calls, Tigerpaw {tp_total} calls in the cycle",
        f"idle memory read after {args.idle_seconds:.0f} s without a cycle",
    ]
    return figures + memory, notes


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--quick``: 20 tenants of 10 devices, 3 s idle)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--tenants", type=int, default=None)
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--ksc-latency", type=float, default=20.0, help="ms")
    parser.add_argument("--tigerpaw-latency", type=float, default=50.0, help="ms")
    parser.add_argument("--idle-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    args.tenants = args.tenants or (20 if args.quick else 1000)
    args.devices = args.devices or (10 if args.quick else 50)
    if args.idle_seconds is None:
        args.idle_seconds = 3.0 if args.quick else 30.0
    return args


def main(argv: list[str] | None = None, *, only: str | None = None) -> int:
    """Run and print; ``only`` keeps the figures of one benchmark ("memory")."""
    args = parse(argv)
    figures, notes = run(args)
    if only is not None:
        figures = [f for f in figures if f.benchmark == only]
    title = f"{only or 'sync scale and memory'} ({args.tenants} tenants)"
    return report(title, figures, notes)


if __name__ == "__main__":
    raise SystemExit(main())
