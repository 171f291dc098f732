"""Orders the agent opened still close when their cause clears after every service
order rule was switched off (for example after Reset): switching rules off stops new
orders, it does not abandon the open ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.store import OrderRule
from tests.integration.sync_support import CHOICES, SyncWorld

pytestmark = pytest.mark.usefixtures("no_os_keyring")

ALL_OFF = dataclasses.replace(
    CHOICES,
    events={severity: OrderRule() for severity in CHOICES.events},
    device_statuses={word: OrderRule() for word in CHOICES.device_statuses},
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A Business Hub sandbox of 3 companies of 6 devices and an empty store."""
    made = SyncWorld(tmp_path, tenants=3, devices=6)
    yield made
    made.close()


def test_open_status_order_closes_with_every_rule_off(world: SyncWorld) -> None:
    world.set_up()
    owner = world.fleet.tenants[0]
    sick = owner.devices[0]
    problem = "databases_outdated"
    world.kbh_events(
        {"problems": [{"tenant": owner.name, "device": sick.id, "add": [problem]}]}
    )
    code, out = world.sync()
    assert code == 0, out
    opened = [o for o in world.our_orders() if not o["closed"]]
    assert any(sick.name in o["brief"] for o in opened)

    world.store.set_sync_choices(world.integration_id, ALL_OFF)
    world.kbh_events(
        {"problems": [{"tenant": owner.name, "device": sick.id, "clear": [problem]}]}
    )
    before = len(world.our_orders())
    code, out = world.sync()

    assert code == 0, out
    orders = world.our_orders()
    assert len(orders) == before, "a rule switched off opened an order"
    closed = [
        o
        for o in orders
        if sick.name in o["brief"] and o["closed"] and o["status"] == "Closed"
    ]
    assert len(closed) == 1, [o["brief"] for o in orders if sick.name in o["brief"]]
    assert any("no longer applies" in n["text"] for n in closed[0]["notes"])


def test_nothing_is_read_for_orders_when_none_is_open_and_every_rule_is_off(
    world: SyncWorld,
) -> None:
    world.set_up(choices=ALL_OFF)
    code, out = world.sync()

    assert code == 0, out
    assert world.our_orders() == []
    calls = world.state()["calls"]
    order_calls = {name: n for name, n in calls.items() if "/api/serviceorders" in name}
    assert not order_calls, order_calls
    assert any("/api/accounts" in name for name in calls), "the sync did not run"
