"""The outbox against a hung Tigerpaw: the drain halts at the first timeout, tries no
write twice, and leaves the writes it did not start waiting as they were."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from agent.sync.limits import ApiLimits
from agent.sync.outbox import OutboxWorker
from agent.tigerpaw.client import TigerpawClient
from tests.integration.sync_support import FAST, SyncWorld, tigerpaw_client
from tests.integration.test_outbox_drain import account_numbers, field_write, queue

pytestmark = pytest.mark.usefixtures("no_os_keyring")

PER_API = 4
#: (connect, read) seconds of the test's client: a hung call fails in half a second.
TIMEOUT = (1.0, 0.5)


@pytest.fixture
def client(world: SyncWorld) -> Iterator[TigerpawClient]:
    """A Tigerpaw client with a short timeout and three attempts per safe call."""
    made = tigerpaw_client(world, timeout=TIMEOUT, attempts=3)
    yield made
    made.close()


def test_a_hung_tigerpaw_halts_the_drain_at_its_first_timeout(
    world: SyncWorld, client: TigerpawClient
) -> None:
    """Twelve writes due, Tigerpaw hangs: only the first few are tried, once each."""
    for account in account_numbers(world)[:12]:
        queue(world, field_write(account, f"hung-{account}"))
    worker = OutboxWorker(
        world.store,
        client,
        world.integration_id,
        policy=FAST,
        limits=ApiLimits(PER_API),
    )
    before = Counter(world.state()["calls"])
    world.tigerpaw_faults(hang=True)

    started = time.monotonic()
    result = worker.drain()
    elapsed = time.monotonic() - started

    world.tigerpaw_faults(hang=False)
    made = Counter(world.state()["calls"]) - before
    assert result.halted is not None and "did not answer in time" in result.halted
    assert result.sent == 0 and 0 < result.failed <= PER_API
    # A read is sent again once at most; a write that timed out never.
    assert made.total() <= 2 * result.failed, made
    # Several read timeouts (one retry each) at most, not attempts x writes.
    assert elapsed < 4 * TIMEOUT[1] + 1.0, elapsed
    assert worker.reachability.down
    assert world.store.pending_count(world.integration_id) == 12
