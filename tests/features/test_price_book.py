"""FEATURES.md, "Price book items": one test per line, in Debian's chromium.

One sandboxed agent and one page serve the module; the tests run in order: the
first bills a KSC integration with one application left without an item, the second
sets up a Business Hub integration billed by device category (its third company has
Office 365). Quantities are worked out from the sandbox's seed, never from what the
agent wrote.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from agent.sandbox import seed, tigerpaw_seed
from tests.e2e.setup_helpers import (
    agreement_of,
    emulator_state,
    integrations,
    kaspersky_charges,
    shot,
)
from tests.features.flows import (
    BILLED_WHOLE,
    ENDPOINT_APP,
    MANAGED_SECURITY,
    O365_APP,
    SERVER_APP,
    WHOLE_ITEMS,
    accounts_of,
    approve_billing,
    choose_items,
    expected_charges_of,
    fleet_of,
    open_billing,
    open_settings,
    preview_sections,
    set_up_kbh,
    set_up_ksc,
    sync_all_and_wait,
)

pytestmark = pytest.mark.browser

#: Tigerpaw's active price book items: the only ones an application can map to.
ACTIVE_ITEMS = {item[0] for item in tigerpaw_seed.PRICE_BOOK if not item[5]}
NOT_BILLED = "(not billed)"
#: A stand-in for "no item": the server application is left unmapped.
UNMAPPED = "-"
#: Device kinds as the page names their category.
CATEGORY_WORDS = {
    seed.WORKSTATION: "workstations",
    seed.SERVER: "servers",
    seed.MOBILE: "other devices",
}
#: By category: the endpoint's workstations, servers and other devices apart, each
#: under its own item. The sandbox's price book has no Kaspersky item for phones,
#: so another existing item (per device) shows the third split.
OTHER_DEVICES_ITEM = "MSP-BACKUP"
CATEGORY_ITEMS = {
    f"{ENDPOINT_APP}/workstation": "KL-KESB-WS",
    f"{ENDPOINT_APP}/server": "KL-KESB-SRV",
    f"{ENDPOINT_APP}/other": OTHER_DEVICES_ITEM,
    SERVER_APP: "KL-KSWS",
    O365_APP: "KL-KSO365",
}
#: What each seeded (application, device kind) is billed under by those choices:
#: applications without a split item bill every device under their own item.
BILLED_BY_CATEGORY = {
    (ENDPOINT_APP, seed.WORKSTATION): "KL-KESB-WS",
    (ENDPOINT_APP, seed.SERVER): "KL-KESB-SRV",
    (ENDPOINT_APP, seed.MOBILE): OTHER_DEVICES_ITEM,
    (SERVER_APP, seed.WORKSTATION): "KL-KSWS",
    (SERVER_APP, seed.SERVER): "KL-KSWS",
    (O365_APP, "mailbox"): "KL-KSO365",
}


def item_select(page: Any, key: str) -> Any:
    """The Settings page's price book drop-down of "<application>[/<category>]"."""
    return page.locator(f'select[name="item::{key}"]')


def offered_items(select: Any) -> set[str]:
    """The price book items a drop-down offers (its blank choice left out)."""
    values = select.locator("option").evaluate_all("found => found.map(o => o.value)")
    return {value for value in values if value}


def not_billed(text: str) -> tuple[int, str, str]:
    """A preview's "Not billed: 3 servers of X" as (3, "servers", X), whether the
    page writes one "server" or "servers"."""
    found = re.search(r": (\d+) (.+?) of (.+)$", text)
    assert found, text
    count, category, app = int(found[1]), found[2], found[3].strip()
    return count, category if category.endswith("s") else f"{category}s", app


def charges_of(state: dict[str, Any], items: set[str]) -> dict[int, dict[str, int]]:
    """Agreement number to {item: quantity} of the given items (zeros left out)."""
    return {
        g["number"]: {
            c["item_id"]: c["quantity"]
            for c in g["charges"]
            if c["item_id"] in items and c["quantity"]
        }
        for g in state["agreements"]
    }


def test_each_application_maps_to_an_existing_item_and_unmapped_ones_are_not_billed(
    page, agent, sandbox, artifacts_dir
) -> None:
    """Each Kaspersky application maps to an existing Tigerpaw price book item (the
    agent never creates price book items)."""
    integration = set_up_ksc(page, agent, sandbox, name="KSC clinics")["id"]
    fleet = fleet_of("ksc")

    # Every licensed application is listed, each offered Tigerpaw's active items.
    open_settings(page, agent, integration)
    whole = page.locator("select[id^='item::']:not([id*='/'])")
    listed = {s.get_attribute("id")[len("item::") :] for s in whole.all()}
    assert listed == {lic.product for t in fleet.tenants for lic in t.licenses}
    for select in page.locator("select[id^='item::']").all():
        assert offered_items(select) == ACTIVE_ITEMS, select.get_attribute("id")
    assert "An application without an item is not billed" in page.inner_text("main")

    # The server application is left without an item: the page says it is not billed.
    chosen = {app: item for app, item in WHOLE_ITEMS.items() if app != SERVER_APP}
    choose_items(page, agent, integration, chosen)
    server = item_select(page, SERVER_APP)
    assert server.input_value() == ""
    assert server.locator("option:checked").inner_text() == NOT_BILLED
    shot(page, artifacts_dir, "1-server-application-not-billed")

    accounts = accounts_of(agent, integration)
    open_billing(page, agent, integration)
    sections = preview_sections(page)
    assert any(
        app == SERVER_APP for t in fleet.tenants for app, _ in t.billable_usage()
    )
    for tenant in fleet.tenants:
        unbilled = Counter(
            (count, CATEGORY_WORDS[kind], SERVER_APP)
            for (app, kind), count in tenant.billable_usage().items()
            if app == SERVER_APP and count
        )
        section = sections[accounts[tenant.name]]
        said = Counter(
            not_billed(text)
            for text in section.locator("p.hint").all_inner_texts()
            if text.startswith("Not billed")
        )
        assert said == unbilled, tenant.name
        assert "KL-KSWS" not in section.inner_text()
    shot(page, artifacts_dir, "2-preview-says-not-billed")

    approve_billing(page, agent, integration)
    sync_all_and_wait(page, agent)
    state = emulator_state(sandbox["tigerpaw"])
    billed_under = {
        key: UNMAPPED if key[0] == SERVER_APP else item
        for key, item in BILLED_WHOLE.items()
    }
    charges = kaspersky_charges(state)
    for account, items in expected_charges_of(fleet, accounts, billed_under).items():
        items.pop(UNMAPPED, None)
        agreement = agreement_of(state, account, MANAGED_SECURITY)
        assert items and charges[agreement] == items, f"account {account}"
    assert not any("KL-KSWS" in lines for lines in charges.values())

    # Only existing items were billed; none was created.
    billed = {c["item_id"] for g in state["agreements"] for c in g["charges"]}
    assert billed <= ACTIVE_ITEMS
    # A search is a POST; anything else but a read would change the price book.
    writes = [
        call
        for call in state["calls"]
        if "pricebook" in call.lower()
        and not call.startswith("GET ")
        and not call.lower().endswith("/search")
    ]
    assert writes == [], "the agent wrote to Tigerpaw's price book"


def test_bill_devices_by_category_per_user_application_one_item_office365_per_mailbox(
    page, agent, sandbox, artifacts_dir
) -> None:
    """ "Bill devices by category": separate items for workstations and servers (and
    other devices)."""
    ksc = next(i["id"] for i in integrations(agent) if i["source"] == "ksc")
    kbh = set_up_kbh(page, agent, sandbox, name="Business Hub clinics")["id"]
    fleets = {ksc: fleet_of("ksc"), kbh: fleet_of("production")}

    # The endpoint application gets a drop-down per device category.
    open_settings(page, agent, kbh)
    for category in ("workstations", "servers", "other devices"):
        found = page.get_by_label(
            f"Price book item of {ENDPOINT_APP}, {category}", exact=True
        )
        assert found.count() == 1, category
    for integration in fleets:
        choose_items(page, agent, integration, CATEGORY_ITEMS, by_category=True)
        assert page.locator("#bill_by_category").is_checked()
    shot(page, artifacts_dir, "1-by-category")

    approve_billing(page, agent, kbh)
    sync_all_and_wait(page, agent)
    state = emulator_state(sandbox["tigerpaw"])
    charges = charges_of(state, set(BILLED_BY_CATEGORY.values()))
    split: set[str] = set()
    for integration, fleet in fleets.items():
        accounts = accounts_of(agent, integration)
        expected = expected_charges_of(fleet, accounts, BILLED_BY_CATEGORY)
        for account, items in expected.items():
            agreement = agreement_of(state, account, MANAGED_SECURITY)
            assert charges[agreement] == items, f"account {account}"
            split.update(items)
    assert {"KL-KESB-WS", "KL-KESB-SRV", OTHER_DEVICES_ITEM} <= split, (
        "the seed bills workstations, servers and other devices apart"
    )

    # Office 365 (Business Hub): one item, quantity the protected mailboxes.
    accounts = accounts_of(agent, kbh)
    [(tenant, office)] = [
        (t, lic)
        for t in fleets[kbh].tenants
        for lic in t.licenses
        if lic.product == O365_APP
    ]
    agreement = agreement_of(state, accounts[tenant.name], MANAGED_SECURITY)
    assert charges[agreement]["KL-KSO365"] == office.mailboxes_used
    assert office.mailboxes_used != len(tenant.devices_using(office.serial))
    open_billing(page, agent, kbh)
    section = preview_sections(page)[accounts[tenant.name]]
    assert f"{office.mailboxes_used} mailboxes of {O365_APP}" in section.inner_text()
    shot(page, artifacts_dir, "2-office365-per-mailbox")

    # A per-user application maps to one item: no split by device category.
    open_settings(page, agent, kbh)
    assert item_select(page, O365_APP).count() == 1
    per_category = page.locator(f'select[name^="item::{O365_APP}/"]')
    assert per_category.count() == 0, (
        "the Settings page offers device categories for Office 365, a per-user "
        "application: " + ", ".join(s.get_attribute("name") for s in per_category.all())
    )
