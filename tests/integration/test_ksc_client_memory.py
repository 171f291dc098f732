"""A 50,000-device virtual server is read with memory that does not grow with it.

The sandbox runs in its own process (``python -m agent sandbox``), so tracemalloc in
this process sees only the client's allocations.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.sources.ksc import KscClient

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 50_000
FEW = 5_000
START_TIMEOUT = 60.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The emulators in a subprocess: one virtual server of 50,000 devices."""
    data_dir = tmp_path_factory.mktemp("ksc-memory")
    log = (data_dir / "sandbox.out").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "sandbox", "--tenants", "1"]
        + ["--devices", str(DEVICES), "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        described = data_dir / "sandbox.json"
        deadline = time.monotonic() + START_TIMEOUT
        while not described.exists():
            assert process.poll() is None, (data_dir / "sandbox.out").read_text()
            assert time.monotonic() < deadline, "the sandbox did not start in time"
            time.sleep(0.1)
        yield json.loads(described.read_text())["ksc"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def client(sandbox: dict[str, Any]) -> Iterator[KscClient]:
    """A client pinned to the sandbox's klserver.cer, already logged in."""
    made = KscClient(
        sandbox["url"],
        sandbox["user"],
        sandbox["password"],
        certificate=Path(sandbox["cert"]),
        timeout=(5.0, 30.0),
    )
    assert [t.name for t in made.check()] == sandbox["vserver_names"]
    yield made
    made.close()


def read(client: KscClient, name: str, limit: int) -> tuple[int, int]:
    """Read up to ``limit`` devices in order; (count, peak bytes allocated meanwhile).

    Ids must rise strictly, which shows that none came twice without keeping them.
    """
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        devices = client.devices(name)
        count, last = 0, ""
        for device in itertools.islice(devices, limit):
            assert device.id > last
            last = device.id
            count += 1
        devices.close()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return count, peak


def test_memory_does_not_grow_with_the_device_count(
    client: KscClient, sandbox: dict[str, Any]
) -> None:
    """Peak memory reading 50,000 devices is about that of reading 5,000."""
    name = sandbox["vserver_names"][0]

    few, few_peak = read(client, name, FEW)
    many, many_peak = read(client, name, DEVICES + 1)

    assert (few, many) == (FEW, DEVICES)
    # Holding the devices would take tens of MB; one chunk takes well under one.
    assert many_peak < 4 * 1024 * 1024, many_peak
    assert many_peak < few_peak * 1.5 + 256 * 1024, (few_peak, many_peak)

    state = requests.get(
        f"{sandbox['url']}/_sandbox/state", verify=sandbox["cert"], timeout=10
    ).json()
    assert state["vservers"][0]["hosts"] == DEVICES
    assert state["accessors"] == 0
