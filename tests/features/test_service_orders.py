"""Feature tests of FEATURES.md "Service orders" (but the self-closing line, which
tests/features/test_self_closing_orders.py covers), one test per line.

The emulators run in this test process (``agent.sandbox.runner.Sandbox``) and the
agent, started without ``--sandbox``, is set up on the page against their KSC and
Tigerpaw: so the agent can be stopped for an outage while the KSC fleet gets events
dated in the past (``Fleet.raise_event(when=...)``). One agent and one browser page
serve the module; the tests run in order and build on each other's integration.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from agent.sandbox import seed, tigerpaw_seed
from agent.sandbox.runner import Sandbox
from agent.sources.records import NOT_SEEN, PROBLEM_DESCRIPTIONS
from tests.agent_process import AgentProcess
from tests.conftest import ARTIFACTS
from tests.e2e.setup_helpers import (
    emulator_state,
    error_of,
    open_titles,
    post_sandbox_events,
    shot,
    sync_now_and_wait,
    wait_until,
)
from tests.features.flows_orders import (
    accounts_of,
    connect_ksc,
    create_and_map_every_tenant,
    open_settings,
    orders,
    save_settings,
    tigerpaw_client,
    titled,
)

pytestmark = pytest.mark.browser

SEVERITY_ROWS = {
    "critical": "Critical",
    "functional_failure": "Functional failure",
    "warning": "Warning",
}
#: The General choices: none is what Tigerpaw would pick by itself, so the orders
#: show they were used.
REP, REP_NUMBER = "Sam Technician", 3
NEW_STATUS, CLOSED_STATUS = "In Progress", "Complete"
#: What the event rows are set to, several at once.
EVENT_RULE = {"priority": "1 - Critical", "type": "Security Alert",
              "board": "Security Operations"}  # fmt: skip
#: The device status sections and what their switched-on rows are set to.
STATUS_SECTIONS = {
    "Warning status": {"priority": "4 - Low", "type": "Maintenance"},
    "Critical status": {"priority": "2 - High", "type": "Break/Fix"},
}
SYNC_TIMEOUT = 90.0


# The emulators in this process, and an agent without its own sandbox.


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """KSC, Business Hub and Tigerpaw emulators whose fleets the tests can change."""
    started = Sandbox(tmp_path_factory.mktemp("orders-sandbox"), tenants=5, seed=1)
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def sandbox(emulators: Sandbox) -> dict[str, Any]:
    """The emulators' addresses and credentials (what ``sandbox.json`` holds)."""
    return emulators.description


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, emulators: Sandbox):
    """The agent, on the emulators above; stopped and started again for an outage."""
    process = AgentProcess(tmp_path_factory.mktemp("orders-agent"))
    process.start()
    yield process
    process.stop()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "service-orders-agent-output.txt").write_text(process.output())


@pytest.fixture(scope="module")
def accounts(page, agent: AgentProcess, sandbox: dict[str, Any]) -> dict[str, int]:
    """Set up on the page: KSC by password, every virtual server mapped."""
    connect_ksc(page, sandbox["ksc"])
    create_and_map_every_tenant(page, sandbox["tigerpaw"])
    found = accounts_of(agent)
    assert len(found) == 5, found
    return found


# The KSC fleet.


def fleet_of(emulators: Sandbox) -> seed.Fleet:
    """The KSC emulator's fleet (change it only under the emulator's lock)."""
    assert emulators.ksc is not None
    return emulators.ksc.fleet


def quiet_devices(
    emulators: Sandbox, count: int
) -> list[tuple[seed.Tenant, seed.Device]]:
    """Devices without problems, events or orders: whatever orders they get now
    come from what the test raises."""
    busy = {o["brief"].rsplit(" on ", 1)[-1] for o in orders_in(emulators)}
    found = []
    for tenant in fleet_of(emulators).tenants:
        with_events = {e.device_id for e in tenant.events}
        for device in tenant.devices:
            if device.problems or device.id in with_events or device.name in busy:
                continue
            found.append((tenant, device))
    assert len(found) >= count, "the seed has too few quiet devices"
    return found[:count]


def raise_event(
    emulators: Sandbox,
    tenant: seed.Tenant,
    device: seed.Device,
    severity: str,
    age: dt.timedelta = dt.timedelta(0),
) -> seed.Event:
    """An event on a device of the KSC fleet, dated ``age`` ago."""
    assert emulators.ksc is not None
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) - age
    with emulators.ksc.lock:
        return fleet_of(emulators).raise_event(
            tenant, severity, device=device, when=when
        )


def orders_in(emulators: Sandbox) -> list[dict[str, Any]]:
    """The agent's orders in the Tigerpaw emulator."""
    return orders(emulators.description["tigerpaw"])


def title_of(event: seed.Event) -> str:
    """The title the order of a seed event has: what happened, on which device."""
    return f"{event.description} on {event.device_name}"


def switch_on_status_row(page: Any, description: str) -> None:
    """Tick the (first) device status row of a description."""
    page.get_by_role("checkbox", name=description, exact=True).first.check()


def wait_idle(agent: AgentProcess) -> None:
    """Wait until no cycle runs (before stopping the agent, for example)."""
    wait_until(
        lambda: agent.status()["sync"]["state"] != "running",
        SYNC_TIMEOUT,
        "the sync to be idle",
    )


def synced(page: Any, agent: AgentProcess) -> dict[str, Any]:
    """Sync now from the dashboard; the first integration's view after the cycle,
    which must have ended without an integration-wide error."""
    status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)
    assert status["error"] is None, status
    return status


# The tests, one per line of FEATURES.md.


def test_general_all_required_rep_new_and_closed_status(
    page, agent, sandbox, emulators, accounts, artifacts_dir
) -> None:
    """General, all required: Service order rep, New service order status, Closed
    service order status."""
    open_settings(page, agent)
    general = page.get_by_role("region", name="Service orders: general")
    fields = {
        "rep": "Service order rep",
        "new_status": "New service order status",
        "closed_status": "Closed service order status",
    }
    for name, label in fields.items():
        assert general.get_by_label(label, exact=True).get_attribute("id") == name
        assert page.locator(f"#{name}").input_value() == "", f"{label} starts blank"
    switch_on_status_row(page, PROBLEM_DESCRIPTIONS[NOT_SEEN])

    # Each one left blank is refused, beside its field; the others are kept.
    chosen = {"rep": REP, "new_status": NEW_STATUS, "closed_status": CLOSED_STATUS}
    for filled in range(len(fields) + 1):
        blank = list(fields)[filled:]
        with page.expect_navigation():
            page.get_by_role("button", name="Save", exact=True).click()
        if not blank:
            break
        for name in fields:
            invalid = page.locator(f"#{name}").get_attribute("aria-invalid")
            if name in blank:
                assert error_of(page, name), f"{fields[name]} left blank is refused"
                assert invalid == "true"
            else:
                assert not error_of(page, name) and invalid is None
        assert "are saved" not in page.inner_text("main")
        shot(page, artifacts_dir, f"1-general-{len(blank)}-blank")
        name = blank[0]
        if name == "rep":
            page.select_option("#rep", label=REP)
        else:
            page.select_option(f"#{name}", chosen[name])
    assert "are saved" in page.inner_text("main"), page.inner_text("main")
    assert page.locator("#rep option:checked").inner_text() == REP
    assert page.locator("#new_status").input_value() == NEW_STATUS
    assert page.locator("#closed_status").input_value() == CLOSED_STATUS
    shot(page, artifacts_dir, "2-general-saved")

    # New orders carry the rep and the new status; a close uses the closed status.
    synced(page, agent)
    tigerpaw = sandbox["tigerpaw"]
    opened = [o for o in orders(tigerpaw) if not o["closed"]]
    unseen = PROBLEM_DESCRIPTIONS[NOT_SEEN]
    assert opened and all(o["brief"].startswith(unseen) for o in opened), opened
    assert {o["status"] for o in opened} == {NEW_STATUS}
    with tigerpaw_client(tigerpaw) as client:
        for order in opened:
            assert client.get_service_order(order["number"]).technician == REP_NUMBER

    order = opened[0]
    device_name = order["brief"].rsplit(" on ", 1)[1]
    tenant, device = next(
        (t, d)
        for t in fleet_of(emulators).tenants
        for d in t.devices
        if d.name == device_name and accounts[t.name] == order["account"]
    )
    change = {"tenant": tenant.name, "device": device.id, "clear": [NOT_SEEN]}
    post_sandbox_events(sandbox["ksc"], {"problems": [change]})
    synced(page, agent)
    closed = next(o for o in orders(tigerpaw) if o["number"] == order["number"])
    assert closed["closed"] and closed["status"] == CLOSED_STATUS, closed


def check_event_rows_start_off(page: Any) -> None:
    """One row per severity, in order, each off with a lifetime of one day and
    Tigerpaw's priorities, types and boards to choose from."""
    labels = page.locator("#event-rows tbody th label").all_inner_texts()
    assert [text.strip() for text in labels] == list(SEVERITY_ROWS.values())
    offered = {
        "priority": [p for p, _ in tigerpaw_seed.PRIORITIES],
        "type": [t for t, _ in tigerpaw_seed.ORDER_TYPES],
        "board": list(tigerpaw_seed.BOARDS),
    }
    for key in SEVERITY_ROWS:
        assert not page.locator(f"#event-{key}-enabled").is_checked(), key
        assert page.locator(f"#event-{key}-lifetime").input_value() == "1", key
        for field, values in offered.items():
            options = page.locator(f"#event-{key}-{field} option").all_inner_texts()
            assert options[1:] == values, (key, field)
            assert page.locator(f"#event-{key}-{field}").input_value() == ""


def event_row(page: Any, key: str) -> dict[str, Any]:
    """What an event row holds now."""
    found: dict[str, Any] = {
        "enabled": page.locator(f"#event-{key}-enabled").is_checked(),
        "lifetime": page.locator(f"#event-{key}-lifetime").input_value(),
    }
    for field in EVENT_RULE:
        found[field] = page.locator(f"#event-{key}-{field}").input_value()
    return found


def restart_after_outage(
    agent: AgentProcess, page: Any, artifacts_dir: Any, outage: Any
) -> None:
    """Stop the agent, let ``outage`` change the world, start it again, sign in."""
    wait_idle(agent)
    assert agent.stop() == 0, agent.output()
    shutil.copy(agent.output_path, artifacts_dir / "agent-before-outage.txt")
    outage()
    info = agent.start()
    page.goto(info["url"])


def test_events_one_row_per_severity_with_lifetime_edit_cancel_reset(
    page, agent, sandbox, emulators, accounts, artifacts_dir
) -> None:
    """Events: one row per severity, Critical, Functional failure, Warning, each off
    by default, with Lifetime (days, default 1: after an outage only events newer
    than that open orders), Priority, Type (and Board where Tigerpaw has dispatch
    boards)."""
    open_settings(page, agent)
    check_event_rows_start_off(page)
    shot(page, artifacts_dir, "1-event-rows")

    # Select rows, then Edit sets several at once; Save keeps them.
    panel = page.locator("[data-bulk-panel=event-rows]")
    page.get_by_label("Select the row Critical").check()
    page.get_by_label("Select the row Warning").check()
    panel.get_by_label("On or off").select_option("on")
    panel.get_by_label("Priority").select_option(EVENT_RULE["priority"])
    panel.get_by_label("Type").select_option(EVENT_RULE["type"])
    panel.get_by_label("Board").select_option(EVENT_RULE["board"])
    panel.get_by_role("button", name="Edit selected").click()
    edited = {"enabled": True, "lifetime": "1", **EVENT_RULE}
    assert event_row(page, "critical") == edited
    assert event_row(page, "warning") == edited
    assert not event_row(page, "functional_failure")["enabled"]
    page.fill("#event-critical-lifetime", "2")
    save_settings(page)
    saved = {key: event_row(page, key) for key in SEVERITY_ROWS}
    assert saved["critical"] == {**edited, "lifetime": "2"}
    assert saved["warning"] == edited
    shot(page, artifacts_dir, "2-edited-and-saved")

    # Cancel returns to the last saved values.
    page.check("#event-functional_failure-enabled")
    page.select_option("#event-functional_failure-priority", "4 - Low")
    page.fill("#event-warning-lifetime", "9")
    with page.expect_navigation():
        page.get_by_role("link", name="Cancel", exact=True).click()
    assert {key: event_row(page, key) for key in SEVERITY_ROWS} == saved
    shot(page, artifacts_dir, "3-after-cancel")

    # An outage: events of every age arrive while the agent is stopped; only those
    # newer than their row's lifetime open orders (Critical 2 days, Warning 1).
    devices = quiet_devices(emulators, 4)
    raised: dict[str, seed.Event] = {}

    def outage() -> None:
        ages = {
            "critical, older than 2 days": ("critical", dt.timedelta(days=3)),
            "critical, newer than 2 days": ("critical", dt.timedelta(hours=26)),
            "warning, newer than 1 day": ("warning", dt.timedelta(hours=2)),
            "warning, older than 1 day": ("warning", dt.timedelta(hours=30)),
        }
        for (tenant, device), (name, (severity, age)) in zip(
            devices, ages.items(), strict=True
        ):
            raised[name] = raise_event(emulators, tenant, device, severity, age)

    restart_after_outage(agent, page, artifacts_dir, outage)
    synced(page, agent)
    shot(page, artifacts_dir, "4-after-the-outage")

    found = orders(sandbox["tigerpaw"])
    board = tigerpaw_seed.BOARDS.index(EVENT_RULE["board"]) + 1
    for name, event in raised.items():
        tenant = next(t for t, d in devices if d.id == event.device_id)
        on_device = [
            o for o in found if o["brief"].endswith(f" on {event.device_name}")
        ]
        if "newer" in name:
            [order] = titled(found, accounts[tenant.name], title_of(event))
            assert on_device == [order], name
            assert not order["closed"] and order["status"] == NEW_STATUS
            assert (order["priority"], order["type"], order["board"]) == (
                EVENT_RULE["priority"],
                EVENT_RULE["type"],
                board,
            ), name
        else:
            assert on_device == [], f"{name}: an event past its lifetime opened one"

    # Reset returns every row to its defaults.
    open_settings(page, agent)
    with page.expect_navigation():
        page.get_by_role("link", name="Reset", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("button", name="Reset to defaults").click()
    check_event_rows_start_off(page)
    page.reload()
    check_event_rows_start_off(page)
    assert page.locator("#rep option:checked").inner_text() == REP, "General stays"
    shot(page, artifacts_dir, "5-after-reset")


def status_rows(section: Any) -> dict[str, dict[str, Any]]:
    """Per status description of a section: its on/off box, Priority and Type."""
    rows = {}
    for row in section.locator("tbody tr").all():
        description = row.locator("th").inner_text().strip()
        box = row.get_by_role("checkbox", name=description, exact=True)
        assert box.count() == 1, row.inner_text()
        rows[description] = {
            "enabled": box,
            "priority": row.get_by_label(f"Priority of {description}"),
            "type": row.get_by_label(f"Type of {description}"),
        }
    return rows


def test_device_status_warning_and_critical_sections_with_priority_and_type(
    page, agent, sandbox, emulators, accounts, artifacts_dir
) -> None:
    """Device status: a "Warning status" and a "Critical status" section, one row
    per status description (for example "Databases are out of date", "Many viruses
    detected"), each on or off, with Priority and Type."""
    open_settings(page, agent)
    sections = {}
    for name in STATUS_SECTIONS:
        region = page.get_by_role("region", name=name, exact=True)
        assert region.count() == 1, f'The settings page has no "{name}" section'
        sections[name] = status_rows(region)
    shot(page, artifacts_dir, "1-status-sections")
    listed = {d for rows in sections.values() for d in rows}
    assert listed >= set(PROBLEM_DESCRIPTIONS.values()), listed
    assert PROBLEM_DESCRIPTIONS["databases_outdated"] in sections["Warning status"]
    for rows in sections.values():
        for description, row in rows.items():
            assert not row["enabled"].is_checked(), f"{description} starts off"

    # One row on in each section, with its own priority and type; the rest off.
    chosen = {
        "Warning status": PROBLEM_DESCRIPTIONS["databases_outdated"],
        "Critical status": next(iter(sections["Critical status"])),
    }
    for name, description in chosen.items():
        row = sections[name][description]
        row["enabled"].check()
        row["priority"].select_option(STATUS_SECTIONS[name]["priority"])
        row["type"].select_option(STATUS_SECTIONS[name]["type"])
    save_settings(page)
    for name in STATUS_SECTIONS:
        region = page.get_by_role("region", name=name, exact=True)
        for description, row in status_rows(region).items():
            on = description == chosen[name]
            assert row["enabled"].is_checked() == on, (name, description)
            if on:
                assert (
                    row["priority"].input_value() == (STATUS_SECTIONS[name]["priority"])
                )
                assert row["type"].input_value() == STATUS_SECTIONS[name]["type"]
    shot(page, artifacts_dir, "2-status-rows-saved")

    # Each device in that status with that description gets one order with the
    # row's priority and type; switched-off descriptions open none.
    earlier = orders(sandbox["tigerpaw"])
    before, still_open = {o["number"] for o in earlier}, open_titles(earlier)
    synced(page, agent)
    new = [o for o in orders(sandbox["tigerpaw"]) if o["number"] not in before]
    words = {text: word for word, text in PROBLEM_DESCRIPTIONS.items()}
    expected: Counter[tuple[int, str]] = Counter()
    rules = {}
    for name, description in chosen.items():
        status = name.split()[0].lower()
        for tenant in fleet_of(emulators).tenants:
            for device in tenant.devices:
                if device.status == status and words[description] in device.problems:
                    title = f"{description} on {device.name}"
                    if (accounts[tenant.name], title) in still_open:
                        continue  # one open order per device and cause
                    expected[(accounts[tenant.name], title)] = 1
                    rules[title] = STATUS_SECTIONS[name]
    assert expected, "the seed has no device for the rows switched on"
    assert open_titles(new) == expected
    for order in new:
        rule = rules[order["brief"]]
        assert (order["priority"], order["type"]) == (rule["priority"], rule["type"])


def test_tigerpaw_locks_an_order_and_the_close_is_retried(
    page, agent, sandbox, emulators, accounts, artifacts_dir
) -> None:
    """Tigerpaw locks an order while someone has it open; the close is retried until
    it goes through."""
    tigerpaw = sandbox["tigerpaw"]
    unseen = PROBLEM_DESCRIPTIONS[NOT_SEEN]
    open_settings(page, agent)
    switch_on_status_row(page, unseen)
    save_settings(page)
    order = next(
        o for o in orders(tigerpaw) if not o["closed"] and o["brief"].startswith(unseen)
    )
    number, device_name = order["number"], order["brief"].rsplit(" on ", 1)[1]
    tenant = next(t for t, n in accounts.items() if n == order["account"])
    post_sandbox_events(tigerpaw, {"lock": [number]})
    change = {"tenant": tenant, "device": device_name, "clear": [NOT_SEEN]}
    post_sandbox_events(sandbox["ksc"], {"problems": [change]})
    reads = f"GET /api/serviceorders/{number}"

    # The close meets the lock: the order stays as it is, the write waits, and the
    # dashboard says why and when it is tried again.
    tries = []
    for attempt in range(2):
        status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)
        state = emulator_state(tigerpaw)
        held = next(o for o in state["service_orders"] if o["number"] == number)
        assert held["locked"] and not held["closed"], held
        assert held["status"] == NEW_STATUS and held["notes"] == []
        assert status["pending_writes"] == 1, status
        tries.append(state["calls"].get(reads, 0))
        page.reload()
        waiting = page.locator(".waiting").inner_text()
        assert "1 write to Tigerpaw waiting" in waiting, waiting
        assert f"Service order {number}" in waiting and "next try" in waiting
        shot(page, artifacts_dir, f"{attempt + 1}-close-waits-for-the-lock")
    assert tries[1] > tries[0] > 0, f"the close was not tried again: {tries}"

    # Once the person lets go, the close goes through.
    post_sandbox_events(tigerpaw, {"unlock": [number]})
    status = synced(page, agent)
    assert status["pending_writes"] == 0, status
    closed = next(o for o in orders(tigerpaw) if o["number"] == number)
    assert closed["closed"] and closed["status"] == CLOSED_STATUS, closed
    assert len(closed["notes"]) == 1, closed["notes"]
    page.reload()
    assert page.locator(".waiting").count() == 0
    shot(page, artifacts_dir, "3-closed-after-unlock")


def test_one_open_order_per_device_and_cause_and_create_test_service_order(
    page, agent, sandbox, emulators, accounts, artifacts_dir
) -> None:
    """One open order per device and cause; repeats add a note (beyond). A "Create
    test service order" button (beyond)."""
    open_settings(page, agent)
    page.check("#event-critical-enabled")
    save_settings(page)
    tigerpaw = sandbox["tigerpaw"]
    [(tenant, device)] = quiet_devices(emulators, 1)
    account = accounts[tenant.name]
    first = raise_event(emulators, tenant, device, "critical")
    synced(page, agent)
    [order] = titled(orders(tigerpaw), account, title_of(first))
    assert order["notes"] == []

    # The same cause again, twice: no second order, one note that counts them.
    repeats = 0
    for _ in range(50):
        if raise_event(emulators, tenant, device, "critical").type == first.type:
            repeats += 1
            if repeats == 2:
                break
    assert repeats == 2, "the emulator never raised the same kind of event again"
    synced(page, agent)
    found = orders(tigerpaw)
    assert titled(found, account, title_of(first)) == [
        next(o for o in found if o["number"] == order["number"])
    ], "a repeat opened a second order"
    notes = next(o for o in found if o["number"] == order["number"])["notes"]
    assert len(notes) == 1, notes
    assert "3 occurrences" in notes[0]["text"], notes[0]["text"]
    assert max(open_titles(found).values()) == 1, "two open orders for one cause"

    # "Create test service order" opens one on the account of that row.
    page.goto(agent.base_url() + "/")
    button = page.get_by_role(
        "button", name=f"Create test service order for {tenant.name}"
    )
    with page.expect_navigation():
        button.click()
    message = page.inner_text("main")
    assert "Test service order" in message and "was created" in message, message
    number = int(message.split("Test service order ", 1)[1].split()[0])
    shot(page, artifacts_dir, "1-test-order-created")
    made = next(
        o for o in emulator_state(tigerpaw)["service_orders"] if o["number"] == number
    )
    assert made["account"] == account and not made["closed"], made
    assert "test" in made["brief"].lower() and made["status"] == NEW_STATUS
