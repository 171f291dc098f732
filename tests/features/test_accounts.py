"""FEATURES.md, "Accounts (mapping and billing switch)": one test per line, in
Debian's chromium, except the cross-reference line (test_cross_reference.py).

One sandboxed agent and one page serve the module; the tests run in order and build
on each other: the first sets up, through the grid, a KSC integration (three
virtual servers, one with billing off, billed and synced) and a Business Hub one
(two companies); the next two change and read those mappings.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.sandbox import seed
from tests.e2e.setup_helpers import (
    agreement_of,
    emulator_state,
    integrations,
    kaspersky_charges,
    proceed,
    shot,
    use_every_suggestion,
    wait_for_agreements,
    without_calls,
)
from tests.features.flows import (
    BILLED_WHOLE,
    MANAGED_SECURITY,
    TENANTS,
    WHOLE_ITEMS,
    accounts_of,
    add_tenants,
    approve_billing,
    choose_account,
    choose_items,
    connect_kbh,
    connect_ksc,
    create_integration,
    expected_charges_of,
    fleet_of,
    grid_row,
    integration_of,
    map_best_guesses,
    open_mapping,
    pick_agreements,
    start_new_integration,
    sync_all_and_wait,
)

pytestmark = pytest.mark.browser

KSC_NAME, KBH_NAME = "KSC clinics", "Business Hub clinics"
KSC_SERVERS = ["Contoso Dental", "Fabrikam Dental", "Northwind Dental"]
KBH_COMPANIES = ["Adventure Dental", "Alpine Dental"]
#: Every Tigerpaw account of the sandbox: number to name.
ACCOUNTS = dict(enumerate(seed.tigerpaw_account_names(TENANTS), start=1001))


def label(number: int) -> str:
    """An account as the grid writes it: "Name (number)"."""
    return f"{ACCOUNTS[number]} ({number})"


def id_of(agent: Any, name: str) -> str:
    """The id of the integration with that name."""
    return next(i["id"] for i in integrations(agent) if i["name"] == name)


def offered(page: Any) -> set[str]:
    """The accounts the grid's account drop-down offers."""
    return set(
        page.eval_on_selector_all(
            "#accounts option", "found => found.map(o => o.value)"
        )
    )


def shown_rows(page: Any) -> list[str]:
    """The names of the grid rows the search leaves visible."""
    return page.locator("#mapping-rows tr:visible th").all_inner_texts()


def listed(page: Any, list_id: str) -> list[str]:
    """The entries of one list of "Accounts not integrated" ("None" is no entry)."""
    texts = page.locator(f"#{list_id} li").all_inner_texts()
    return sorted(text.strip() for text in texts if text.strip() != "None")


def mapped_everywhere(agent: Any) -> set[int]:
    """The account numbers mapped in any integration (from the status API)."""
    return {
        tenant["account"]["number"]
        for integration in integrations(agent)
        for tenant in integration["tenants"]
        if tenant["account"]
    }


def test_grid_of_account_billing_and_agreement_with_search_add_and_remove(
    page, agent, sandbox, artifacts_dir
) -> None:
    """A grid: "Virtual server" (KSC) or "Company" (KBH) | "Tigerpaw account" (a
    drop-down) | billing on or off | "Select agreement" (that account's
    agreements)."""
    start_new_integration(page, agent)
    connect_ksc(page, sandbox)
    create_integration(page, sandbox, KSC_NAME)
    add_tenants(page, KSC_SERVERS)
    headers = page.locator("table.mapping thead th").all_inner_texts()
    assert headers[:4] == [
        "Virtual server",
        "Tigerpaw account",
        "Billing",
        "Select agreement",
    ]

    # The account is a drop-down of every free account.
    account_box = page.get_by_label("Tigerpaw account of Northwind Dental", exact=True)
    assert account_box.get_attribute("list") == "accounts"
    assert offered(page) == {label(number) for number in ACCOUNTS}

    # The agreement list is that account's agreements (a running one preselected).
    choose_account(page, "Northwind Dental", label(1002))
    wait_for_agreements(page)
    agreements = page.get_by_label("Agreement of Northwind Dental", exact=True)
    values = agreements.locator("option").evaluate_all("o => o.map(x => x.value)")
    state = emulator_state(sandbox["tigerpaw"])
    held = {str(g["number"]) for g in state["agreements"] if g["account"] == 1002}
    assert set(values) - {""} == held and len(held) > 1
    assert agreements.input_value() == str(agreement_of(state, 1002, MANAGED_SECURITY))

    # The search box filters by a part of the name, in any letter case.
    search = page.get_by_role("searchbox")
    search.fill("thwi")
    assert shown_rows(page) == ["Northwind Dental"]
    search.fill("DENTAL")
    assert sorted(shown_rows(page)) == KSC_SERVERS
    search.fill("")
    shot(page, artifacts_dir, "1-ksc-grid")

    # Billing is switched off for one row; the others keep it on.
    grid_row(page, "Fabrikam Dental").get_by_role("checkbox", name="Billing").uncheck()
    use_every_suggestion(page)
    pick_agreements(page)
    proceed(page)
    ksc = id_of(agent, KSC_NAME)
    accounts = accounts_of(agent, ksc)
    assert accounts == {
        "Contoso Dental": 1001,
        "Northwind Dental": 1002,
        "Fabrikam Dental": 1003,
    }
    open_mapping(page, agent, ksc)
    switch = {
        name: grid_row(page, name).get_by_role("checkbox", name="Billing").is_checked()
        for name in KSC_SERVERS
    }
    assert switch == {
        "Contoso Dental": True,
        "Fabrikam Dental": False,
        "Northwind Dental": True,
    }

    # The switch decides what is billed in Tigerpaw.
    choose_items(page, agent, ksc, WHOLE_ITEMS)
    approve_billing(page, agent, ksc)
    sync_all_and_wait(page, agent)
    state = emulator_state(sandbox["tigerpaw"])
    charges = kaspersky_charges(state)
    billed = {n: a for n, a in accounts.items() if n != "Fabrikam Dental"}
    for account, items in expected_charges_of(
        fleet_of("ksc"), billed, BILLED_WHOLE
    ).items():
        assert items and charges[agreement_of(state, account, MANAGED_SECURITY)] == (
            items
        ), f"account {account}"
    off = [g["number"] for g in state["agreements"] if g["account"] == 1003]
    assert all(charges[number] == {} for number in off), "billing off was billed"

    # The grid of a Business Hub integration lists companies.
    start_new_integration(page, agent)
    connect_kbh(page, sandbox)
    create_integration(page, sandbox, KBH_NAME)
    add_tenants(page, KBH_COMPANIES)
    headers = page.locator("table.mapping thead th").all_inner_texts()
    assert headers[:4] == ["Company", "Tigerpaw account", "Billing", "Select agreement"]
    shot(page, artifacts_dir, "2-kbh-grid")
    map_best_guesses(page)

    # Add servers here too: the grid links to the add step and back.
    open_mapping(page, agent, ksc)
    with page.expect_navigation():
        page.get_by_role("link", name="Add virtual servers").click()
    add_tenants(page, ["Litware Dental"])
    assert sorted(page.locator("#mapping-rows th").all_inner_texts()) == sorted(
        [*KSC_SERVERS, "Litware Dental"]
    )
    shot(page, artifacts_dir, "3-added-from-the-grid")

    # Remove servers here too, asking first; the console keeps them.
    servers = emulator_state(sandbox["ksc"])["vservers"]
    remove = grid_row(page, "Litware Dental").get_by_role(
        "link", name="Remove Litware Dental"
    )
    assert remove.count() == 1, "the grid offers no Remove for a virtual server"
    with page.expect_navigation():
        remove.click()
    with page.expect_navigation():
        page.get_by_role("button", name="Remove virtual server").click()
    names = [t["name"] for t in integration_of(agent, ksc)["tenants"]]
    assert sorted(names) == KSC_SERVERS
    assert emulator_state(sandbox["ksc"])["vservers"] == servers


def test_one_to_one_and_removing_a_mapping_only_unlinks(
    page, agent, sandbox, artifacts_dir
) -> None:
    """One-to-one: an account is offered to one server or company only."""
    ksc, kbh = id_of(agent, KSC_NAME), id_of(agent, KBH_NAME)
    ksc_accounts = set(accounts_of(agent, ksc).values())
    kbh_before = accounts_of(agent, kbh)

    # The Business Hub grid does not offer the accounts of KSC's servers...
    open_mapping(page, agent, kbh)
    assert offered(page) == {
        label(number) for number in ACCOUNTS if number not in ksc_accounts
    }
    # ...and refuses one typed in anyway.
    choose_account(page, "Adventure Dental", label(1001))
    proceed(page)
    text = page.inner_text("main")
    assert "Nothing was saved" in text and "already mapped to Contoso Dental" in text
    assert accounts_of(agent, kbh) == kbh_before
    shot(page, artifacts_dir, "1-taken-elsewhere")

    # Two rows of one grid cannot share an account.
    open_mapping(page, agent, kbh)
    for name in KBH_COMPANIES:
        choose_account(page, name, label(1009))
    wait_for_agreements(page)
    pick_agreements(page)
    proceed(page)
    assert "each Tigerpaw account takes one company" in page.inner_text("main")
    assert accounts_of(agent, kbh) == kbh_before
    shot(page, artifacts_dir, "2-one-account-two-rows")

    # Removing a mapping unlinks the server; Tigerpaw and KSC keep everything.
    tigerpaw = without_calls(emulator_state(sandbox["tigerpaw"]))
    servers = emulator_state(sandbox["ksc"])["vservers"]
    northwind = agreement_of(tigerpaw, 1002, MANAGED_SECURITY)
    assert kaspersky_charges(tigerpaw)[northwind], "Northwind was billed before"
    servers_here = sorted(t["name"] for t in integration_of(agent, ksc)["tenants"])
    open_mapping(page, agent, ksc)
    choose_account(page, "Northwind Dental", "")
    proceed(page)
    tenants = {t["name"]: t["account"] for t in integration_of(agent, ksc)["tenants"]}
    assert sorted(tenants) == servers_here, "the server stays in the integration"
    assert tenants["Northwind Dental"] is None
    assert without_calls(emulator_state(sandbox["tigerpaw"])) == tigerpaw
    assert emulator_state(sandbox["ksc"])["vservers"] == servers

    # The agent keeps its history of the account, and offers the account again.
    page.goto(f"{agent.base_url()}/history?account=1002")
    rows = page.locator("#history-rows tr").all_inner_texts()
    assert any("charge KL-" in row for row in rows), rows
    shot(page, artifacts_dir, "3-history-kept")
    open_mapping(page, agent, kbh)
    assert label(1002) in offered(page)


def test_accounts_not_integrated_lists_both_sides(page, agent, artifacts_dir) -> None:
    """ "Accounts not integrated": Tigerpaw accounts without a server or company,
    and servers or companies without an account (beyond: both sides)."""
    ksc, kbh = id_of(agent, KSC_NAME), id_of(agent, KBH_NAME)
    free = sorted(label(n) for n in ACCOUNTS if n not in mapped_everywhere(agent))
    assert label(1002) in free, "the unlinked account is free again"

    unlinked = sorted(
        t["name"] for t in integration_of(agent, ksc)["tenants"] if not t["account"]
    )
    assert "Northwind Dental" in unlinked, "the mapping removed before"

    open_mapping(page, agent, ksc)
    assert page.get_by_role("heading", name="Accounts not integrated").is_visible()
    assert listed(page, "unmapped-tenants") == unlinked
    assert listed(page, "unmapped-accounts") == free
    shot(page, artifacts_dir, "1-ksc-not-integrated")

    open_mapping(page, agent, kbh)
    assert listed(page, "unmapped-tenants") == []
    assert listed(page, "unmapped-accounts") == free
    with page.expect_navigation():
        page.get_by_role("link", name="Add companies").first.click()
    add_tenants(page, ["Blue Yonder Dental"])
    assert listed(page, "unmapped-tenants") == ["Blue Yonder Dental"]
    assert listed(page, "unmapped-accounts") == free
    shot(page, artifacts_dir, "2-kbh-not-integrated")
