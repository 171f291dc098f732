"""Office 365 license and mailbox orders through the real sync, against the sandbox:
one per company and problem, with their row's settings; repeats become notes; a
cleared problem closes its order, also after Tigerpaw held it locked. And event
orders read in words, with local times.

What should be there comes from the Business Hub emulator's fleet, never from what
the sync wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.sandbox import office365, seed
from agent.store import CLOSING, FAILED, OrderRule
from tests.integration.sync_support import CHOICES, SyncWorld

pytestmark = pytest.mark.usefixtures("no_os_keyring")

#: Every severity's row on, each with its own priority, type and board.
ROWS = {
    severity: OrderRule(enabled=True, priority=p, order_type=t, board=b)
    for severity, p, t, b in (
        ("critical", "2 - High", "Security Alert", "Security Operations"),
        ("functional_failure", "1 - Critical", "Monitoring", "Service Desk"),
        ("warning", "4 - Low", "Break/Fix", "Field Service"),
    )
}
#: Tigerpaw's dispatch board numbers (the sandbox numbers them in this order).
BOARDS = {"Service Desk": 1, "Security Operations": 2, "Field Service": 3}
ALL_ROWS = dataclasses.replace(CHOICES, events=ROWS)
MAILBOX_TITLE = "Office 365 mailbox not protected: "
CLEARED = "The Office 365 problem cleared in Kaspersky Business Hub"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """The sandbox with 5 companies (the third has Office 365) and an empty store."""
    made = SyncWorld(tmp_path, devices=6)
    yield made
    made.close()


@pytest.fixture
def far_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[zoneinfo.ZoneInfo]:
    """This process (where the sync runs) in India's time, five and a half hours
    from UTC, as an agent there would be."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield zoneinfo.ZoneInfo("Asia/Kolkata")
    monkeypatch.undo()
    time.tzset()


def company(world: SyncWorld) -> seed.Tenant:
    """The company with the Office 365 workspace."""
    (found,) = [t for t in world.fleet.tenants if office365.WORKSPACE in t.workspaces]
    return found


def office365_orders(world: SyncWorld) -> list[dict[str, Any]]:
    """Our orders about Office 365, open or closed."""
    return [o for o in world.our_orders() if o["brief"].startswith("Office 365 ")]


def body_of(world: SyncWorld, number: int) -> str:
    """What an order asks for (its WorkRequested), as Tigerpaw holds it."""
    return str(world.sandbox.tigerpaw.world.order(number).data["WorkRequested"])


def problem_calls(world: SyncWorld, tenant: seed.Tenant) -> int:
    """How often the sync asked for a company's Office 365 problems."""
    path = f"/api/v1/companies/{tenant.uid}/office365/problems"
    return world.sandbox.kbh["production"].calls[f"GET {path}"]


def office365_change(world: SyncWorld, **change: Any) -> dict[str, Any]:
    """Raise or clear a problem of the Office 365 company; what the emulator did."""
    done = world.kbh_events({"office365": [{"tenant": company(world).uid, **change}]})
    return dict(done["office365"][0])


def check_rows(order: dict[str, Any], rule: OrderRule) -> None:
    """The order carries the priority, type and board of its severity's row."""
    assert (order["priority"], order["type"], order["board"]) == (
        rule.priority,
        rule.order_type,
        BOARDS[rule.board],
    ), order["brief"]


def test_each_problem_opens_one_order_with_its_rows_settings(world: SyncWorld) -> None:
    """A seeded unprotected mailbox opens one order, worded for people; a second run
    writes nothing; only the Office 365 company is asked for its problems."""
    world.set_up(choices=ALL_ROWS)
    tenant = company(world)
    (problem,) = tenant.office365_problems

    code, out = world.sync()

    assert code == 0, out
    (order,) = office365_orders(world)
    assert order["brief"] == MAILBOX_TITLE + str(problem.mailbox)
    assert order["account"] == world.accounts[tenant.name]
    assert order["status"] == "New" and not order["closed"]
    check_rows(order, ROWS["warning"])
    lines = body_of(world, order["number"]).splitlines()
    assert lines[0] == f"{order['brief']} ({tenant.name})."
    assert f"Problem: {problem.description}" in lines
    assert f"Mailbox: {problem.mailbox}" in lines
    assert any("closes itself" in line for line in lines)
    assert "O365_" in lines[-1] and problem.id in lines[-1]
    assert not any("O365_" in line for line in lines[:-1]), "a code outside Reference"
    assert problem_calls(world, tenant) == 1
    others = [t for t in world.fleet.tenants if t is not tenant]
    assert all(problem_calls(world, t) == 0 for t in others)

    first = world.state()
    code, out = world.sync()

    assert code == 0, out
    assert "0 writes planned" in out
    assert world.state()["service_orders"] == first["service_orders"]


def test_repeats_note_and_cleared_problems_close_their_orders(
    world: SyncWorld,
) -> None:
    """A repeat adds a note; a license problem opens its own order; each closes with
    a note once cleared, and a new problem of the same mailbox opens a new order."""
    world.set_up(choices=ALL_ROWS)
    tenant = company(world)
    (problem,) = tenant.office365_problems
    world.sync()
    (mailbox_order,) = office365_orders(world)

    office365_change(world, **{"raise": "mailbox", "mailbox": problem.mailbox})
    license_problem = office365_change(
        world, **{"raise": "license", "reason": "suspended"}
    )
    code, out = world.sync()

    assert code == 0, out
    orders = {o["number"]: o for o in office365_orders(world)}
    notes = [n["text"] for n in orders[mailbox_order["number"]]["notes"]]
    assert len(notes) == 1 and notes[0].startswith("Seen once more: ")
    assert "2 occurrences since this order was opened" in notes[0]
    (license_order,) = [
        o for o in orders.values() if o is not orders[mailbox_order["number"]]
    ]
    assert (
        license_order["brief"] == f"Office 365 subscription suspended at {tenant.name}"
    )
    check_rows(license_order, ROWS["functional_failure"])
    assert license_problem["problem"] in body_of(world, license_order["number"])

    office365_change(world, clear="license")
    office365_change(world, clear=problem.mailbox)
    code, out = world.sync()

    assert code == 0, out
    orders = {o["number"]: o for o in office365_orders(world)}
    for number in (mailbox_order["number"], license_order["number"]):
        assert orders[number]["closed"] and orders[number]["status"] == "Closed"
        assert any(n["text"].startswith(CLEARED) for n in orders[number]["notes"])
    assert not [o for o in world.store.list_orders() if o.kind.startswith("office365")]

    again = office365_change(world, **{"raise": "mailbox", "mailbox": problem.mailbox})
    code, out = world.sync()

    assert code == 0, out
    assert again["problem"] != problem.id
    reopened = [o for o in office365_orders(world) if not o["closed"]]
    assert [o["brief"] for o in reopened] == [mailbox_order["brief"]]
    assert reopened[0]["number"] not in orders


def test_rows_switched_off_open_nothing_and_ask_for_no_problems(
    world: SyncWorld,
) -> None:
    """With the warning and functional failure rows off (only critical on), Office
    365 events open nothing and the problems are never read."""
    world.set_up()
    office365_change(world, **{"raise": "license", "reason": "expired"})

    code, out = world.sync()

    assert code == 0, out
    assert office365_orders(world) == []
    assert problem_calls(world, company(world)) == 0


def test_a_problem_cleared_before_the_cycle_read_it_opens_nothing(
    world: SyncWorld,
) -> None:
    """A license problem raised and cleared between cycles leaves nothing to act on."""
    world.set_up(choices=ALL_ROWS)
    office365_change(world, **{"raise": "license", "reason": "seats_exceeded"})
    office365_change(world, clear="license")

    code, out = world.sync()

    assert code == 0, out
    assert [o["brief"] for o in office365_orders(world)] == [
        MAILBOX_TITLE + str(company(world).office365_problems[0].mailbox)
    ]


def test_a_close_is_retried_while_tigerpaw_locks_the_order(world: SyncWorld) -> None:
    """A cleared problem's order that someone holds open in Tigerpaw stays open and
    its close waits; once the lock is gone the close goes through."""
    world.set_up(choices=ALL_ROWS)
    tenant = company(world)
    world.sync()
    (order,) = office365_orders(world)
    world.tigerpaw_events({"lock": [order["number"]]})
    office365_change(world, clear=str(tenant.office365_problems[0].mailbox))

    for _ in range(2):
        code, out = world.sync(settle=0.5)

        (held,) = office365_orders(world)
        assert held["locked"] and not held["closed"] and held["notes"] == []
        waiting = world.store.list_outbox(state=FAILED)
        assert [w.kind for w in waiting] == ["order.close"]
        assert "is open on" in str(waiting[0].last_error)
        assert any(o.state == CLOSING for o in world.store.list_orders())

    world.tigerpaw_events({"unlock": [order["number"]]})
    code, out = world.sync()

    assert code == 0, out
    (closed,) = office365_orders(world)
    assert closed["closed"] and closed["status"] == "Closed" and not closed["locked"]
    assert [n["text"][: len(CLEARED)] for n in closed["notes"]] == [CLEARED]
    assert world.store.list_outbox(state=FAILED) == []


def test_event_orders_read_in_words_with_local_times(
    world: SyncWorld, far_zone: zoneinfo.ZoneInfo
) -> None:
    """An event order's title and body say the event in words and the time in the
    agent's local time with its zone; the event code is only the last line."""
    world.set_up()
    world.sync()
    tenant = world.fleet.tenants[0]
    account = world.accounts[tenant.name]
    now = dt.datetime.now(dt.UTC)
    event = next(
        e
        for e in tenant.events
        if e.severity == "critical" and now - e.time <= dt.timedelta(days=1)
    )
    order = next(
        o
        for o in world.our_orders()
        if o["account"] == account
        and o["brief"] == f"{event.description} on {event.device_name}"
    )

    lines = body_of(world, order["number"]).splitlines()

    assert "_" not in order["brief"]
    local = event.time.astimezone(far_zone)
    assert f"Time: {local:%Y-%m-%d %H:%M} IST (UTC+05:30)" in lines
    assert "Severity: Critical" in lines
    assert lines[-1].startswith(f"Reference: event code {event.type}")
    assert not any(event.type in line for line in lines[:-1])
