"""The Warning status and Critical status sections, against real emulators on
127.0.0.1: the Settings page lists both with a row per status description and saves
each row apart; a sync opens a device's order under the row of its status's section,
and keeps one order per device and cause when the status changes. And the price book
table: a per-user application has one item row, a device application no mailbox row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import html

from agent.sandbox import seed
from agent.sources.records import (
    DATABASES_OUTDATED,
    NOT_PROTECTED,
    NOT_SEEN,
    PROBLEM_DESCRIPTIONS,
)
from agent.store import OrderRule, SyncChoices
from tests.integration.agent_support import World, mapped_world
from tests.integration.sync_support import CHOICES, SyncWorld

pytestmark = pytest.mark.usefixtures("no_os_keyring")

LOW = OrderRule(enabled=True, priority="4 - Low", order_type="Maintenance")
HIGH = OrderRule(enabled=True, priority="2 - High", order_type="Break/Fix")
#: Databases out of date on in Warning status, not protected on in Critical status;
#: every other row and every event severity off.
SECTIONS = SyncChoices(
    rep=CHOICES.rep,
    new_status=CHOICES.new_status,
    closed_status=CHOICES.closed_status,
    device_statuses={
        f"warning:{DATABASES_OUTDATED}": LOW,
        f"critical:{NOT_PROTECTED}": HIGH,
    },
)
TITLES = {word: text for word, text in PROBLEM_DESCRIPTIONS.items()}


# A sync.


@pytest.fixture
def sync_world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A Business Hub sandbox of 3 companies of 6 devices and an empty store."""
    made = SyncWorld(tmp_path, tenants=3, devices=6)
    yield made
    made.close()


def open_orders(world: SyncWorld) -> dict[tuple[int, str], dict[str, Any]]:
    """The agent's open orders by (account, title)."""
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for order in world.our_orders():
        if not order["closed"]:
            key = (order["account"], order["brief"])
            assert key not in found, f"two open orders for {key}"
            found[key] = order
    return found


def expected_orders(world: SyncWorld) -> dict[tuple[int, str], OrderRule]:
    """From the fleet: each device in Warning with databases out of date, and each
    in Critical not protected, with the row it falls under."""
    expected = {}
    for tenant in world.fleet.tenants:
        account = world.accounts[tenant.name]
        for device in tenant.devices:
            if device.status == "warning" and DATABASES_OUTDATED in device.problems:
                title = f"{TITLES[DATABASES_OUTDATED]} on {device.name}"
                expected[(account, title)] = LOW
            if device.status == "critical" and NOT_PROTECTED in device.problems:
                title = f"{TITLES[NOT_PROTECTED]} on {device.name}"
                expected[(account, title)] = HIGH
    return expected


def rules_of(orders: dict[tuple[int, str], dict[str, Any]]) -> dict[Any, OrderRule]:
    """Each order's priority and type, as the rule that would give them."""
    return {
        key: OrderRule(
            enabled=True, priority=order["priority"], order_type=order["type"]
        )
        for key, order in orders.items()
    }


def test_orders_follow_the_section_of_the_devices_status(
    sync_world: SyncWorld,
) -> None:
    world = sync_world
    world.set_up(choices=SECTIONS)
    tenant = world.fleet.tenants[0]
    warned, critical = [d for d in tenant.devices if not d.problems][:2]
    world.kbh_events(
        {
            "problems": [
                {
                    "tenant": tenant.name,
                    "device": warned.id,
                    "add": [DATABASES_OUTDATED],
                },
                {
                    "tenant": tenant.name,
                    "device": critical.id,
                    "add": [DATABASES_OUTDATED, NOT_PROTECTED],
                },
            ]
        }
    )

    code, out = world.sync()

    assert code == 0, out
    account = world.accounts[tenant.name]
    expected = expected_orders(world)
    assert (account, f"{TITLES[DATABASES_OUTDATED]} on {warned.name}") in expected
    assert (account, f"{TITLES[NOT_PROTECTED]} on {critical.name}") in expected
    assert (account, f"{TITLES[DATABASES_OUTDATED]} on {critical.name}") not in (
        expected
    ), "a device in Critical follows the Critical row, which is off"
    opened = open_orders(world)
    assert rules_of(opened) == expected

    # The device in Warning goes Critical for another reason: its databases order
    # stays the one order of that cause, and the new reason opens its own.
    world.kbh_events(
        {
            "problems": [
                {"tenant": tenant.name, "device": warned.id, "add": [NOT_PROTECTED]}
            ]
        }
    )
    code, out = world.sync()

    assert code == 0, out
    now_open = open_orders(world)
    databases = (account, f"{TITLES[DATABASES_OUTDATED]} on {warned.name}")
    assert now_open[databases]["number"] == opened[databases]["number"]
    unprotected = (account, f"{TITLES[NOT_PROTECTED]} on {warned.name}")
    assert rules_of(now_open)[unprotected] == HIGH
    assert set(now_open) == set(opened) | {unprotected}

    # Nothing changed: a second run writes nothing.
    before = len(world.our_orders())
    code, out = world.sync()
    assert code == 0, out
    assert len(world.our_orders()) == before and open_orders(world) == now_open

    # The description clears while the device stays in Critical: its order closes.
    world.kbh_events(
        {
            "problems": [
                {
                    "tenant": tenant.name,
                    "device": warned.id,
                    "clear": [DATABASES_OUTDATED],
                }
            ]
        }
    )
    code, out = world.sync()
    assert code == 0, out
    closed = next(
        o for o in world.our_orders() if o["number"] == opened[databases]["number"]
    )
    assert closed["closed"] and closed["status"] == CHOICES.closed_status, closed
    assert set(open_orders(world)) == set(now_open) - {databases}


# The page.


@pytest.fixture
def page_world(tmp_path: Path) -> Iterator[World]:
    """Business Hub with 3 two-device companies (the third has Office 365),
    Tigerpaw with their accounts, and an agent with one mapped integration."""
    fleet = seed.make_fleet("production", 3, 1, devices=2)
    assert any(t.office365_subscription() for t in fleet.tenants), "no Office 365"
    with mapped_world(tmp_path, fleet) as made:
        yield made


def section(page: Any, name: str) -> Any:
    """The <section> whose heading names it."""
    (found,) = page.xpath(
        f"//section[@aria-labelledby=//h2[normalize-space()='{name}']/@id]"
    )
    return found


def test_two_sections_each_with_a_row_per_description(page_world: World) -> None:
    path = f"/integrations/{page_world.integration_id}/settings"
    page = html.fromstring(page_world.get(path))

    for level, name in (("warning", "Warning status"), ("critical", "Critical status")):
        region = section(page, name)
        (table,) = region.xpath(".//table")
        assert table.get("id") == f"status-{level}-rows"
        titles = [
            " ".join(th.text_content().split()) for th in table.xpath(".//tbody//th")
        ]
        assert titles == list(PROBLEM_DESCRIPTIONS.values())
        for word, description in PROBLEM_DESCRIPTIONS.items():
            prefix = f"status-{level}-{word}"
            (label,) = region.xpath(f".//label[@for='{prefix}-enabled']")
            assert label.text_content().strip() == description
            for field, what in (("priority", "Priority"), ("type", "Type")):
                (label,) = region.xpath(f".//label[@for='{prefix}-{field}']")
                assert label.text_content().strip() == f"{what} of {description}"
            (switch,) = region.xpath(f".//*[@id='{prefix}-enabled']")
            (hint,) = page.xpath(f"//*[@id='{switch.get('aria-describedby')}']")
            assert hint.text_content().startswith(f"On: a device in {name} ")
            assert switch.get("checked") is None
        (panel,) = region.xpath(".//*[@data-bulk-panel]")
        assert panel.get("data-bulk-panel") == table.get("id")
        (pick_all,) = region.xpath(f".//label[@for='status-{level}-rows-pick-all']")
        assert pick_all.text_content().startswith("Select every ")

    # Each section's row is saved apart.
    form = {
        "rep": "1",
        "new_status": "New",
        "closed_status": "Closed",
        f"status-warning-{DATABASES_OUTDATED}-enabled": "on",
        f"status-warning-{DATABASES_OUTDATED}-priority": "4 - Low",
        f"status-warning-{DATABASES_OUTDATED}-type": "Maintenance",
        f"status-critical-{DATABASES_OUTDATED}-priority": "2 - High",
        f"status-critical-{NOT_SEEN}-enabled": "on",
    }
    page_world.post(path, form, status=302)

    saved = page_world.agent.store.get_sync_choices(page_world.integration_id)
    assert saved.device_statuses[f"warning:{DATABASES_OUTDATED}"] == LOW
    assert saved.device_statuses[f"critical:{DATABASES_OUTDATED}"] == OrderRule(
        priority="2 - High"
    )
    assert saved.device_statuses[f"critical:{NOT_SEEN}"] == OrderRule(enabled=True)
    assert not saved.device_statuses[f"warning:{NOT_SEEN}"].enabled
    page = html.fromstring(page_world.get(path))
    checked = {box.get("id") for box in page.xpath("//input[@checked]")}
    assert {
        f"status-warning-{DATABASES_OUTDATED}-enabled",
        f"status-critical-{NOT_SEEN}-enabled",
    } <= checked
    assert f"status-critical-{DATABASES_OUTDATED}-enabled" not in checked


def test_rows_saved_before_the_sections_show_in_both(page_world: World) -> None:
    store, integration = page_world.agent.store, page_world.integration_id
    saved = store.get_sync_choices(integration)
    # Built with a description alone, as choices were saved before the sections.
    store.set_sync_choices(
        integration,
        SyncChoices(
            rep="1",
            new_status="New",
            closed_status="Closed",
            device_statuses={DATABASES_OUTDATED: LOW},
            price_book_items=saved.price_book_items,
        ),
    )

    page = html.fromstring(page_world.get(f"/integrations/{integration}/settings"))

    for level in ("warning", "critical"):
        prefix = f"status-{level}-{DATABASES_OUTDATED}"
        assert page.xpath(f"//*[@id='{prefix}-enabled']")[0].get("checked") is not None
        (chosen,) = page.xpath(f"//*[@id='{prefix}-priority']/option[@selected]")
        assert chosen.get("value") == "4 - Low"


def test_a_per_user_application_has_one_item_row(page_world: World) -> None:
    store, integration = page_world.agent.store, page_world.integration_id
    path = f"/integrations/{integration}/settings"
    saved = store.get_sync_choices(integration)
    endpoint, office = seed.ENDPOINT_PRODUCT, seed.OFFICE365_PRODUCT
    # A mailbox item saved before the one row, and a device row no longer shown.
    store.set_sync_choices(
        integration,
        SyncChoices(
            price_book_items={
                **saved.price_book_items,
                f"{office}/mailbox": "KL-KSO365",
                f"{office}/server": "KL-KESB-SRV",
                f"{endpoint}/mailbox": "KL-KSO365",
            },
            bill_by_category=True,
        ),
    )

    page = html.fromstring(page_world.get(path))

    names = {
        s.get("name") for s in page.xpath("//select[starts-with(@name, 'item::')]")
    }
    assert f"item::{office}" in names
    assert not [n for n in names if n.startswith(f"item::{office}/")], names
    assert {f"item::{endpoint}/{c}" for c in ("workstation", "server", "other")} <= (
        names
    )
    assert not [n for n in names if n.endswith("/mailbox")], names
    (chosen,) = page.xpath(f"//select[@name='item::{office}']/option[@selected]")
    assert chosen.get("value") == "KL-KSO365", "the row shows the mailboxes' item"

    # Saving the page keeps what the rows show and drops the rows not shown.
    shown = {
        s.get("name"): s.xpath("./option[@selected]/@value")[0]
        for s in page.xpath("//select[starts-with(@name, 'item::')]")
        if s.xpath("./option[@selected]/@value")
    }
    page_world.post(path, {**shown, "bill_by_category": "on"}, status=302)
    items = store.get_sync_choices(integration).price_book_items
    assert items[office] == "KL-KSO365"
    assert not [
        k for k in items if k.startswith(f"{office}/") or k.endswith("/mailbox")
    ]
