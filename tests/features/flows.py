"""Setup walks the feature tests share: a fresh sandboxed agent taken through the
setup page (connect, create integration, add, map) to its dashboard, and the
settings, billing and sync steps many FEATURES.md lines start from.

Every function drives the real page in chromium; nothing is written to the agent's
store behind its back.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from agent.sandbox import seed
from tests.agent_process import AgentProcess
from tests.e2e.setup_helpers import (
    expected_charges,
    fill_tigerpaw,
    integrations,
    proceed,
    use_every_suggestion,
    wait_for_agreements,
    wait_until,
)

#: The agent's sandbox: companies per console and the seed it always uses.
TENANTS, SEED = 5, 1
#: The agreement type every seeded Tigerpaw account has, and bills on by default.
MANAGED_SECURITY = "Managed Security"
#: The longest a sync cycle of the small sandbox may take on a busy machine.
SYNC_TIMEOUT = 90.0
ENDPOINT_APP, SERVER_APP, O365_APP = (
    seed.ENDPOINT_PRODUCT,
    seed.SERVER_PRODUCT,
    seed.OFFICE365_PRODUCT,
)
#: A price book item per application, chosen on the Settings page.
WHOLE_ITEMS = {
    ENDPOINT_APP: "KL-KESB-WS",
    SERVER_APP: "KL-KSWS",
    O365_APP: "KL-KSO365",
}
#: The item each seeded (application, device kind) is billed under by those choices.
BILLED_WHOLE = {
    (ENDPOINT_APP, seed.WORKSTATION): "KL-KESB-WS",
    (ENDPOINT_APP, seed.MOBILE): "KL-KESB-WS",
    (ENDPOINT_APP, seed.SERVER): "KL-KESB-WS",
    (SERVER_APP, seed.WORKSTATION): "KL-KSWS",
    (SERVER_APP, seed.SERVER): "KL-KSWS",
    (O365_APP, "mailbox"): "KL-KSO365",
}


# The setup steps.


def ksc_address(sandbox: dict[str, Any]) -> str:
    """The sandbox KSC's address as a technician types it: host:port."""
    return str(sandbox["ksc"]["url"]).split("://")[1]


def start_new_integration(page: Any, agent: AgentProcess) -> None:
    """Open a blank Connect page, as the dashboard's "New integration" does."""
    page.goto(f"{agent.base_url()}/setup/connect?new=1")


def connect_ksc(page: Any, sandbox: dict[str, Any]) -> None:
    """Connect to the sandbox KSC by password, trusting its certificate when asked;
    ends on Create integration."""
    page.check("#source-ksc")
    page.fill("#ksc_address", ksc_address(sandbox))
    page.fill("#ksc_user", sandbox["ksc"]["user"])
    page.fill("#ksc_password", sandbox["ksc"]["password"])
    proceed(page)
    if page.url.endswith("/setup/certificate"):
        with page.expect_navigation():
            page.get_by_role("button", name="Trust this certificate").click()
    assert page.url.endswith("/setup/integration"), page.inner_text("main")


def connect_kbh(
    page: Any, sandbox: dict[str, Any], console: str = "production"
) -> None:
    """Connect to a sandbox Business Hub; ends on Create integration."""
    kbh = sandbox["kbh"][console]
    page.check("#source-kbh")
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", kbh["password"])
    proceed(page)
    assert page.url.endswith("/setup/integration"), page.inner_text("main")


def create_integration(
    page: Any, sandbox: dict[str, Any], name: str | None = None
) -> None:
    """Fill Create integration from the sandbox's Tigerpaw and proceed; ends on the
    add step. ``name`` replaces the name shown (needed when the default is taken)."""
    if name is not None:
        page.fill("#name", name)
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    assert "/add" in page.url, page.inner_text("main")


def add_tenants(page: Any, names: list[str] | None = None) -> list[str]:
    """Tick the named servers or companies (every one when None) and proceed to the
    mapping grid; the names ticked, sorted."""
    if names is None:
        page.check("#select-all")
        names = page.locator("#tenant-list label").all_inner_texts()
    else:
        for name in names:
            page.get_by_label(name, exact=True).check()
    proceed(page)
    assert "/accounts" in page.url, page.inner_text("main")
    return sorted(names)


def pick_agreements(page: Any, kind: str = MANAGED_SECURITY) -> None:
    """Choose an agreement of ``kind`` in every grid row that has an account but no
    agreement chosen yet."""
    wait_for_agreements(page)
    for select in page.locator("select[id^=agreement-]").all():
        if not select.input_value() and select.locator("option").count() > 1:
            option = select.locator("option", has_text=kind).first
            select.select_option(option.get_attribute("value"))


def map_best_guesses(page: Any) -> None:
    """Use every best guess of the grid, choose the Managed Security agreements and
    proceed to the dashboard."""
    use_every_suggestion(page)
    pick_agreements(page)
    proceed(page)
    dashboard = page.get_by_role("heading", name="Dashboard")
    assert dashboard.is_visible(), page.inner_text("main")


def set_up_ksc(
    page: Any,
    agent: AgentProcess,
    sandbox: dict[str, Any],
    *,
    names: list[str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Take the agent through a whole KSC setup (the named virtual servers, or all)
    to the dashboard; the new integration as the status API reports it."""
    before = {i["id"] for i in integrations(agent)}
    start_new_integration(page, agent)
    connect_ksc(page, sandbox)
    create_integration(page, sandbox, name)
    add_tenants(page, names)
    map_best_guesses(page)
    return new_integration(agent, before)


def set_up_kbh(
    page: Any,
    agent: AgentProcess,
    sandbox: dict[str, Any],
    *,
    names: list[str] | None = None,
    name: str | None = None,
    console: str = "production",
) -> dict[str, Any]:
    """Take the agent through a whole Business Hub setup (the named companies, or
    all) to the dashboard; the new integration as the status API reports it."""
    before = {i["id"] for i in integrations(agent)}
    start_new_integration(page, agent)
    connect_kbh(page, sandbox, console)
    create_integration(page, sandbox, name)
    add_tenants(page, names)
    map_best_guesses(page)
    return new_integration(agent, before)


def new_integration(agent: AgentProcess, before: set[str]) -> dict[str, Any]:
    """The one integration the status API lists that ``before`` did not hold."""
    [made] = [i for i in integrations(agent) if i["id"] not in before]
    return made


def integration_of(agent: AgentProcess, integration_id: str) -> dict[str, Any]:
    """One integration as the status API reports it now."""
    return next(i for i in integrations(agent) if i["id"] == integration_id)


def accounts_of(agent: AgentProcess, integration_id: str) -> dict[str, int]:
    """Server or company name to the number of the account it is mapped to."""
    tenants = integration_of(agent, integration_id)["tenants"]
    return {t["name"]: t["account"]["number"] for t in tenants if t["account"]}


def fleet_of(console: str) -> seed.Fleet:
    """A copy of a console's fleet as the agent's sandbox seeded it ("ksc" or a
    Business Hub server's name)."""
    return seed.make_fleet(console, TENANTS, SEED)


def expected_charges_of(
    fleet: seed.Fleet,
    accounts: dict[str, int],
    billed_under: dict[tuple[str, str], str],
    *,
    every_key: bool = False,
) -> dict[int, dict[str, int]]:
    """Per mapped account, the quantity of each item the seed says it uses (see
    setup_helpers.expected_charges), for the tenants in ``accounts`` only."""
    mapped = [tenant for tenant in fleet.tenants if tenant.name in accounts]
    part = seed.Fleet(tenants=mapped, next_event_id=fleet.next_event_id, rng=fleet.rng)
    return expected_charges(part, accounts, billed_under, every_key=every_key)


# The mapping grid.


def open_mapping(page: Any, agent: AgentProcess, integration_id: str) -> None:
    """Open an integration's mapping grid."""
    page.goto(f"{agent.base_url()}/integrations/{integration_id}/accounts")


def grid_row(page: Any, name: str) -> Any:
    """The mapping grid's row of a server or company."""
    return page.locator("tbody tr").filter(
        has=page.get_by_role("rowheader", name=name, exact=True)
    )


def choose_account(page: Any, name: str, account: str) -> None:
    """Type an account ("Name (number)", or "" for none) into a row of the grid."""
    field = page.get_by_label(f"Tigerpaw account of {name}", exact=True)
    field.fill(account)
    field.dispatch_event("change")


def choose_agreement(page: Any, name: str, agreement: int) -> None:
    """Pick an agreement (by number) in a grid row once its account's agreements
    are loaded."""
    select = page.get_by_label(f"Agreement of {name}", exact=True)
    select.focus()
    page.wait_for_function(
        "id => document.getElementById(id).dataset.loadedFor",
        arg=select.get_attribute("id"),
    )
    select.select_option(str(agreement))


# Settings and billing.


def open_settings(page: Any, agent: AgentProcess, integration_id: str) -> None:
    """Open an integration's Settings (service orders and price book items)."""
    page.goto(f"{agent.base_url()}/integrations/{integration_id}/settings")


def save_settings(page: Any) -> None:
    """Press Save on the Settings page and check they were kept."""
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "are saved" in page.inner_text("main"), page.inner_text("main")


def choose_items(
    page: Any,
    agent: AgentProcess,
    integration_id: str,
    items: dict[str, str],
    *,
    by_category: bool = False,
) -> None:
    """Choose the price book item of each application ("<application>" or
    "<application>/<category>") on the Settings page, and save."""
    open_settings(page, agent, integration_id)
    page.locator("#bill_by_category").set_checked(by_category)
    for key, item in items.items():
        page.locator(f'select[name="item::{key}"]').select_option(item)
    save_settings(page)


def open_billing(page: Any, agent: AgentProcess, integration_id: str) -> None:
    """Open an integration's billing preview."""
    page.goto(f"{agent.base_url()}/integrations/{integration_id}/billing")


def preview_sections(page: Any) -> dict[int, Any]:
    """The billing preview's section of each account, by account number."""
    found = {}
    for section in page.locator("section.preview").all():
        heading = section.locator("h2").inner_text()
        number = re.search(r"\((\d+)\)", heading)
        assert number, heading
        found[int(number.group(1))] = section
    return found


def preview_lines(section: Any) -> dict[str, dict[str, str]]:
    """One preview section's lines: item to its counted label, old and new
    quantity and rule, as the page shows them."""
    lines = {}
    for row in section.locator("tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        lines[row.locator("th").inner_text().strip()] = {
            "label": cells[0].strip(),
            "before": cells[1].strip(),
            "after": cells[2].strip(),
            "rule": cells[3].strip(),
        }
    return lines


def approve_billing(page: Any, agent: AgentProcess, integration_id: str) -> int:
    """Tick every account of the billing preview and approve; how many were."""
    open_billing(page, agent, integration_id)
    boxes = page.locator("input[name=approve]")
    count = boxes.count()
    for box in boxes.all():
        box.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Approve the ticked accounts").click()
    assert page.locator("input[name=approve]").count() == 0, page.inner_text("main")
    return count


# Syncs.


def sync_runs(agent: AgentProcess) -> dict[str, dict[str, Any]]:
    """The scheduler's view of each integration, by id."""
    return {i["id"]: i for i in agent.status()["sync"]["integrations"]}


def sync_all_and_wait(page: Any, agent: AgentProcess) -> dict[str, dict[str, Any]]:
    """Press the dashboard's Sync now and wait until every integration has finished
    a cycle started after it; the scheduler's view of each then."""
    idle = wait_until(
        lambda: (
            (runs := sync_runs(agent))
            and all(i["state"] != "running" for i in runs.values())
            and runs
        ),
        SYNC_TIMEOUT,
        "every integration to be idle before pressing Sync now",
    )
    page.goto(agent.base_url() + "/")
    # The status gives start times in whole seconds: so does the time of the press.
    pressed = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with page.expect_navigation():
        page.locator("section.sync").get_by_role("button", name="Sync now").click()

    def finished(runs: dict[str, dict[str, Any]]) -> bool:
        """Whether every integration ran a cycle started by this press."""
        return all(
            runs[key]["runs"] > before["runs"]
            and runs[key]["state"] != "running"
            and dt.datetime.fromisoformat(runs[key]["last_run"]) >= pressed
            for key, before in idle.items()
        )

    return wait_until(
        lambda: (runs := sync_runs(agent)) and finished(runs) and runs,
        SYNC_TIMEOUT,
        "the cycles started by Sync now to finish",
    )


def set_license_sync_time(page: Any, agent: AgentProcess, at: dt.datetime) -> str:
    """Set LicenseSyncTime to ``at``'s local time of day on the page's Settings of the
    config file; the value written (HH:MM)."""
    value = at.astimezone().strftime("%H:%M")
    page.goto(f"{agent.base_url()}/settings")
    page.get_by_label(re.compile(r"^LicenseSyncTime")).fill(value)
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    field = page.get_by_label(re.compile(r"^LicenseSyncTime"))
    assert field.input_value() == value, page.inner_text("main")
    wait_until(
        lambda: agent.status()["config"]["settings"]["LicenseSyncTime"] == value,
        10.0,
        f"LicenseSyncTime {value} in the status API",
    )
    return value
