"""FEATURES.md, "Accounts (mapping and billing switch)", the cross-reference line, in
Debian's chromium.

The sandbox's Tigerpaw leaves its last accounts without the SOAP user's external
product. A company mapped to one of them is warned of on the mapping grid (from the
account list the grid reads anyway) and approved for billing like the others; the
sync then writes no charge for it while it writes the others', and the dashboard
says which account it is and what to do in Tigerpaw.
"""

from __future__ import annotations

import re
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
    wait_until,
)
from tests.features.flows import (
    BILLED_WHOLE,
    MANAGED_SECURITY,
    SYNC_TIMEOUT,
    TENANTS,
    WHOLE_ITEMS,
    accounts_of,
    add_tenants,
    approve_billing,
    choose_account,
    choose_items,
    connect_kbh,
    create_integration,
    expected_charges_of,
    fleet_of,
    grid_row,
    open_mapping,
    pick_agreements,
    sync_all_and_wait,
    sync_runs,
)

pytestmark = pytest.mark.browser

COMPANIES = ["Adventure Dental", "Alpine Dental", "Blue Yonder Dental"]
#: The company mapped to an account that lacks the external product.
UNLINKED_COMPANY = "Blue Yonder Dental"
#: Every Tigerpaw account of the sandbox: number to name.
ACCOUNTS = dict(enumerate(seed.tigerpaw_account_names(TENANTS), start=1001))
#: What the warnings must say to do in Tigerpaw.
FIX = "Assign External Products to an Account"


def warning_of(page: Any, name: str) -> Any:
    """The cross-reference warning beside a grid row's account."""
    return grid_row(page, name).locator("p.xref")


def dashboard_error(page: Any, name: str) -> str:
    """The Error cell of a company's row on the dashboard."""
    row = page.locator("table.tenants tbody tr").filter(
        has=page.get_by_role("rowheader", name=name, exact=True)
    )
    return str(row.locator("td").nth(3).inner_text())


def test_billing_needs_the_account_cross_referenced_to_the_external_product(
    page, agent, sandbox, artifacts_dir
) -> None:
    """Billing for an account needs the account cross-referenced to the External
    Product of the SOAP user in Tigerpaw. The vendor tool fails silently here; we
    check it and say how to fix it (beyond)."""
    tigerpaw = sandbox["tigerpaw"]
    soap_user = tigerpaw["soap_user"]
    before = emulator_state(tigerpaw)
    lacking = min(set(ACCOUNTS) - set(before["cross_referenced"]))
    lacking_label = f"{ACCOUNTS[lacking]} ({lacking})"

    # Creating the integration already names the accounts billing cannot reach.
    connect_kbh(page, sandbox)
    create_integration(page, sandbox)
    assert "are not cross-referenced" in page.inner_text("main")
    add_tenants(page, COMPANIES)

    # The grid's account list marks it, and choosing it brings the warning.
    flagged = page.eval_on_selector_all(
        "#accounts option[data-xref=no]", "found => found.map(o => o.value)"
    )
    assert lacking_label in flagged
    use_every_suggestion(page)
    choose_account(page, UNLINKED_COMPANY, lacking_label)
    warning = warning_of(page, UNLINKED_COMPANY)
    warning.wait_for()
    text = warning.inner_text()
    assert text.startswith(f"{lacking_label} is not cross-referenced"), text
    assert f"SOAP user '{soap_user}'" in text and FIX in text
    for name in COMPANIES:
        if name != UNLINKED_COMPANY:
            assert warning_of(page, name).count() == 0, name
    pick_agreements(page)
    assert (
        grid_row(page, UNLINKED_COMPANY)
        .get_by_role("checkbox", name="Billing")
        .is_checked()
    )
    shot(page, artifacts_dir, "1-grid-warns-when-chosen")
    proceed(page)
    assert page.get_by_role("heading", name="Dashboard").is_visible()

    [integration] = integrations(agent)
    accounts = accounts_of(agent, integration["id"])
    assert accounts[UNLINKED_COMPANY] == lacking

    # The saved grid shows the warning beside the account, read from the cached
    # account list: no call to Tigerpaw per row (counted while no sync runs; the
    # next scheduled cycle is minutes away).
    wait_until(
        lambda: all(i["state"] != "running" for i in sync_runs(agent).values()),
        SYNC_TIMEOUT,
        "the sync to be idle",
    )
    calls = sum(emulator_state(tigerpaw)["calls"].values())
    open_mapping(page, agent, integration["id"])
    box = page.get_by_label(f"Tigerpaw account of {UNLINKED_COMPANY}", exact=True)
    assert box.input_value() == lacking_label
    assert warning_of(page, UNLINKED_COMPANY).inner_text() == text
    assert "xref-" in (box.get_attribute("aria-describedby") or "")
    assert page.locator("table.mapping p.xref").count() == 1
    assert sum(emulator_state(tigerpaw)["calls"].values()) == calls
    shot(page, artifacts_dir, "2-grid-warns-after-saving")

    # Billing is approved for every company, the unlinked one included.
    choose_items(page, agent, integration["id"], WHOLE_ITEMS)
    assert approve_billing(page, agent, integration["id"]) == len(COMPANIES)
    shot(page, artifacts_dir, "3-billing-approved")

    sync_all_and_wait(page, agent)
    state = emulator_state(tigerpaw)
    charges, earlier = kaspersky_charges(state), kaspersky_charges(before)
    billed = {n: a for n, a in accounts.items() if n != UNLINKED_COMPANY}
    expected = expected_charges_of(fleet_of("production"), billed, BILLED_WHOLE)
    for account, items in expected.items():
        agreement = agreement_of(state, account, MANAGED_SECURITY)
        assert items and charges[agreement] == items, f"account {account}"
    untouched = [g["number"] for g in state["agreements"] if g["account"] == lacking]
    assert untouched and all(charges[g] == earlier[g] == {} for g in untouched)

    # The dashboard names the account and the fix; the others synced cleanly.
    page.goto(agent.base_url() + "/")
    error = dashboard_error(page, UNLINKED_COMPANY)
    assert re.search(rf"account {lacking} \({ACCOUNTS[lacking]}\)", error), error
    assert "not cross-referenced" in error and f"SOAP user '{soap_user}'" in error
    assert FIX in error
    for name in billed:
        assert dashboard_error(page, name).strip() == "", name
    shot(page, artifacts_dir, "4-dashboard-names-the-fix")
