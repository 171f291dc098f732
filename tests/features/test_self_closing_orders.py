"""FEATURES.md, Service orders: "An order raised by a status description closes itself
(Closed status, with a note) once that description no longer applies, even if the
device stays in Warning for another reason. Orders raised by events are closed by
people; Office 365 license and mailbox-protection orders close themselves when
cleared." With: "Tigerpaw locks an order while someone has it open; the close is
retried until it goes through."

The real agent with its sandbox, set up in chromium; changes go to the Business Hub
emulator and are replayed on a copy of its fleet made from the same seed, which says
what Tigerpaw should hold.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.sandbox import office365, seed
from agent.sources.records import (
    DATABASES_OUTDATED,
    NOT_SEEN,
    PROBLEM_DESCRIPTIONS,
)
from tests.e2e.setup_helpers import (
    check_fleet_copy,
    integrations,
    our_orders,
    post_sandbox_events,
    proceed,
    replay_changes,
    sandbox_state,
    shot,
    sync_now_and_wait,
    use_every_suggestion,
)
from tests.e2e.test_features_admins import create_kbh_integration

pytestmark = pytest.mark.browser

#: The agent's sandbox: five companies per console, seed 1 (its defaults).
TENANTS, SEED = 5, 1
SYNC_TIMEOUT = 60.0
CLEARED_IN_HUB = "The Office 365 problem cleared in Kaspersky Business Hub"


def set_up_every_company_with_every_row(page: Any, agent: Any, sandbox: Any) -> None:
    """Create the integration, map every company (billing off), and switch on every
    event and device status row."""
    create_kbh_integration(page, sandbox)
    page.check("#select-all")
    proceed(page)
    assert "/accounts" in page.url
    use_every_suggestion(page)
    for box in page.locator("input[id^=billing-]").all():
        box.uncheck()
    proceed(page)
    assert page.get_by_role("heading", name="Dashboard").is_visible()

    integration = integrations(agent)[0]["id"]
    page.goto(f"{agent.base_url()}/integrations/{integration}/settings")
    page.select_option("#rep", label="Kaspersky Integration")
    page.select_option("#new_status", "New")
    page.select_option("#closed_status", "Closed")
    for severity in ("critical", "functional_failure", "warning"):
        page.check(f"#event-{severity}-enabled")
    for level in ("warning", "critical"):
        for problem in PROBLEM_DESCRIPTIONS:
            page.check(f"#status-{level}-{problem}-enabled")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "are saved" in page.inner_text("main"), page.inner_text("main")


def the_order(state: dict[str, Any], account: int, title: str) -> dict[str, Any]:
    """The one order of ours with that account and title."""
    found = [
        o for o in our_orders(state) if (o["account"], o["brief"]) == (account, title)
    ]
    assert len(found) == 1, f"{title}: {len(found)} orders"
    return found[0]


def test_status_and_office365_orders_close_themselves_event_orders_do_not(
    page, agent, sandbox, artifacts_dir
) -> None:
    """A status order closes (with a note) when its description clears though the
    device stays in Warning; an event order stays open; Office 365 license and
    mailbox orders close when cleared, the locked one once Tigerpaw lets go."""
    production, tigerpaw = sandbox["kbh"]["production"], sandbox["tigerpaw"]
    fleet = seed.make_fleet("production", TENANTS, SEED)
    check_fleet_copy(production, fleet)
    set_up_every_company_with_every_row(page, agent, sandbox)
    tenants = integrations(agent)[0]["tenants"]
    accounts = {t["name"]: t["account"]["number"] for t in tenants}

    # A healthy device gets two Warning-level problems; another gets a new critical
    # event; the Office 365 company's subscription expires (its unprotected mailbox
    # is seeded).
    plain = fleet.tenants[0]
    device, other = [d for d in plain.devices if not d.problems][:2]
    problems = [DATABASES_OUTDATED, NOT_SEEN]
    hub = next(t for t in fleet.tenants if office365.WORKSPACE in t.workspaces)
    (mailbox,) = [p.mailbox for p in hub.office365_problems]
    sick = {"tenant": plain.uid, "device": device.id, "add": problems}
    alarm = {"tenant": plain.uid, "severity": "critical", "device": other.id}
    expired = {"tenant": hub.uid, "raise": "license", "reason": "expired"}
    done = replay_changes(
        production,
        fleet,
        {"problems": [sick], "events": [alarm], "office365": [expired]},
    )
    event = next(e for e in plain.events if e.id == done["events"][0]["id"])
    assert device.status == "warning"

    status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)

    assert status["error"] is None and status["pending_writes"] == 0, status
    state = sandbox_state(tigerpaw["url"])
    outdated_title = f"{PROBLEM_DESCRIPTIONS[DATABASES_OUTDATED]} on {device.name}"
    unseen_title = f"{PROBLEM_DESCRIPTIONS[NOT_SEEN]} on {device.name}"
    event_title = f"{event.description} on {other.name}"
    license_title = f"Office 365 subscription expired at {hub.name}"
    mailbox_title = f"Office 365 mailbox not protected: {mailbox}"
    opened = {
        title: the_order(state, accounts[tenant.name], title)
        for tenant, title in (
            (plain, outdated_title),
            (plain, unseen_title),
            (plain, event_title),
            (hub, license_title),
            (hub, mailbox_title),
        )
    }
    assert not any(o["closed"] for o in opened.values())
    shot(page, artifacts_dir, "1-orders-opened")

    # One description clears (the device stays in Warning: not seen); both Office 365
    # problems clear; someone has the license order open in Tigerpaw.
    license_number = opened[license_title]["number"]
    post_sandbox_events(tigerpaw, {"lock": [license_number]})
    better = {"tenant": plain.uid, "device": device.id, "clear": [DATABASES_OUTDATED]}
    cleared = [{"tenant": hub.uid, "clear": key} for key in ("license", mailbox)]
    replay_changes(production, fleet, {"problems": [better], "office365": cleared})
    check_fleet_copy(production, fleet)
    assert device.status == "warning"

    for attempt in range(2):
        status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)

        # The locked close waits; nothing else fails.
        assert status["error"] is None and status["pending_writes"] == 1, status
        state = sandbox_state(tigerpaw["url"])
        now = {t: the_order(state, o["account"], t) for t, o in opened.items()}
        closed = now[outdated_title]
        assert closed["closed"] and closed["status"] == "Closed"
        assert any(
            "no longer applies" in n["text"] and "status now warning" in n["text"]
            for n in closed["notes"]
        ), closed["notes"]
        assert not now[unseen_title]["closed"]
        assert not now[event_title]["closed"], "an event order closed by itself"
        mailbox_order = now[mailbox_title]
        assert mailbox_order["closed"] and mailbox_order["status"] == "Closed"
        assert any(n["text"].startswith(CLEARED_IN_HUB) for n in mailbox_order["notes"])
        held = now[license_title]
        assert held["locked"] and not held["closed"] and held["notes"] == []
        shot(page, artifacts_dir, f"{attempt + 2}-license-order-locked")

    post_sandbox_events(tigerpaw, {"unlock": [license_number]})
    status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)

    assert status["error"] is None and status["pending_writes"] == 0, status
    state = sandbox_state(tigerpaw["url"])
    released = the_order(state, accounts[hub.name], license_title)
    assert released["closed"] and released["status"] == "Closed"
    assert [n["text"][: len(CLEARED_IN_HUB)] for n in released["notes"]] == [
        CLEARED_IN_HUB
    ]
    assert not the_order(state, accounts[plain.name], event_title)["closed"]
    assert not the_order(state, accounts[plain.name], unseen_title)["closed"]
    shot(page, artifacts_dir, "4-all-cleared-orders-closed")
