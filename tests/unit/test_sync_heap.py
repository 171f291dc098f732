"""The heap set-up of agent.sync.limits takes effect before the agent's threads."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

#: Runs in a child process: import the module, then let eight threads allocate from
#: the C heap at once, and count glibc's thread heaps (64 MiB reservations each).
CHILD = textwrap.dedent(
    """
    import re
    import threading

    import agent.sync.limits  # noqa: F401

    barrier = threading.Barrier(8)
    kept = []

    def allocate():
        kept.append(bytearray(50_000))
        barrier.wait()

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    heaps = 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(n, 16) for n in line.split()[0].split("-"))
            reserved = line.split()[1] == "---p" and end - start > 1 << 20
            if reserved and end % (64 << 20) == 0:
                heaps += 1
    print(heaps)
    """
)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the heap set-up is for glibc only",
)
def test_importing_the_limits_caps_the_heaps_that_threads_make() -> None:
    """glibc fixes its cap on heaps when a second thread first allocates: the cap
    must be set on import, or threads started before the scheduler (the config
    watcher, the web server) each get a heap of their own."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert int(done.stdout.strip()) <= 1, done.stdout
