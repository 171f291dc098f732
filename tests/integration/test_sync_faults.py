"""Tigerpaw down, rate-limited or failing at random, and one tenant that keeps failing:
nothing is lost, nothing is doubled, the others go on."""

from __future__ import annotations

import time

import pytest

from agent.store import FAILED, OPENING, NewTenant
from agent.sync import writes
from agent.tigerpaw.client import TigerpawClient
from tests.integration.sync_support import (
    KEY_FIELD,
    SyncWorld,
    kaspersky_charges,
    open_titles,
    tigerpaw_client,
)

pytestmark = pytest.mark.usefixtures("no_os_keyring")


def make_client(world: SyncWorld) -> TigerpawClient:
    """A Tigerpaw client of our own, playing the agent before its crash."""
    return tigerpaw_client(world)


def assert_exact(world: SyncWorld) -> None:
    """Tigerpaw holds exactly the expected orders and charges; nothing waits."""
    assert open_titles(world.our_orders()) == world.expected_orders()
    references = [o["reference"] for o in world.our_orders()]
    assert len(references) == len(set(references))
    expected = world.expected_charges()
    charges = world.charges()
    assert kaspersky_charges({a: charges[a] for a in expected}) == expected
    assert world.store.pending_count() == 0


def test_tigerpaw_down_for_a_whole_cycle_loses_nothing(world: SyncWorld) -> None:
    """A cycle with Tigerpaw down fails, consumes no event, and the next catches up."""
    world.tigerpaw_faults(down=True)

    code, out = world.sync(settle=0)

    assert code == 1
    assert "FAILED" in out and "Tigerpaw" in out
    assert world.our_orders() == []
    tenants = world.store.list_tenants(world.integration_id)
    assert all(t.last_error for t in tenants)
    # The events were not consumed: the cursors did not move.
    assert all(world.store.get_cursor(t.id, "events") is None for t in tenants)

    world.tigerpaw_faults(reset=True)
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)
    assert all(
        t.last_error is None for t in world.store.list_tenants(world.integration_id)
    )


def test_writes_queued_when_tigerpaw_falls_over_are_sent_next_cycle(
    world: SyncWorld,
) -> None:
    # Reads and charge writes work, but every order create finds nobody there.
    """Creates that could not be sent stay queued and go out next cycle."""
    world.tigerpaw_faults(down=True, path_prefix="/api/ServiceOrders")

    code, out = world.sync(settle=0)

    assert code == 1
    assert world.our_orders() == []
    tracked = world.store.list_orders()
    assert len(tracked) == sum(world.expected_orders().values())
    assert all(t.state == OPENING and t.order_number is None for t in tracked)
    assert world.store.pending_count() >= len(tracked)

    world.tigerpaw_faults(reset=True)
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)


def test_random_429_and_500_lose_and_double_nothing(world: SyncWorld) -> None:
    """Random 429 and 500 answers end in exactly the expected state."""
    world.tigerpaw_faults(error_rate=0.15, rate_limit_rate=0.15, retry_after=0)
    codes = []
    for _ in range(12):
        code, out = world.sync(settle=0.5)
        codes.append(code)
        if code == 0 and world.store.pending_count() == 0:
            break
    world.tigerpaw_faults(reset=True)

    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)
    assert 1 in codes  # the faults did bite


def test_a_failing_tenant_does_not_stop_or_delay_the_others(world: SyncWorld) -> None:
    # One company's account lost its cross-reference (billing refused), and one
    # tenant points at a company Business Hub does not have (reads refused).
    """A refused account and an unknown company fail alone; the rest sync."""
    broken = world.fleet.tenants[2]
    account = world.accounts[broken.name]
    world.tigerpaw_events({"remove_cross_reference": [account]})
    (ghost,) = world.store.add_tenants(
        world.integration_id,
        [NewTenant("00000000-0000-4000-8000-000000000000", "Ghost")],
    )
    spare = next(
        a
        for a in world.sandbox.tigerpaw.world.accounts
        if a.number not in world.accounts.values()
    )
    world.store.map_account(ghost.id, spare.number, spare.name, None, billing=False)

    started = time.monotonic()
    code, out = world.sync(settle=0)
    took = time.monotonic() - started

    assert code == 1
    assert f"{broken.name} -> {broken.name}: FAILED" in out
    assert "cross-referenced" in out
    assert "Ghost" in out and "Ghost -> " in out
    tenants = {t.name: t for t in world.store.list_tenants(world.integration_id)}
    assert "cross-referenced" in (tenants[broken.name].last_error or "")
    assert tenants["Ghost"].last_error
    healthy = {n: a for n, a in world.accounts.items() if n != broken.name}
    expected = world.expected_charges()
    charges = world.charges()
    assert kaspersky_charges({a: charges[a] for a in healthy.values()}) == {
        a: expected[a] for a in healthy.values()
    }
    # Orders need no cross-reference: the broken company's orders are there too.
    assert open_titles(world.our_orders()) == world.expected_orders()
    assert took < 10

    world.tigerpaw_events({"cross_reference": [account]})
    world.store.remove_tenant(ghost.id)
    time.sleep(0.3)
    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)


def test_an_order_created_before_a_crash_is_found_by_its_key_not_made_again(
    world: SyncWorld,
) -> None:
    """An order that reached Tigerpaw unrecorded is found by its key."""
    world.tigerpaw_faults(down=True, path_prefix="/api/ServiceOrders")
    world.sync(settle=0)
    world.tigerpaw_faults(reset=True)
    waiting = [
        item
        for item in world.store.list_outbox(state=FAILED, limit=1000)
        if item.kind == writes.ORDER_OPEN
    ]
    # Two creates reached Tigerpaw but their answers were lost (a crash, a
    # timeout): one before the key field was set, one after.
    lost_answer, keyed = waiting[0].payload, waiting[1].payload
    tigerpaw = make_client(world)
    first = tigerpaw.create_service_order(
        lost_answer["account"], lost_answer["title"], reference=lost_answer["order_key"]
    )
    second = tigerpaw.create_service_order(keyed["account"], keyed["title"])
    tigerpaw.set_service_order_custom_fields(
        second, {tuple(keyed["key_field"]): keyed["order_key"]}
    )
    tigerpaw.close()

    code, out = world.sync()

    assert code == 0, out
    assert_exact(world)
    orders = {o["number"]: o for o in world.our_orders()}
    assert orders[first]["custom_fields"][KEY_FIELD] == lost_answer["order_key"]
    assert orders[second]["custom_fields"][KEY_FIELD] == keyed["order_key"]
    numbers = {t.key: t.order_number for t in world.store.list_orders()}
    assert numbers[lost_answer["order_key"]] == first
    assert numbers[keyed["order_key"]] == second


def test_a_note_sent_before_a_crash_is_not_added_twice(world: SyncWorld) -> None:
    """A note that reached Tigerpaw unrecorded is not added again."""
    world.sync()
    tenant = world.fleet.tenants[0]
    order = next(
        o
        for o in world.our_orders()
        if o["type"] == "Security Alert" and o["account"] == world.accounts[tenant.name]
    )
    device_name = order["brief"].rsplit(" on ", 1)[1]
    device = next(d for d in tenant.devices if d.name == device_name)
    kind = next(
        t.kind for t in world.store.list_orders() if t.order_number == order["number"]
    )
    while True:
        done = world.kbh_events(
            {
                "events": [
                    {"tenant": tenant.name, "severity": "critical", "device": device.id}
                ]
            }
        )
        raised = next(e for e in tenant.events if e.id == done["events"][0]["id"])
        if f"event:{raised.type}" == kind:
            break
        world.sync()
    # The note waits (someone has the order open); when it is let go, the note
    # reaches Tigerpaw but the agent dies before marking it sent.
    world.tigerpaw_events({"lock": [order["number"]]})
    world.sync(settle=0)
    world.tigerpaw_events({"unlock": [order["number"]]})
    (note,) = [
        item
        for item in world.store.list_outbox(state=FAILED, limit=1000)
        if item.kind == writes.ORDER_NOTE
    ]
    tigerpaw = make_client(world)
    tigerpaw.add_service_order_note(order["number"], note.payload["text"])
    tigerpaw.close()

    code, out = world.sync()

    assert code == 0, out
    texts = [
        n["text"]
        for o in world.our_orders()
        if o["number"] == order["number"]
        for n in o["notes"]
    ]
    assert texts.count(note.payload["text"]) == 1
    assert world.store.pending_count() == 0
