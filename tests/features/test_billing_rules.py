"""FEATURES.md, "Billing rules": one test per line, in Debian's chromium, against a
KSC integration (keys) and a Business Hub one (subscriptions) of one agent.

The tests run in order and build on each other. The preview line comes first,
because every other line writes charges, which needs the preview approved. What
Tigerpaw should hold is worked out from copies of the sandbox's fleets, with every
change the tests send to the consoles replayed on them; never from what the agent
wrote.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import pytest

from agent.sandbox import seed
from tests.e2e.setup_helpers import (
    agreement_of,
    emulator_state,
    kaspersky_charges,
    proceed,
    replay_changes,
    shot,
    wait_until,
    without_calls,
)
from tests.features.flows import (
    BILLED_WHOLE,
    ENDPOINT_APP,
    MANAGED_SECURITY,
    O365_APP,
    WHOLE_ITEMS,
    accounts_of,
    approve_billing,
    choose_agreement,
    choose_items,
    expected_charges_of,
    fleet_of,
    open_billing,
    open_mapping,
    preview_lines,
    preview_sections,
    set_license_sync_time,
    set_up_kbh,
    set_up_ksc,
    sync_all_and_wait,
    sync_runs,
)

pytestmark = pytest.mark.browser

KSC_NAME, KBH_NAME = "KSC clinics", "Business Hub clinics"
BACKUP_SERVICES = "Backup Services"
#: Office 365 is chosen only in the second test, so its lines are created there.
FIRST_ITEMS = {app: item for app, item in WHOLE_ITEMS.items() if app != O365_APP}
#: How long the daily run may take to come, at most: to the next minute and a cycle.
DAILY_WAIT = 150.0
NO_LINE = "(no line yet)"
#: A seeded device kind as the preview's rule counts it, in the singular.
KIND_WORDS = {
    seed.WORKSTATION: "workstation",
    seed.SERVER: "server",
    seed.MOBILE: "other device",
    "mailbox": "mailbox",
}
#: The preview's plural words for what it counted, in the singular.
SINGULAR = {
    "workstations": "workstation",
    "servers": "server",
    "other devices": "other device",
    "mailboxes": "mailbox",
}


@pytest.fixture(scope="module")
def fleets() -> dict[str, seed.Fleet]:
    """Copies of the KSC and production Business Hub fleets, by integration name."""
    return {KSC_NAME: fleet_of("ksc"), KBH_NAME: fleet_of("production")}


@pytest.fixture(scope="module")
def memo() -> dict[str, Any]:
    """What one test leaves for the next: integration ids by name, the items
    chosen, and the agreement chosen instead of Managed Security."""
    return {"items": dict(FIRST_ITEMS)}


def left_by(memo: dict[str, Any], key: str) -> Any:
    """What an earlier test kept, or a failure saying it did not get that far."""
    assert key in memo, f"The test that keeps '{key}' did not finish"
    return memo[key]


def expected_now(
    agent: Any, memo: dict[str, Any], fleets: dict[str, seed.Fleet], name: str
) -> dict[int, dict[str, int]]:
    """What each account of an integration should be billed now, from the seed:
    the applications with an item chosen so far."""
    accounts = accounts_of(agent, left_by(memo, name))
    expected = expected_charges_of(fleets[name], accounts, BILLED_WHOLE)
    chosen = set(memo["items"].values())
    return {
        account: {item: n for item, n in items.items() if item in chosen}
        for account, items in expected.items()
    }


def billing_agreement(state: dict[str, Any], memo: dict[str, Any], account: int) -> int:
    """The agreement chosen for an account's charges in the first test."""
    return left_by(memo, "chosen_agreements").get(
        account, agreement_of(state, account, MANAGED_SECURITY)
    )


def check_charges(
    agent: Any, memo: dict[str, Any], fleets: dict[str, seed.Fleet], sandbox: dict
) -> dict[str, Any]:
    """Tigerpaw holds, on each chosen agreement, one line per item with the seed's
    quantity, and no Kaspersky line on the other agreements; its state."""
    state = emulator_state(sandbox["tigerpaw"])
    charges = kaspersky_charges(state)
    chosen: set[int] = set()
    for name in fleets:
        for account, items in expected_now(agent, memo, fleets, name).items():
            agreement = billing_agreement(state, memo, account)
            chosen.add(agreement)
            assert charges[agreement] == items, f"account {account} ({name})"
    for agreement, lines in charges.items():
        assert agreement in chosen or not lines, f"agreement {agreement} was billed"
    for agreement in state["agreements"]:
        items = [c["item_id"] for c in agreement["charges"]]
        assert len(items) == len(set(items)), f"two lines of one item: {agreement}"
    return state


def history_charges(page: Any, agent: Any) -> list[dict[str, str]]:
    """The History page's charge changes, newest first: agreement, item, action
    and the change in words."""
    page.goto(f"{agent.base_url()}/history")
    found = []
    for row in page.locator("#history-rows tr").all():
        cells = [text.strip() for text in row.locator("td").all_inner_texts()]
        if len(cells) < 6:
            continue
        what = re.search(r"agreement (\d+) charge (\S+)", cells[3])
        if what:
            found.append(
                {
                    "agreement": what[1],
                    "item": what[2],
                    "action": cells[4],
                    "change": cells[5],
                }
            )
    return found


def billable_workstation(tenant: seed.Tenant) -> seed.Device:
    """A workstation of the tenant on its active commercial endpoint key."""
    key = next(
        lic for lic in tenant.licenses if lic.product == ENDPOINT_APP and lic.billable
    )
    return next(
        d
        for d in tenant.devices
        if d.kind == seed.WORKSTATION and d.license_serial == key.serial
    )


def endpoint_key(tenant: seed.Tenant, state: str = seed.ACTIVE) -> seed.License:
    """The tenant's commercial endpoint key or subscription in that state."""
    return next(
        lic
        for lic in tenant.licenses
        if lic.product == ENDPOINT_APP
        and lic.kind == "commercial"
        and lic.state == state
    )


def endpoint_quantity(state: dict[str, Any], agreement: int) -> int:
    """The endpoint line's quantity on an agreement (0 when it has none)."""
    return kaspersky_charges(state)[agreement].get(WHOLE_ITEMS[ENDPOINT_APP], 0)


def remove_device(
    console: dict[str, Any], fleet: seed.Fleet, tenant: seed.Tenant
) -> seed.Device:
    """Remove a billed workstation from a console and from our copy of its fleet."""
    device = billable_workstation(tenant)
    change = {"remove_devices": [{"tenant": tenant.name, "device": device.id}]}
    replay_changes(console, fleet, change)
    return device


def test_preview_approved_before_the_first_live_write_and_every_change_in_history(
    page, agent, sandbox, fleets, memo, artifacts_dir
) -> None:
    """A preview of old and new quantities per account, approved before the first
    live write (beyond); every change kept in history."""
    memo[KSC_NAME] = set_up_ksc(page, agent, sandbox, name=KSC_NAME)["id"]
    memo[KBH_NAME] = set_up_kbh(page, agent, sandbox, name=KBH_NAME)["id"]

    # One company bills on its account's other agreement, chosen in the grid.
    state = emulator_state(sandbox["tigerpaw"])
    integration, name, account = next(
        (memo[kind], tenant, number)
        for kind in fleets
        for tenant, number in sorted(accounts_of(agent, memo[kind]).items())
        if any(
            g["account"] == number and g["type"] == BACKUP_SERVICES
            for g in state["agreements"]
        )
    )
    backup = agreement_of(state, account, BACKUP_SERVICES)
    open_mapping(page, agent, integration)
    choose_agreement(page, name, backup)
    proceed(page)
    memo["chosen_agreements"] = {account: backup}
    for integration in (memo[KSC_NAME], memo[KBH_NAME]):
        choose_items(page, agent, integration, FIRST_ITEMS)

    # The preview: per account, no line yet and the seed's new quantities.
    before = emulator_state(sandbox["tigerpaw"])
    assert all(not lines for lines in kaspersky_charges(before).values())
    for name in fleets:
        open_billing(page, agent, memo[name])
        sections = preview_sections(page)
        expected = expected_now(agent, memo, fleets, name)
        assert set(sections) == set(expected)
        for account, items in expected.items():
            lines = preview_lines(sections[account])
            shown = {item: int(line["after"]) for item, line in lines.items()}
            assert {i: n for i, n in shown.items() if n} == items, account
            assert {line["before"] for line in lines.values()} == {NO_LINE}
            assert "not approved yet" in sections[account].inner_text()
        shot(page, artifacts_dir, f"1-preview-{name.split()[0].lower()}")

    # Not approved: a live run writes no charge and says it waits.
    runs = sync_all_and_wait(page, agent)
    state = emulator_state(sandbox["tigerpaw"])
    assert kaspersky_charges(state) == kaspersky_charges(before)
    for name in fleets:
        tenants = runs[memo[name]]["tenants"]
        assert {t["state"] for t in tenants} == {"waiting_approval"}, tenants

    # Approved: the next run writes the previewed quantities.
    for name in fleets:
        approve_billing(page, agent, memo[name])
        shot(page, artifacts_dir, f"2-approved-{name.split()[0].lower()}")
    sync_all_and_wait(page, agent)
    state = check_charges(agent, memo, fleets, sandbox)
    open_billing(page, agent, memo[KSC_NAME])
    for section in preview_sections(page).values():
        meta = section.locator(".meta").inner_text()
        assert "approved" in meta and "not approved" not in meta, meta
        for line in preview_lines(section).values():
            assert line["before"] in (line["after"], NO_LINE), line

    # Every change is in the History page, with what it was before.
    written = {
        (str(g["number"]), item, quantity)
        for g in state["agreements"]
        for item, quantity in kaspersky_charges(state)[g["number"]].items()
    }
    kept = history_charges(page, agent)
    assert {(h["agreement"], h["item"]) for h in kept} == {
        (a, i) for a, i, _ in written
    }
    for agreement, item, quantity in written:
        [entry] = [h for h in kept if (h["agreement"], h["item"]) == (agreement, item)]
        assert entry["action"] == "charge created"
        assert entry["change"] == f"quantity {quantity} (was none)", entry
    shot(page, artifacts_dir, "3-history")


def test_daily_at_license_sync_time_and_on_demand_one_charge_per_application(
    page, agent, sandbox, fleets, memo, artifacts_dir
) -> None:
    """Daily (at `LicenseSyncTime`) and on demand."""
    ksc_fleet = fleets[KSC_NAME]
    state = emulator_state(sandbox["tigerpaw"])
    accounts = accounts_of(agent, left_by(memo, KSC_NAME))

    # On demand: a device goes and Office 365 gets an item; Sync now sets the
    # quantity (not adds to it) and creates the Office 365 lines that are missing.
    tenant = ksc_fleet.tenants[0]
    remove_device(sandbox["ksc"], ksc_fleet, tenant)
    memo["items"] = dict(WHOLE_ITEMS)
    for name in fleets:
        choose_items(page, agent, memo[name], memo["items"])
    office = [
        billing_agreement(state, memo, accounts_of(agent, memo[name])[t.name])
        for name, fleet in fleets.items()
        for t in fleet.tenants
        if any(lic.product == O365_APP for lic in t.licenses)
    ]
    assert office and all(
        "KL-KSO365" not in kaspersky_charges(state)[a] for a in office
    )
    sync_all_and_wait(page, agent)
    state = check_charges(agent, memo, fleets, sandbox)
    assert all("KL-KSO365" in kaspersky_charges(state)[a] for a in office)
    kept = history_charges(page, agent)
    agreement = str(billing_agreement(state, memo, accounts[tenant.name]))
    updated = [
        h for h in kept if h["agreement"] == agreement and h["item"] == "KL-KESB-WS"
    ]
    assert updated[0]["action"] == "charge updated", updated
    quantity = kaspersky_charges(state)[int(agreement)]["KL-KESB-WS"]
    assert updated[0]["change"] == f"quantity {quantity + 1} -> {quantity}"
    assert {h["action"] for h in kept if h["item"] == "KL-KSO365"} == {"charge created"}
    shot(page, artifacts_dir, "1-on-demand")

    # The chosen agreement carries the charges; the account's other one none.
    [(account, chosen)] = memo["chosen_agreements"].items()
    other = agreement_of(state, account, MANAGED_SECURITY)
    assert kaspersky_charges(state)[chosen] and not kaspersky_charges(state)[other]

    # Daily: at LicenseSyncTime the run comes by itself, with no Sync now.
    tenant = ksc_fleet.tenants[1]
    remove_device(sandbox["ksc"], ksc_fleet, tenant)
    now = dt.datetime.now().astimezone()
    at = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    if at - now < dt.timedelta(seconds=15):
        at += dt.timedelta(minutes=1)
    set_license_sync_time(page, agent, at)
    runs = sync_runs(agent)
    for integration in runs.values():
        assert dt.datetime.fromisoformat(integration["next_license_run"]) == at
    shot(page, artifacts_dir, "2-license-sync-time")
    agreement = billing_agreement(state, memo, accounts[tenant.name])
    expected = expected_now(agent, memo, fleets, KSC_NAME)[accounts[tenant.name]]
    wait_until(
        lambda: (
            kaspersky_charges(emulator_state(sandbox["tigerpaw"]))[agreement]
            == expected
        ),
        DAILY_WAIT,
        f"the daily billing run at {at:%H:%M} to set the charges",
        every=1.0,
    )
    assert dt.datetime.now().astimezone() >= at, "billed before LicenseSyncTime"
    later = sync_runs(agent)
    for key, integration in later.items():
        assert integration["runs"] > runs[key]["runs"]
        # Tomorrow at the same wall-clock time, whatever daylight saving does.
        following = dt.datetime.fromisoformat(integration["next_license_run"])
        assert following.astimezone().strftime("%Y-%m-%d %H:%M") == (
            (at + dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
        )
    check_charges(agent, memo, fleets, sandbox)


def test_counts_only_devices_on_unexpired_active_commercial_keys(
    page, agent, sandbox, fleets, memo, artifacts_dir
) -> None:
    """Counts only devices that use an unexpired, active, commercial key or
    subscription: no trial, expired, suspended or cancelled ones."""
    # The seed has devices on each kind of key that does not count.
    for fleet in fleets.values():
        keys = {lic.serial: lic for t in fleet.tenants for lic in t.licenses}
        used = [
            keys[device.license_serial]
            for tenant in fleet.tenants
            for device in tenant.devices
            if device.license_serial in keys
        ]
        kinds = {(lic.kind, lic.state, lic.billable) for lic in used}
        assert ("trial", "active", False) in kinds
        assert ("commercial", "expired", False) in kinds
        assert ("commercial", "suspended", False) in kinds
        assert ("commercial", "cancelled", False) in kinds

    state = check_charges(agent, memo, fleets, sandbox)
    charges = kaspersky_charges(state)
    for name, fleet in fleets.items():
        accounts = accounts_of(agent, left_by(memo, name))
        every_key = expected_charges_of(fleet, accounts, BILLED_WHOLE, every_key=True)
        assert any(
            charges[billing_agreement(state, memo, a)] != items
            for a, items in every_key.items()
        ), f"{name}: the seed has devices on keys that do not count"

        # The preview names, per application, the devices left out.
        open_billing(page, agent, memo[name])
        sections = preview_sections(page)
        for tenant in fleet.tenants:
            keys = {lic.serial: lic for lic in tenant.licenses}
            left_out = Counter(
                keys[d.license_serial].product
                for d in tenant.devices
                if d.license_serial in keys and not keys[d.license_serial].billable
            )
            said: Counter[str] = Counter()
            for text in (
                sections[accounts[tenant.name]].locator("p.hint").all_inner_texts()
            ):
                found = re.match(r"(\d+) device\S* of (.+?) on trial", text)
                if found:
                    said[found[2]] += int(found[1])
            assert said == left_out, tenant.name
        shot(page, artifacts_dir, f"preview-{name.split()[0].lower()}")

        # The seeded cancelled subscription: its devices are on no charge. The
        # endpoint line holds the active key's devices and none of the cancelled.
        tenant = next(
            t
            for t in fleet.tenants
            if any(lic.state == "cancelled" for lic in t.licenses)
        )
        agreement = billing_agreement(state, memo, accounts[tenant.name])
        live = tenant.devices_using(endpoint_key(tenant).serial)
        cancelled = tenant.devices_using(endpoint_key(tenant, "cancelled").serial)
        assert live and cancelled
        assert endpoint_quantity(state, agreement) == len(live)

    # A live key (KSC) and a live subscription (Business Hub) cancelled through the
    # sandbox: the next run drops each charge by exactly the devices on it.
    consoles = {KSC_NAME: sandbox["ksc"], KBH_NAME: sandbox["kbh"]["production"]}
    dropped = {}
    for name, fleet in fleets.items():
        accounts = accounts_of(agent, memo[name])
        # The last company: the recount test below still needs the first three.
        tenant = fleet.tenants[-1]
        key = endpoint_key(tenant)
        agreement = billing_agreement(state, memo, accounts[tenant.name])
        dropped[name] = (agreement, len(tenant.devices_using(key.serial)))
        assert (
            dropped[name][1] and endpoint_quantity(state, agreement) >= dropped[name][1]
        )
        change = {"cancel_licenses": [{"tenant": tenant.name, "license": key.serial}]}
        [done] = replay_changes(consoles[name], fleet, change)["cancelled"]
        assert (done["was"], done["devices"]) == ("active", dropped[name][1])
    sync_all_and_wait(page, agent)
    after = check_charges(agent, memo, fleets, sandbox)
    for agreement, devices in dropped.values():
        assert endpoint_quantity(after, agreement) == (
            endpoint_quantity(state, agreement) - devices
        )
        others = {
            item: n
            for item, n in kaspersky_charges(state)[agreement].items()
            if item != WHOLE_ITEMS[ENDPOINT_APP]
        }
        assert others.items() <= kaspersky_charges(after)[agreement].items()


def test_recount_from_scratch_each_run_by_stable_device_id_with_the_rule(
    page, agent, sandbox, fleets, memo, artifacts_dir
) -> None:
    """Recount from scratch each run, by stable device id (beyond: shown with the
    rule used)."""
    ksc_fleet = fleets[KSC_NAME]
    accounts = accounts_of(agent, left_by(memo, KSC_NAME))

    # Each run counts again: a device gone lowers the quantity by one, once.
    tenant = ksc_fleet.tenants[2]
    state = emulator_state(sandbox["tigerpaw"])
    agreement = billing_agreement(state, memo, accounts[tenant.name])
    before = kaspersky_charges(state)[agreement]["KL-KESB-WS"]
    remove_device(sandbox["ksc"], ksc_fleet, tenant)
    sync_all_and_wait(page, agent)
    state = check_charges(agent, memo, fleets, sandbox)
    assert kaspersky_charges(state)[agreement]["KL-KESB-WS"] == before - 1
    kept = history_charges(page, agent)

    # A run with nothing new writes nothing: the count is the same, not doubled.
    sync_all_and_wait(page, agent)
    again = check_charges(agent, memo, fleets, sandbox)
    assert without_calls(again)["agreements"] == without_calls(state)["agreements"]
    assert history_charges(page, agent) == kept

    # Renamed, and moved to another administration group of its virtual server (a
    # Business Hub device: renamed), a device keeps its id: it counts once, as before.
    device = billable_workstation(tenant)
    replay_changes(
        sandbox["ksc"],
        ksc_fleet,
        {
            "rename_devices": [
                {"tenant": tenant.name, "device": device.id, "name": "RECEPTION-PC"}
            ],
            "move_devices": [
                {"tenant": tenant.name, "device": device.id, "group": "Front office"}
            ],
        },
    )
    kbh_fleet = fleets[KBH_NAME]
    company = kbh_fleet.tenants[0]
    renamed = billable_workstation(company)
    replay_changes(
        sandbox["kbh"]["production"],
        kbh_fleet,
        {
            "rename_devices": [
                {"tenant": company.uid, "device": renamed.id, "name": "RECEPTION-PC"}
            ]
        },
    )
    sync_all_and_wait(page, agent)
    moved = check_charges(agent, memo, fleets, sandbox)
    assert without_calls(moved)["agreements"] == without_calls(state)["agreements"]
    assert history_charges(page, agent) == kept

    # Moved to another virtual server, it counts once, there: one less where it was.
    target = ksc_fleet.tenants[3]
    there = billing_agreement(state, memo, accounts[target.name])
    quantities = (endpoint_quantity(state, agreement), endpoint_quantity(state, there))
    assert agreement != there
    replay_changes(
        sandbox["ksc"],
        ksc_fleet,
        {
            "move_devices": [
                {"tenant": tenant.name, "device": device.id, "vserver": target.name}
            ]
        },
    )
    sync_all_and_wait(page, agent)
    state = check_charges(agent, memo, fleets, sandbox)
    assert endpoint_quantity(state, agreement) == quantities[0] - 1
    assert endpoint_quantity(state, there) == quantities[1] + 1

    # The preview shows each quantity with the rule that counted it.
    open_billing(page, agent, memo[KSC_NAME])
    sections = preview_sections(page)
    for tenant in ksc_fleet.tenants:
        usage = tenant.billable_usage()
        for item, line in preview_lines(sections[accounts[tenant.name]]).items():
            wanted: Counter[tuple[str, str]] = Counter()
            for (app, kind), count in usage.items():
                if BILLED_WHOLE.get((app, kind)) == item and count:
                    wanted[(app, KIND_WORDS[kind])] += count
            assert int(line["after"]) == sum(wanted.values()), (tenant.name, line)
            if not wanted:
                continue
            # Devices are counted by id; mailboxes as Business Hub counts them.
            if any(kind != "mailbox" for _, kind in wanted):
                assert "device id" in line["rule"], line
            counted: Counter[tuple[str, str]] = Counter()
            for count, words, app in re.findall(
                r"(\d+) ([a-z ]+?) of (.+?)(?:;| on )", line["rule"]
            ):
                counted[(app, SINGULAR.get(words, words))] += int(count)
            assert counted == wanted, (tenant.name, item, line["rule"])
    shot(page, artifacts_dir, "1-preview-with-rules")
