"""The real sync engine against the sandbox: billing, service orders, a second run.

The integration is set up through the store and the secret store, as the setup page
does; each run is ``sync-once`` in this process. Every check compares the Tigerpaw
emulator's state with what the sandbox's seed says should be there.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.sandbox import seed
from agent.store import OPEN, SENT
from agent.sync.bootstrap import FIELD_CATEGORY, TENANT_FIELD_LABEL
from agent.sync.preview import approve_billing, billing_preview
from tests.integration.sync_support import (
    KEY_FIELD,
    SETTINGS,
    SyncWorld,
    kaspersky_charges,
    open_titles,
)

pytestmark = pytest.mark.usefixtures("no_os_keyring")


@pytest.fixture(params=["kbh", "ksc"])
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SyncWorld]:
    """A sandbox with 5 companies of 10 devices and an empty store; the integration
    reads Business Hub or KSC."""
    made = SyncWorld(tmp_path, source=request.param)
    yield made
    made.close()


def without_calls(state: dict[str, Any]) -> dict[str, Any]:
    """The emulator's state without its request counters."""
    return {k: v for k, v in state.items() if k != "calls"}


def event_orders(world: SyncWorld) -> list[dict[str, Any]]:
    """Our open orders raised by an event (their body says so)."""
    return [
        o
        for o in world.our_orders()
        if not o["closed"] and o["type"] == "Security Alert"
    ]


def test_first_run_opens_one_order_per_problem_and_waits_for_billing_approval(
    world: SyncWorld,
) -> None:
    """The first run opens one keyed order per problem and bills nothing unapproved."""
    world.set_up(approve=False)
    before = world.charges()

    code, out = world.sync()

    assert code == 0, out
    assert "billing waits for the preview to be approved" in out
    assert world.charges() == before
    orders = world.our_orders()
    assert open_titles(orders) == world.expected_orders()
    accounts = set(world.accounts.values())
    for order in orders:
        assert order["account"] in accounts
        assert order["custom_fields"][KEY_FIELD] == order["reference"]
        assert order["reference"].startswith("KSI-")
        assert order["status"] == "New"
        if order["type"] == "Security Alert":
            assert (order["priority"], order["board"]) == ("2 - High", 2)
        else:
            assert (order["type"], order["priority"]) == ("Maintenance", "3 - Normal")
    assert len({o["reference"] for o in orders}) == len(orders)
    assert world.store.pending_count() == 0


def test_approved_billing_sets_charges_to_the_active_license_counts(
    world: SyncWorld,
) -> None:
    """After approval each charge equals the seed's active-license count."""
    tenant_ids = world.set_up(approve=False)
    world.sync()
    for tenant_id in tenant_ids:
        world.store.update_mapping(tenant_id, billing_approved=True)

    code, out = world.sync()

    assert code == 0, out
    charges = world.charges()
    expected = world.expected_charges()
    assert kaspersky_charges({a: charges[a] for a in expected}) == expected
    # Nothing for trial, expired or suspended keys: the seed gives every company
    # some, and the counts above leave them out; unrelated lines stay as they were.
    monitor_lines = [a for a, items in charges.items() if "MSP-MONITOR" in items]
    assert all(charges[a]["MSP-MONITOR"] == 1 for a in monitor_lines)
    history = world.store.list_history(integration_id=world.integration_id, limit=500)
    charge_changes = [h for h in history if h.target.startswith("agreement ")]
    assert len(charge_changes) == sum(len(items) for items in expected.values())
    assert all(h.before == {"quantity": None} for h in charge_changes)
    assert {h.after["quantity"] for h in charge_changes} <= {
        q for items in expected.values() for q in items.values()
    }


def test_a_second_run_writes_nothing(world: SyncWorld) -> None:
    """Running the same sync again changes nothing in Tigerpaw or the outbox."""
    world.set_up()
    code, out = world.sync()
    assert code == 0, out
    first = without_calls(world.state())
    sent = world.store.outbox_counts()[SENT]

    code, out = world.sync()

    assert code == 0, out
    assert without_calls(world.state()) == first
    assert world.store.outbox_counts() == {SENT: sent}
    assert "0 writes planned" in out


def test_each_write_is_logged_once_at_info_naming_account_and_object(
    world: SyncWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """The sync logs one INFO line per write, with the names people know; the
    Tigerpaw client's own lines about the same writes stay at DEBUG."""
    world.set_up()
    caplog.set_level(logging.INFO)

    code, out = world.sync()

    assert code == 0, out
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage() for r in infos if r.name.startswith("agent.tigerpaw")] == []
    written = [r.getMessage() for r in infos if r.name == "agent.sync.senders"]
    assert len(written) == world.store.outbox_counts()[SENT]
    field = f"{FIELD_CATEGORY}/{TENANT_FIELD_LABEL}"
    for action in ("Created service order ", " on agreement ", f"Set {field} of"):
        assert any(action in line for line in written), action
    for line in written:
        if not line.startswith("The ") or "custom field" not in line:
            assert any(name in line for name in world.accounts), line


def test_dry_run_lists_the_writes_and_writes_nothing(world: SyncWorld) -> None:
    """A dry run prints every write it would make and makes none."""
    world.set_up()
    before = without_calls(world.state())

    code, out = world.sync(dry_run=True)

    assert code == 0, out
    assert without_calls(world.state()) == before
    assert world.store.outbox_counts() == {}
    assert "Would: Create a service order for account" in out
    assert "Would: Set Kaspersky Endpoint Security for Business Select" in out
    assert f"Would create the serviceorders field {FIELD_CATEGORY}" in out


def test_changes_open_note_and_close_orders_without_duplicates(
    world: SyncWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """New events open orders, repeats become notes, cleared problems close."""
    world.set_up()
    world.sync()
    tenant = world.fleet.tenants[0]
    account = world.accounts[tenant.name]

    # A repeat of an open event order, and a new event elsewhere.
    repeated = next(o for o in event_orders(world) if o["account"] == account)
    event = next(
        e
        for e in tenant.events
        if f"{e.description} on {e.device_name}" == repeated["brief"]
    )
    device = tenant.device(event.device_id)
    assert device is not None
    same_kind = 1
    while same_kind < 2:
        done = world.kbh_events(
            {
                "events": [
                    {"tenant": tenant.name, "severity": "critical", "device": device.id}
                ]
            }
        )
        raised = next(e for e in tenant.events if e.id == done["events"][0]["id"])
        same_kind += raised.type == event.type
    other = next(d for d in tenant.devices if d.id != device.id)
    world.kbh_events(
        {
            "events": [
                {"tenant": tenant.name, "severity": "critical", "device": other.id}
            ]
        }
    )
    # A device problem clears; another device gets one.
    sick = next(d for t in world.fleet.tenants for d in t.devices if d.problems)
    cleared = sorted(sick.problems)[0]
    cleared_title = f"{_problem_title(cleared)} on {sick.name}"
    world.kbh_events(
        {
            "problems": [
                {
                    "tenant": _tenant_of(world, sick.id),
                    "device": sick.id,
                    "clear": [cleared],
                }
            ]
        }
    )
    healthy = next(d for d in tenant.devices if not d.problems)
    world.kbh_events(
        {
            "problems": [
                {
                    "tenant": tenant.name,
                    "device": healthy.id,
                    "add": ["databases_outdated"],
                }
            ]
        }
    )

    caplog.set_level(logging.INFO, logger="agent.sync.senders")
    code, out = world.sync()

    assert code == 0, out
    orders = world.our_orders()
    assert open_titles(orders) == world.expected_orders()
    name = tenant.name
    assert (
        f"Added a note to service order {repeated['number']} for account {name}: "
        f"{repeated['brief']}"
    ) in caplog.messages
    note_texts = [
        n["text"]
        for o in orders
        if o["number"] == repeated["number"]
        for n in o["notes"]
    ]
    assert any("2 occurrences since this order was opened" in t for t in note_texts)
    closed = [o for o in orders if o["brief"] == cleared_title]
    assert len(closed) == 1 and closed[0]["closed"] and closed[0]["status"] == "Closed"
    assert any(
        line.startswith(f"Closed service order {closed[0]['number']} for account ")
        and line.endswith(cleared_title)
        for line in caplog.messages
    )
    assert any("no longer applies" in n["text"] for n in closed[0]["notes"])
    assert f"Databases are out of date on {healthy.name}" in {
        o["brief"] for o in orders
    }
    assert world.store.pending_count() == 0


def test_an_event_order_closed_by_a_person_is_replaced_on_the_next_occurrence(
    world: SyncWorld,
) -> None:
    """After a person closes an event order, a new occurrence opens a new one."""
    world.set_up()
    world.sync()
    tenant = world.fleet.tenants[1]
    order = next(
        o for o in event_orders(world) if o["account"] == world.accounts[tenant.name]
    )
    event = next(
        e
        for e in tenant.events
        if f"{e.description} on {e.device_name}" == order["brief"]
    )
    world.tigerpaw_events({"close": [order["number"]]})
    code, out = world.sync()
    assert code == 0, out
    assert all(o["number"] != order["number"] for o in event_orders(world))

    while True:
        done = world.kbh_events(
            {
                "events": [
                    {
                        "tenant": tenant.name,
                        "severity": "critical",
                        "device": event.device_id,
                    }
                ]
            }
        )
        raised = next(e for e in tenant.events if e.id == done["events"][0]["id"])
        if raised.type == event.type:
            break
    code, out = world.sync()

    assert code == 0, out
    same = [o for o in world.our_orders() if o["brief"] == order["brief"]]
    assert [o["closed"] for o in sorted(same, key=lambda o: o["number"])] == [
        True,
        False,
    ]
    assert open_titles(world.our_orders()) == world.expected_orders()


def test_a_locked_order_is_closed_once_it_is_left(world: SyncWorld) -> None:
    """A close refused by a lock stays queued and goes through once unlocked."""
    world.set_up()
    world.sync()
    order = next(o for o in world.our_orders() if o["type"] == "Maintenance")
    tracked = next(
        t for t in world.store.list_orders() if t.order_number == order["number"]
    )
    device_name = order["brief"].rsplit(" on ", 1)[1]
    owner = next(
        t
        for t in world.fleet.tenants
        for d in t.devices
        if d.name == device_name and t.name in _names_of(world, order["account"])
    )
    device = next(d for d in owner.devices if d.name == device_name)
    problem = tracked.kind.partition(":")[2]
    world.tigerpaw_events({"lock": [order["number"]]})
    world.kbh_events(
        {"problems": [{"tenant": owner.name, "device": device.id, "clear": [problem]}]}
    )

    code, out = world.sync(settle=0.3)

    assert code == 0, out  # a lock is someone at work, not a failure
    assert not _order(world, order["number"])["closed"]
    assert world.store.pending_count() == 1
    assert world.store.find_order_by_key(tracked.key).state == "closing"

    world.tigerpaw_events({"unlock": [order["number"]]})
    code, out = world.sync()

    assert code == 0, out
    assert _order(world, order["number"])["closed"]
    assert world.store.pending_count() == 0
    assert world.store.find_order_by_key(tracked.key) is None


def test_each_account_names_its_tenant_once(world: SyncWorld) -> None:
    """Each account's tenant field is written once, not every cycle."""
    world.set_up()
    world.sync()
    world.sync()

    history = world.store.list_history(integration_id=world.integration_id, limit=1000)
    field_sets = [
        h for h in history if h.target.endswith(f"field {TENANT_FIELD_LABEL}")
    ]
    assert len(field_sets) == len(world.fleet.tenants)
    assert {h.after for h in field_sets} == {
        f"{world.source}:{t.uid}" for t in world.fleet.tenants
    }
    tracked = world.store.list_orders()
    assert tracked and all(t.state == OPEN and t.order_number for t in tracked)


def excluded_texts(tenant: seed.Tenant) -> tuple[str, ...]:
    """What the preview says about devices on keys that do not count."""
    unbilled = {lic.serial: lic.product for lic in tenant.licenses if not lic.billable}
    found = Counter(
        unbilled[d.license_serial]
        for d in tenant.devices
        if d.license_serial in unbilled
    )
    return tuple(
        f"{count} device{'' if count == 1 else 's'} of {product} on trial, expired "
        "or suspended keys are not counted"
        for product, count in sorted(found.items())
    )


def _problem_title(problem: str) -> str:
    """How consoles describe a device problem."""
    from agent.sources.records import PROBLEM_DESCRIPTIONS

    return PROBLEM_DESCRIPTIONS[problem]


def _tenant_of(world: SyncWorld, device_id: str) -> str:
    """The name of the company that has a device."""
    return next(t.name for t in world.fleet.tenants if t.device(device_id))


def _names_of(world: SyncWorld, account: int) -> set[str]:
    """The company names mapped to an account."""
    return {name for name, number in world.accounts.items() if number == account}


def _order(world: SyncWorld, number: int) -> dict[str, Any]:
    """One service order of the emulator's state."""
    return next(o for o in world.state()["service_orders"] if o["number"] == number)


def test_the_billing_preview_shows_old_and_new_and_approval_lets_the_run_write(
    tmp_path: Path,
) -> None:
    """The preview writes nothing; approving one account lets its charges through."""
    world = SyncWorld(tmp_path)
    try:
        tenant_ids = world.set_up(approve=False)
        world.store.update_mapping(tenant_ids[0], billing=False)
        before = world.state()

        previews = billing_preview(
            world.store,
            world.secrets,
            SETTINGS,
            world.integration_id,
            kbh_table=world.table,
        )

        assert without_calls(world.state()) == without_calls(before)
        expected = world.expected_charges()
        assert len(previews) == len(world.fleet.tenants)
        for preview in previews:
            assert not preview.approved and preview.error is None
            wanted = expected[preview.account_number]
            assert {
                line.item_id: line.after for line in preview.lines if line.after
            } == wanted
            assert all(line.before is None for line in preview.lines)
            assert all(
                "counted once per device id" in line.rule
                or "as protected mailboxes" in line.rule
                for line in preview.lines
                if line.after
            )
            tenant = world.fleet.tenant(preview.tenant_name)
            assert tenant is not None
            assert preview.excluded == excluded_texts(tenant)
        assert previews[0].billing is False
        assert any(preview.excluded for preview in previews)

        approve_billing(world.store, tenant_ids[1])
        code, out = world.sync()

        assert code == 0, out
        charges = kaspersky_charges(world.charges())
        approved = previews[1].account_number
        assert charges[approved] == expected[approved]
        others = [p.account_number for p in previews if p.account_number != approved]
        assert all(charges[a] == {} for a in others)
    finally:
        world.close()


def test_a_ksc_cycle_lists_the_virtual_servers_once(tmp_path: Path) -> None:
    """Every tenant worker needs the list of virtual servers; KSC is asked once
    per cycle, not once per worker."""
    world = SyncWorld(tmp_path, tenants=6, devices=4, source="ksc")
    try:
        world.set_up()
        ksc = world.description["ksc"]

        def listings() -> int:
            """GetVServers calls KSC has answered so far."""
            state = requests.get(
                f"{ksc['url']}/_sandbox/state", timeout=10, verify=ksc["cert"]
            ).json()
            return sum(n for name, n in state["calls"].items() if "GetVServers" in name)

        for _ in range(2):
            before = listings()
            code, out = world.sync()
            assert code == 0, out
            assert listings() - before == 1
    finally:
        world.close()
