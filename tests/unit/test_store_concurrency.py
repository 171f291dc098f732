"""Tests that threads and a killed process cannot lose or damage committed rows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from agent.store import IntegrationSettings, NewHistory, Store

REPO = Path(__file__).resolve().parents[2]
THREADS = 8
WRITES_PER_THREAD = 40


def test_concurrent_writers_from_threads_lose_nothing(tmp_path):
    """Eight threads enqueueing and recording at once keep every row."""
    store = Store.open_in(tmp_path)
    integration = store.create_integration(
        IntegrationSettings(source="kbh", kbh_email="msp@example.test")
    )
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        """Write a batch of outbox rows and history entries."""
        try:
            start.wait()
            for index in range(WRITES_PER_THREAD):
                key = f"t{number}-{index}"
                store.enqueue(key, integration_id=integration.id, kind="k", payload={})
                store.mark_sent(
                    key,
                    index,
                    history=NewHistory(
                        integration_id=integration.id, target=key, action="create"
                    ),
                )
        except BaseException as err:  # handed to the test thread below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    total = THREADS * WRITES_PER_THREAD
    assert store.outbox_counts() == {"sent": total}
    assert len(store.list_history(limit=total + 10)) == total
    store.close()


_WRITER = textwrap.dedent(
    """
    import sys
    from agent.store import IntegrationSettings, NewHistory, Store

    store = Store.open(sys.argv[1])
    integration = store.create_integration(
        IntegrationSettings(source="kbh", kbh_email="msp@example.test")
    )
    print("ready", integration.id, flush=True)
    index = 0
    while True:
        key = f"key-{index}"
        store.enqueue(
            key, integration_id=integration.id, kind="k", payload={"i": index}
        )
        store.mark_sent(
            key,
            index,
            history=NewHistory(
                integration_id=integration.id,
                target=key,
                action="create",
                after={"pad": "x" * 2000},
            ),
        )
        print(key, flush=True)
        index += 1
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX only")
def test_a_killed_writer_leaves_a_sound_file_with_every_commit(tmp_path):
    """SIGKILL in the middle of a write loop: the file opens, passes the integrity
    check, and holds every row the writer reported committed."""
    path = tmp_path / "agent.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    committed: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("ready")
            deadline = time.monotonic() + 20
            while len(committed) < 150 and time.monotonic() < deadline:
                line = process.stdout.readline().strip()
                if not line:
                    break
                committed.append(line)
            # Kill while the loop is still writing (the process is never idle).
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            committed.extend(line.strip() for line in process.stdout if line.strip())
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    assert process.returncode == -signal.SIGKILL
    assert len(committed) >= 150

    with Store.open(path) as store:
        assert store.check_integrity() == []
        for key in committed:
            item = store.get_outbox_item(key)
            assert item is not None and item.state == "sent", key
        history_targets = {e.target for e in store.list_history(limit=100_000)}
        assert set(committed) <= history_targets
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
