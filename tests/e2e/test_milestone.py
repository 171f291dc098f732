"""The first milestone through the real page: a ``--sandbox`` agent set up in chromium,
syncing service orders and agreement charges into the Tigerpaw emulator.

One agent and one browser page serve the module; the tests run in order, each leaving
the agent where the next one starts, with screenshots of every step. What Tigerpaw
should hold is worked out from the sandbox's seed (the same seed and company count
give the same fleet in this process), with every change the tests send to the
Business Hub emulator replayed on it; never from what the agent wrote.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import pytest

from agent.sandbox import seed, tigerpaw_seed
from agent.sources.records import PROBLEM_DESCRIPTIONS
from tests.agent_process import AgentProcess
from tests.browser import chromium_page
from tests.e2e.setup_helpers import (
    KEY_FIELD,
    agreement_of,
    check_fleet_copy,
    expected_charges,
    expected_orders,
    fill_tigerpaw,
    integrations,
    kaspersky_charges,
    open_titles,
    our_orders,
    proceed,
    replay_changes,
    sandbox_state,
    shot,
    sync_now_and_wait,
    sync_status,
    use_every_suggestion,
    wait_for_agreements,
    wait_until,
    without_calls,
)
from tests.e2e.test_config_live import save_by_rename
from tests.features.flows import (
    BILLED_WHOLE,
    ENDPOINT_APP,
    O365_APP,
    SEED,
    SERVER_APP,
    TENANTS,
)

pytestmark = pytest.mark.browser

#: The price book choices made on the page: by category, where the endpoint's
#: workstations and phones fall back to the application's own item.
ITEM_CHOICES = {
    ENDPOINT_APP: "KL-KESB-WS",
    f"{ENDPOINT_APP}/server": "KL-KESB-SRV",
    SERVER_APP: "KL-KSWS",
    O365_APP: "KL-KSO365",
}
#: The item each seeded (application, device kind) is billed under by those choices:
#: as by one item per application, but for the endpoint's servers.
BILLED_UNDER = {**BILLED_WHOLE, (ENDPOINT_APP, seed.SERVER): "KL-KESB-SRV"}
#: Priority, type and board of the rows switched on; none is Tigerpaw's default.
EVENT_RULE = {"priority": "1 - Critical", "type": "Security Alert",
              "board": "Security Operations"}  # fmt: skip
STATUS_RULE = {"priority": "4 - Low", "type": "Break/Fix", "board": "Field Service"}
LIFETIME = dt.timedelta(days=1)
SYNC_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    """One sandboxed agent for the module."""
    process = AgentProcess(
        tmp_path_factory.mktemp("milestone"),
        "--sandbox",
        "--sandbox-tenants",
        str(TENANTS),
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def page(agent: AgentProcess):
    """One browser page for the module, signed in with the launch token."""
    with chromium_page() as browser_page:
        errors: list[str] = []
        browser_page.on("pageerror", lambda err: errors.append(str(err)))
        info = agent.agent_info()
        assert info is not None
        browser_page.goto(info["url"])
        yield browser_page
        assert not errors, f"Script errors on the page: {errors}"


@pytest.fixture(scope="module")
def sandbox(agent: AgentProcess) -> dict[str, Any]:
    """The sandbox's addresses and credentials."""
    return agent.sandbox_info()


@pytest.fixture(scope="module")
def fleet() -> seed.Fleet:
    """The production Business Hub's companies as the agent's sandbox seeded them."""
    return seed.make_fleet("production", TENANTS, SEED)


@pytest.fixture(scope="module")
def memo() -> dict[str, Any]:
    """What one step leaves for the next (orders seen, changes made)."""
    return {}


# What Tigerpaw should hold, from the seed.


def accounts_of(agent: AgentProcess) -> dict[str, int]:
    """Company name to the account number it is mapped to (from the status API)."""
    tenants = integrations(agent)[0]["tenants"]
    return {t["name"]: t["account"]["number"] for t in tenants if t["account"]}


def check_orders(state: dict[str, Any], expected: Counter[tuple[int, str]]) -> None:
    """One open, keyed order per expected problem; keys never repeat."""
    orders = our_orders(state)
    assert open_titles(orders) == expected
    keys = [o["custom_fields"][KEY_FIELD] for o in orders]
    assert len(set(keys)) == len(keys), "an order key is on two orders"
    for order in orders:
        assert order["custom_fields"][KEY_FIELD] == order["reference"]
        assert order["reference"].startswith("KSI-")


def check_synced_ok(agent: AgentProcess, status: dict[str, Any], tenants: int) -> None:
    """The cycle ended with every tenant OK and nothing left to send."""
    assert status["error"] is None, status
    assert [t["state"] for t in status["tenants"]] == ["ok"] * tenants, status
    assert status["pending_writes"] == 0, status
    for tenant in integrations(agent)[0]["tenants"]:
        assert tenant["last_sync"] and tenant["error"] is None, tenant


def open_settings(page: Any) -> None:
    """Open the integration's Settings from the dashboard."""
    with page.expect_navigation():
        page.locator("section.integration").first.get_by_role(
            "link", name="Settings"
        ).click()


def left_by(memo: dict[str, Any], step: str) -> Any:
    """What an earlier step kept, or a failure saying that step did not finish."""
    assert step in memo, f"The step that keeps '{step}' did not finish"
    return memo[step]


# The steps.


def test_business_hub_setup_with_every_company(
    page, agent, sandbox, fleet, artifacts_dir
) -> None:
    """Connect to Business Hub, create the integration, add every company and
    map each to its best-guess account and Managed Security agreement."""
    check_fleet_copy(sandbox["kbh"]["production"], fleet)
    assert page.url.endswith("/setup/connect")
    page.check("#source-kbh")
    kbh = sandbox["kbh"]["production"]
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", kbh["password"])
    shot(page, artifacts_dir, "1-connect")
    proceed(page)

    assert page.url.endswith("/setup/integration")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    shot(page, artifacts_dir, "2-create-integration")
    proceed(page)

    assert "/add" in page.url
    names = sorted(t.name for t in fleet.tenants)
    assert sorted(page.locator("#tenant-list label").all_inner_texts()) == names
    page.check("#select-all")
    assert page.locator("#tenant-list input:checked").count() == len(names)
    shot(page, artifacts_dir, "3-every-company")
    proceed(page)

    assert "/accounts" in page.url
    assert use_every_suggestion(page) == len(names)
    wait_for_agreements(page)
    for select in page.locator("select[id^=agreement-]").all():
        option = select.locator("option", has_text="Managed Security")
        assert option.count() == 1, select.inner_text()
        select.select_option(option.get_attribute("value"))
    assert page.locator("input[id^=billing-]:checked").count() == len(names)
    assert page.locator("input[id^=orders-]:checked").count() == len(names)
    shot(page, artifacts_dir, "4-mapping")
    proceed(page)

    assert page.get_by_role("heading", name="Dashboard").is_visible()
    tenants = integrations(agent)[0]["tenants"]
    assert {t["name"]: t["account"]["name"] for t in tenants} == {n: n for n in names}
    # The scheduler's first service order cycle ran when the integration was made;
    # the next is minutes away, so each later cycle is one that Sync now started.
    wait_until(lambda: sync_status(agent)["runs"] >= 1, 10.0, "the first cycle")
    shot(page, artifacts_dir, "5-dashboard")


def test_settings_and_billing_approval(page, agent, fleet, artifacts_dir) -> None:
    """Choose the rep, statuses, rules and price book items; the billing preview
    shows the seeded counts and every account is approved."""
    open_settings(page)
    whole = page.locator("select[id^='item::']:not([id*='/'])")
    listed = {s.get_attribute("id")[len("item::") :] for s in whole.all()}
    assert listed == {lic.product for t in fleet.tenants for lic in t.licenses}

    page.select_option("#rep", label="Kaspersky Integration")
    page.select_option("#new_status", "New")
    page.select_option("#closed_status", "Closed")
    page.check("#event-critical-enabled")
    for level in ("warning", "critical"):
        for problem in PROBLEM_DESCRIPTIONS:
            page.check(f"#status-{level}-{problem}-enabled")
    page.check("#bill_by_category")
    for name, item in ITEM_CHOICES.items():
        page.locator(f'select[name="item::{name}"]').select_option(item)
    shot(page, artifacts_dir, "6-settings")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert "are saved" in page.inner_text("main")
    assert page.locator("#status-critical-not_seen-enabled").is_checked()
    assert page.locator(f'select[name="item::{SERVER_APP}"]').input_value() == "KL-KSWS"

    page.goto(page.url.replace("/settings", "/billing"))
    expected = expected_charges(fleet, accounts_of(agent), BILLED_UNDER)
    previews = page.locator("section.preview")
    assert previews.count() == len(fleet.tenants)
    for preview in previews.all():
        heading = preview.locator("h2").inner_text()
        account = int(re.search(r"\((\d+)\)", heading).group(1))
        shown = {}
        for row in preview.locator("tbody tr").all():
            after = int(row.locator("td").nth(2).inner_text())
            if after:
                shown[row.locator("th").inner_text()] = after
        assert shown == expected[account], heading
    assert "Not billed" not in page.inner_text("main")
    shot(page, artifacts_dir, "7-billing-preview")
    for box in page.locator("input[name=approve]").all():
        box.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Approve the ticked accounts").click()
    assert f"Approved the billing of {len(fleet.tenants)} account" in page.inner_text(
        "main"
    )
    assert page.locator("input[name=approve]").count() == 0


def test_rule_rows_offer_tigerpaws_priorities_types_and_boards(
    page, agent, artifacts_dir
) -> None:
    """The rule rows offer Tigerpaw's priorities, types and boards, and keep the
    ones chosen."""
    page.goto(agent.base_url() + "/")
    open_settings(page)
    offered = {
        field: page.locator(f"#event-critical-{field} option").all_inner_texts()[1:]
        for field in ("priority", "type", "board")
    }
    shot(page, artifacts_dir, "7b-rule-rows")
    assert offered == {
        "priority": [p for p, _ in tigerpaw_seed.PRIORITIES],
        "type": [t for t, _ in tigerpaw_seed.ORDER_TYPES],
        "board": list(tigerpaw_seed.BOARDS),
    }, "the rows' Priority, Type and Board lists miss Tigerpaw's entries"

    rows = {"event-critical": EVENT_RULE}
    rows.update(
        {
            f"status-{level}-{problem}": STATUS_RULE
            for level in ("warning", "critical")
            for problem in PROBLEM_DESCRIPTIONS
        }
    )
    for row, rule in rows.items():
        for field, value in rule.items():
            page.select_option(f"#{row}-{field}", value)
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert "are saved" in page.inner_text("main")
    for row, rule in rows.items():
        for field, value in rule.items():
            assert page.locator(f"#{row}-{field}").input_value() == value


def test_sync_now_opens_one_order_per_problem_and_sets_the_charges(
    page, agent, sandbox, fleet, memo, artifacts_dir
) -> None:
    """Sync now opens one keyed order per problem and sets each agreement's
    charges to the seeded active-license counts."""
    tigerpaw = sandbox["tigerpaw"]["url"]
    before = sandbox_state(tigerpaw)
    assert our_orders(before) == []

    status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)

    check_synced_ok(agent, status, len(fleet.tenants))
    page.reload()
    assert page.locator("table.tenants .bad").count() == 0
    shot(page, artifacts_dir, "8-dashboard-after-sync")
    assert "Setup needed" not in page.inner_text("main"), "a notice outlived setup"
    state = sandbox_state(tigerpaw)
    accounts = accounts_of(agent)
    check_orders(state, expected_orders(fleet, accounts, LIFETIME))
    assert {o["status"] for o in our_orders(state)} == {"New"}
    # Old critical events (days ago) open nothing.
    now = dt.datetime.now(dt.UTC)
    old = [
        (accounts[t.name], f"{e.description} on {e.device_name}")
        for t in fleet.tenants
        for e in t.events
        if e.severity == "critical" and now - e.time > LIFETIME
    ]
    assert old and not set(old) & set(open_titles(our_orders(state)))

    charges, earlier = kaspersky_charges(state), kaspersky_charges(before)
    billed = expected_charges(fleet, accounts, BILLED_UNDER)
    every_key = expected_charges(fleet, accounts, BILLED_UNDER, every_key=True)
    assert billed != every_key, "the seed has devices on keys that do not count"
    for account, items in billed.items():
        agreement = agreement_of(state, account, "Managed Security")
        assert charges[agreement] == items, f"account {account}"
        others = [g["number"] for g in state["agreements"] if g["account"] == account]
        assert all(charges[g] == earlier[g] for g in others if g != agreement)
    other_accounts = set(charges) - {
        agreement_of(state, a, "Managed Security") for a in billed
    }
    assert all(charges[g] == earlier[g] for g in other_accounts)
    memo["first"] = state


def test_orders_carry_their_rows_priority_type_and_board(memo) -> None:
    """Each order has the priority, type and board of the row that opened it."""
    orders = our_orders(left_by(memo, "first"))
    problems = tuple(f"{text} on " for text in PROBLEM_DESCRIPTIONS.values())
    for order in orders:
        rule = STATUS_RULE if order["brief"].startswith(problems) else EVENT_RULE
        board = tigerpaw_seed.BOARDS.index(rule["board"]) + 1
        assert (order["priority"], order["type"], order["board"]) == (
            rule["priority"],
            rule["type"],
            board,
        ), order["brief"]


def test_hand_edit_of_the_config_applies_live(page, agent, artifacts_dir) -> None:
    """A hand edit of the config file reaches the status API, the log and the
    schedule while the agent runs."""
    original = agent.config_path.read_text(encoding="utf-8")
    assert 'key="ServiceOrderSyncMinutes" value="5"' in original

    for old, new in (("5", "7"), ("7", "5")):
        text = agent.config_path.read_text(encoding="utf-8")
        save_by_rename(
            agent.config_path,
            text.replace(
                f'key="ServiceOrderSyncMinutes" value="{old}"',
                f'key="ServiceOrderSyncMinutes" value="{new}"',
            ),
        )
        wait_until(
            lambda new=new: (
                agent.status()["config"]["settings"]["ServiceOrderSyncMinutes"] == new
            ),
            5.0,
            f"ServiceOrderSyncMinutes {new} in the status API",
        )
        wait_until(
            lambda old=old, new=new: (
                f"ServiceOrderSyncMinutes: {old} -> {new}" in agent.output()
            ),
            5.0,
            f"'ServiceOrderSyncMinutes: {old} -> {new}' in the agent's log",
        )
        status = sync_status(agent)
        gap = dt.datetime.fromisoformat(status["next_run"]) - dt.datetime.fromisoformat(
            status["last_run"]
        )
        assert gap == dt.timedelta(minutes=int(new)), "the schedule follows the file"
        page.goto(agent.base_url() + "/")
        shot(page, artifacts_dir, f"9-config-{new}-minutes")
    assert agent.config_path.read_text(encoding="utf-8") == original
    assert agent.status()["config"]["ok"]


def raise_critical(
    production: dict[str, Any], fleet: seed.Fleet, tenant: seed.Tenant, device_id: str
) -> seed.Event:
    """A new critical event on a device, in the emulator and in our copy."""
    payload = {"tenant": tenant.name, "severity": "critical", "device": device_id}
    done = replay_changes(production, fleet, {"events": [payload]})
    return next(e for e in tenant.events if e.id == done["events"][0]["id"])


def titled(orders: list[dict[str, Any]], account: int, title: str) -> list[dict]:
    """The orders (open or closed) of an account with a title."""
    return [o for o in orders if (o["account"], o["brief"]) == (account, title)]


def test_changes_open_note_and_close_orders_without_duplicates(
    page, agent, sandbox, fleet, memo, artifacts_dir
) -> None:
    """New events open orders, a repeat becomes a note, a cleared problem's order
    closes, and no order is doubled."""
    production, accounts = sandbox["kbh"]["production"], accounts_of(agent)
    first = our_orders(left_by(memo, "first"))
    check_fleet_copy(production, fleet)

    # A repeat: the same kind of event again on a device with an open event order.
    now = dt.datetime.now(dt.UTC)
    tenant, event = next(
        (t, e)
        for t in fleet.tenants
        for e in t.events
        if e.severity == "critical" and now - e.time <= LIFETIME
    )
    repeat_title = f"{event.description} on {event.device_name}"
    [repeated] = titled(first, accounts[tenant.name], repeat_title)
    for _ in range(30):
        if (
            raise_critical(production, fleet, tenant, event.device_id).type
            == event.type
        ):
            break
    else:
        pytest.fail("The emulator never raised the same kind of event again")

    # A new event on a device without any order.
    busy = {(o["account"], o["brief"].rsplit(" on ", 1)[1]) for o in first}
    quiet_tenant, quiet = next(
        (t, d)
        for t in fleet.tenants
        for d in t.devices
        if (accounts[t.name], d.name) not in busy
    )
    new_event = raise_critical(production, fleet, quiet_tenant, quiet.id)
    new_title = f"{new_event.description} on {quiet.name}"

    # A device problem with an open order clears.
    sick_tenant, sick = next(
        (t, d) for t in fleet.tenants for d in t.devices if d.problems
    )
    problem = sorted(sick.problems)[0]
    cleared_title = f"{PROBLEM_DESCRIPTIONS[problem]} on {sick.name}"
    [cleared] = titled(first, accounts[sick_tenant.name], cleared_title)
    change = {"tenant": sick_tenant.name, "device": sick.id, "clear": [problem]}
    replay_changes(production, fleet, {"problems": [change]})
    check_fleet_copy(production, fleet)

    status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)

    check_synced_ok(agent, status, len(fleet.tenants))
    shot(page, artifacts_dir, "10-dashboard-after-changes")
    state = sandbox_state(sandbox["tigerpaw"]["url"])
    orders = our_orders(state)
    check_orders(state, expected_orders(fleet, accounts, LIFETIME))
    by_number = {o["number"]: o for o in orders}
    kept = [by_number.get(o["number"], {}).get("custom_fields") for o in first]
    assert kept == [o["custom_fields"] for o in first], "an order lost its key"

    assert titled(orders, repeated["account"], repeat_title) == [
        by_number[repeated["number"]]
    ], "a repeat opened a second order"
    notes = [n["text"] for n in by_number[repeated["number"]]["notes"]]
    assert len(notes) == 1 and "occurrences since this order was opened" in notes[0]

    [opened] = titled(orders, accounts[quiet_tenant.name], new_title)
    assert not opened["closed"] and opened["number"] not in {o["number"] for o in first}

    closed = by_number[cleared["number"]]
    assert titled(orders, cleared["account"], cleared_title) == [closed]
    assert closed["closed"] and closed["status"] == "Closed"
    assert any("no longer applies" in n["text"] for n in closed["notes"])
    still_open = [o["number"] for o in first if o["number"] != cleared["number"]]
    assert not any(by_number[n]["closed"] for n in still_open)
    memo["second"] = state


def test_a_third_sync_writes_nothing(
    page, agent, sandbox, fleet, memo, artifacts_dir
) -> None:
    """With nothing new, Sync now changes nothing in Tigerpaw."""
    status = sync_now_and_wait(page, agent, SYNC_TIMEOUT)

    check_synced_ok(agent, status, len(fleet.tenants))
    state = sandbox_state(sandbox["tigerpaw"]["url"])
    assert without_calls(state) == without_calls(left_by(memo, "second"))
    shot(page, artifacts_dir, "11-dashboard-third-sync")
