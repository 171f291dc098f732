"""The outbox against the Tigerpaw emulator: writes go a few at once, one lane at a
time, while the cycle reads; a first create is sent without a look-up first."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from agent.store import FAILED, SENT
from agent.sync import writes
from agent.sync.bootstrap import FIELD_CATEGORY, KEY_FIELD_LABEL, TENANT_FIELD_LABEL
from agent.sync.limits import ApiLimits
from agent.sync.outbox import OutboxWorker, WriteFeed
from agent.tigerpaw.client import TigerpawClient
from tests.integration.sync_support import FAST, SyncWorld, open_titles, tigerpaw_client

pytestmark = pytest.mark.usefixtures("no_os_keyring")

SEARCH = "POST /api/serviceorders/search"
CREATE = "POST /api/ServiceOrders"
LATENCY = 0.2
PER_API = 4


@pytest.fixture
def client(world: SyncWorld) -> Iterator[TigerpawClient]:
    """A Tigerpaw client on the emulator."""
    made = tigerpaw_client(world)
    yield made
    made.close()


def calls(world: SyncWorld) -> Counter[str]:
    """The Tigerpaw emulator's request counters."""
    return Counter(world.state()["calls"])


def worker(world: SyncWorld, client: TigerpawClient) -> OutboxWorker:
    """An outbox worker of the world's integration, PER_API writes at once."""
    return OutboxWorker(
        world.store,
        client,
        world.integration_id,
        policy=FAST,
        limits=ApiLimits(PER_API),
    )


def field_write(account: int, value: str) -> writes.Write:
    """Set an account's tenant field to ``value`` (one Tigerpaw call or two)."""
    return writes.Write(
        key=f"test-field:{account}:{value}",
        kind=writes.ACCOUNT_FIELD,
        payload={
            "account": account,
            "account_name": f"account {account}",
            "field": [FIELD_CATEGORY, TENANT_FIELD_LABEL],
            "value": value,
        },
    )


def queue(world: SyncWorld, write: writes.Write) -> None:
    """Save a write in the outbox, as a tenant's plan does."""
    world.store.enqueue(
        write.key,
        integration_id=world.integration_id,
        kind=write.kind,
        payload=write.payload,
    )


def tenant_field(client: TigerpawClient, account: int) -> str | None:
    """The account's tenant field in Tigerpaw."""
    return next(
        (
            found.value
            for found in client.account_custom_fields(account)
            if (found.category, found.label) == (FIELD_CATEGORY, TENANT_FIELD_LABEL)
        ),
        None,
    )


def account_numbers(world: SyncWorld) -> list[int]:
    """Every account the Tigerpaw emulator holds."""
    return [account.number for account in world.sandbox.tigerpaw.world.accounts]


def timed_drain(world: SyncWorld, sender: OutboxWorker) -> tuple[float, int]:
    """Drain with LATENCY added to every Tigerpaw answer: (seconds, calls made)."""
    world.tigerpaw_faults(latency_ms=LATENCY * 1000)
    before = calls(world)
    started = time.monotonic()
    result = sender.drain()
    elapsed = time.monotonic() - started
    made = (calls(world) - before).total()
    world.tigerpaw_faults(latency_ms=0)
    assert result.failed == 0 and result.halted is None, result
    return elapsed, made


def test_a_first_create_makes_no_look_up(world: SyncWorld) -> None:
    """A service order's first attempt is sent straight away: a create and its key
    field, and no search by key or Reference."""
    before = calls(world)

    code, out = world.sync()

    assert code == 0, out
    made = calls(world) - before
    opened = len(world.our_orders())
    assert opened == sum(world.expected_orders().values()) > 0
    assert made[SEARCH] == 0, made
    assert made[CREATE] == opened


def test_a_create_tried_again_looks_for_its_order_first(world: SyncWorld) -> None:
    """A create whose attempt began (the answer may have been lost) is looked up
    by its key field and Reference before it is sent again; the others are not."""
    world.tigerpaw_faults(down=True, path_prefix="/api/ServiceOrders")
    world.sync(settle=0)
    world.tigerpaw_faults(reset=True)
    tried = [
        item
        for item in world.store.list_outbox(state=FAILED, limit=1000)
        if item.kind == writes.ORDER_OPEN
    ]
    assert tried
    # New problems: their orders are first attempts in the same run.
    world.kbh_events(
        {
            "events": [
                {"tenant": tenant.name, "severity": "critical"}
                for tenant in world.fleet.tenants[:3]
            ]
        }
    )
    before = calls(world)

    code, out = world.sync()

    assert code == 0, out
    made = calls(world) - before
    assert made[SEARCH] == 2 * len(tried), made
    assert made[CREATE] > len(tried), made
    assert open_titles(world.our_orders()) == world.expected_orders()
    references = [o["reference"] for o in world.our_orders()]
    assert len(references) == len(set(references))


def test_a_drain_sends_per_api_writes_at_once(
    world: SyncWorld, client: TigerpawClient
) -> None:
    """Twelve writes to twelve accounts take about calls / PER_API x latency: four
    at a time, never more."""
    world.sync()
    accounts = account_numbers(world)[:12]
    assert len(accounts) == 12
    for account in accounts:
        queue(world, field_write(account, f"parallel:{account}"))

    elapsed, made = timed_drain(world, worker(world, client))

    assert made >= len(accounts)
    one_at_a_time = made * LATENCY
    assert elapsed < one_at_a_time / 2, (elapsed, made)
    assert elapsed > one_at_a_time / PER_API * 0.9, (elapsed, made)
    for account in accounts:
        assert tenant_field(client, account) == f"parallel:{account}"
    assert world.store.pending_count() == 0


def test_writes_of_one_lane_go_one_after_another_in_order(
    world: SyncWorld, client: TigerpawClient
) -> None:
    """Four writes to one account's field are sent in the order queued, one at a
    time: the last value stays."""
    world.sync()
    account = account_numbers(world)[0]
    values = [f"lane:{n}" for n in range(4)]
    for value in values:
        queue(world, field_write(account, value))

    elapsed, made = timed_drain(world, worker(world, client))

    assert elapsed > made * LATENCY * 0.9, (elapsed, made)
    assert tenant_field(client, account) == values[-1]


def test_a_note_queued_with_its_open_waits_for_it_in_the_same_drain(
    world: SyncWorld, client: TigerpawClient
) -> None:
    """An order's open and note queued together: the note goes right after the
    open, not deferred to a later drain."""
    world.sync()
    tenant = world.store.list_tenants(world.integration_id)[0]
    mapping = tenant.mapping
    assert mapping is not None
    key = "KSI-TEST-LANE"
    world.store.track_order(tenant.id, "device-x", "status:test", key)
    common = {"order_key": key, "account_name": mapping.account_name}
    queue(
        world,
        writes.Write(
            f"order:{key}:open",
            writes.ORDER_OPEN,
            {
                **common,
                "account": mapping.account_number,
                "title": "Lane test on device-x",
                "body": "Opened by the lane test.",
                "key_field": [FIELD_CATEGORY, KEY_FIELD_LABEL],
            },
        ),
    )
    queue(
        world,
        writes.Write(
            f"order:{key}-1:note",
            writes.ORDER_NOTE,
            {**common, "text": "Seen again.", "topic": "", "title": "Lane test"},
        ),
    )

    result = worker(world, client).drain()

    assert (result.sent, result.deferred, result.failed) == (2, 0, 0)
    (order,) = [o for o in world.our_orders() if o["reference"] == key]
    assert [n["text"] for n in order["notes"]] == ["Seen again."]


def test_an_open_feed_keeps_the_drain_sending_until_it_is_closed(
    world: SyncWorld, client: TigerpawClient
) -> None:
    """A drain fed by a cycle sends what is queued while the cycle goes on, and
    ends once the feed is closed."""
    world.sync()
    account = account_numbers(world)[0]
    feed = WriteFeed()
    results = []
    thread = threading.Thread(
        target=lambda: results.append(worker(world, client).drain(feed=feed))
    )
    thread.start()
    write = field_write(account, "fed")

    queue(world, write)
    feed.queued()

    deadline = time.monotonic() + 10
    while world.store.get_outbox_item(write.key).state != SENT:
        assert time.monotonic() < deadline, "the fed write was not sent"
        time.sleep(0.05)
    assert thread.is_alive(), "the drain ended before its feed was closed"
    feed.close()
    thread.join(5)
    assert not thread.is_alive()
    assert results[0].sent == 1


def test_a_cycle_sends_while_it_still_reads_the_console(tmp_path: Path) -> None:
    """With a slow console, the first writes reach Tigerpaw before the last
    tenant is read (both APIs busy at once)."""
    world = SyncWorld(tmp_path, tenants=8, devices=4)
    try:
        world.set_up()
        console = world.description["kbh"]["production"]
        requests.post(
            f"{console['url']}/_sandbox/faults",
            json={"latency_ms": 150},
            timeout=10,
            verify=console["cert"],
        ).raise_for_status()

        code, out = world.sync()

        assert code == 0, out
        with sqlite3.connect(world.store.path) as conn:
            # The fields the bootstrap creates are sent before any tenant is read.
            (first_sent,) = conn.execute(
                "SELECT MIN(done_at) FROM outbox WHERE state = 'sent' AND kind <> ?",
                (writes.ENSURE_FIELD,),
            ).fetchone()
            (last_read,) = conn.execute(
                "SELECT MAX(updated_at) FROM cursors"
            ).fetchone()
        assert first_sent < last_read, (first_sent, last_read)
    finally:
        world.close()
