"""Helpers for the setup page's browser tests: fields, errors, screenshots, state."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from agent.sandbox import seed
from agent.sources.records import PROBLEM_DESCRIPTIONS
from agent.sync.bootstrap import FIELD_CATEGORY, KEY_FIELD_LABEL
from tests.agent_process import AgentProcess

#: The marker of the sandbox's credential panel, shown only with --sandbox.
SANDBOX_PANEL = re.compile(r'<details class="sandbox".*?</details>', re.DOTALL)
#: Where Tigerpaw's state shows the key the agent keeps on each of its orders.
KEY_FIELD = f"{FIELD_CATEGORY}/{KEY_FIELD_LABEL}"
#: The window sizes every page must read well at: a laptop's, and a small one.
SIZES = ((1280, 800), (800, 600))


def shot(page: Any, folder: Path, name: str) -> None:
    """Save a full-page screenshot of the current step."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def proceed(page: Any) -> None:
    """Press Proceed and wait for the next page."""
    with page.expect_navigation():
        page.get_by_role("button", name="Proceed").click()


def error_of(page: Any, field: str) -> str:
    """The error shown beside a field ("" when there is none)."""
    found = page.locator(f"#{field}-error")
    return found.inner_text() if found.count() else ""


def value_of(page: Any, field: str) -> str:
    """What a field holds now."""
    return str(page.locator(f"#{field}").input_value())


def sandbox_state(url: str) -> dict[str, Any]:
    """An emulator's ``/_sandbox/state``."""
    reply = requests.get(f"{url}/_sandbox/state", timeout=10)
    reply.raise_for_status()
    return dict(reply.json())


def fill_tigerpaw(page: Any, tigerpaw: dict[str, Any], **overrides: str) -> None:
    """Fill the Create integration page from the sandbox's Tigerpaw credentials."""
    values = {
        "api_url": tigerpaw["url"],
        "soap_user": tigerpaw["soap_user"],
        "soap_password": tigerpaw["soap_password"],
        "public_key": tigerpaw["public_key"],
        "private_key": tigerpaw["private_key"],
        **overrides,
    }
    for field, value in values.items():
        page.fill(f"#{field}", value)


def use_every_suggestion(page: Any) -> int:
    """Press every "Use ..." best-guess button of the mapping grid; how many."""
    buttons = page.locator("button[data-fill]")
    count = buttons.count()
    for index in range(count):
        buttons.nth(index).click()
    return count


def wait_for_agreements(page: Any) -> None:
    """Wait until every row with an account has its agreements loaded."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('input[data-agreement]')]
            .filter(i => /\\(\\d+\\)$/.test(i.value))
            .map(i => document.querySelector(i.dataset.agreement))
            .every(select => select.dataset.loadedFor)"""
    )


def integrations(agent: AgentProcess) -> list[dict[str, Any]]:
    """The integrations the status API reports."""
    return list(agent.status()["integrations"])


def strip_sandbox_panel(html: str) -> str:
    """A page without the sandbox's credential panel (which lists test passwords)."""
    return SANDBOX_PANEL.sub("", html)


def sync_status(agent: AgentProcess, index: int = 0) -> dict[str, Any]:
    """The scheduler's view of one integration (its runs, state and tenants)."""
    return dict(agent.status()["sync"]["integrations"][index])


def sync_now_and_wait(page: Any, agent: AgentProcess, timeout: float = 60.0) -> dict:
    """Press the dashboard's "Sync now", wait until that cycle has finished, and
    return the scheduler's view of the first integration after it."""
    idle = wait_until(
        lambda: (s := sync_status(agent))["state"] != "running" and s,
        timeout,
        "the sync to be idle before pressing Sync now",
    )
    page.goto(agent.base_url() + "/")
    with page.expect_navigation():
        page.locator("section.sync").get_by_role("button", name="Sync now").click()
    assert "A sync cycle was started" in page.inner_text("main")
    return wait_until(
        lambda: (
            (s := sync_status(agent))["runs"] > idle["runs"]
            and s["state"] != "running"
            and s
        ),
        timeout,
        "the cycle started by Sync now to finish",
    )


def wait_until(check: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy, which is returned; fails
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"Waited {timeout:.0f} s for {what}")


def post_sandbox_events(emulator: dict[str, Any], payload: dict[str, Any]) -> dict:
    """``POST /_sandbox/events`` to an emulator of ``sandbox.json`` (its ``url``,
    and its ``cert`` when it speaks HTTPS); what the emulator says it did."""
    reply = requests.post(
        f"{emulator['url']}/_sandbox/events",
        json=payload,
        timeout=10,
        verify=emulator.get("cert", True),
    )
    reply.raise_for_status()
    return dict(reply.json())


def emulator_state(emulator: dict[str, Any]) -> dict[str, Any]:
    """``/_sandbox/state`` of an emulator of ``sandbox.json`` (trusting its ``cert``
    when it speaks HTTPS)."""
    reply = requests.get(
        f"{emulator['url']}/_sandbox/state",
        timeout=10,
        verify=emulator.get("cert", True),
    )
    reply.raise_for_status()
    return dict(reply.json())


# The sandbox's seed beside the emulators: what the sync should have written.


def replay_changes(
    emulator: dict[str, Any], fleet: seed.Fleet, payload: dict[str, Any]
) -> dict[str, Any]:
    """Send changes to a console emulator and apply them to a copy of its fleet made
    with the same seed; both must have done the same (event ids, devices, problems)."""
    done = post_sandbox_events(emulator, payload)
    assert seed.apply_changes(fleet, payload) == done
    return done


def check_fleet_copy(emulator: dict[str, Any], fleet: seed.Fleet) -> None:
    """A copy of a fleet has the Business Hub emulator's companies, with as many
    devices, keys and events."""
    held = emulator_state(emulator)["companies"]
    ours = [
        {
            "id": t.uid,
            "name": t.name,
            "devices": len(t.devices),
            "licenses": len(t.licenses),
            "events": len(t.events),
        }
        for t in fleet.tenants
    ]
    assert [{k: c[k] for k in ours[0]} for c in held] == ours


def expected_orders(
    fleet: seed.Fleet, accounts: dict[str, int], lifetime: dt.timedelta
) -> Counter[tuple[int, str]]:
    """(account, title) of every open problem with every rule on: each device
    problem, and each (device, event type) with a critical event within the
    lifetime."""
    now = dt.datetime.now(dt.UTC)
    expected: Counter[tuple[int, str]] = Counter()
    for tenant in fleet.tenants:
        account = accounts[tenant.name]
        for device in tenant.devices:
            for problem in device.problems:
                title = f"{PROBLEM_DESCRIPTIONS[problem]} on {device.name}"
                expected[(account, title)] = 1
        for event in tenant.events:
            if event.severity == "critical" and now - event.time <= lifetime:
                expected[(account, f"{event.description} on {event.device_name}")] = 1
    return expected


def expected_charges(
    fleet: seed.Fleet,
    accounts: dict[str, int],
    billed_under: dict[tuple[str, str], str],
    *,
    every_key: bool = False,
) -> dict[int, dict[str, int]]:
    """Per account, the quantity of each item (zero lines left out), where
    ``billed_under`` names the item of each (application, device kind or "mailbox");
    ``every_key`` counts devices on expired, trial and suspended keys as well."""
    expected: dict[int, dict[str, int]] = {}
    for tenant in fleet.tenants:
        usage = usage_on_every_key(tenant) if every_key else tenant.billable_usage()
        quantities: Counter[str] = Counter()
        for (product, kind), count in usage.items():
            quantities[billed_under[(product, kind)]] += count
        expected[accounts[tenant.name]] = {i: n for i, n in quantities.items() if n}
    return expected


def usage_on_every_key(tenant: seed.Tenant) -> Counter[tuple[str, str]]:
    """Devices per (application, kind) whatever their key, and every mailbox."""
    usage: Counter[tuple[str, str]] = Counter()
    products = {lic.serial: lic.product for lic in tenant.licenses}
    for device in tenant.devices:
        if device.license_serial in products:
            usage[(products[device.license_serial], device.kind)] += 1
    for lic in tenant.licenses:
        if lic.mailboxes_used:
            usage[(lic.product, "mailbox")] += lic.mailboxes_used
    return usage


# What the Tigerpaw emulator's state holds.


def our_orders(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The service orders that carry the agent's key."""
    return [o for o in state["service_orders"] if o["custom_fields"].get(KEY_FIELD)]


def open_titles(orders: list[dict[str, Any]]) -> Counter[tuple[int, str]]:
    """(account, title) of the open orders, counted."""
    return Counter((o["account"], o["brief"]) for o in orders if not o["closed"])


def kaspersky_charges(state: dict[str, Any]) -> dict[int, dict[str, int]]:
    """Agreement number to {item: quantity} of its Kaspersky lines (zeros left out)."""
    return {
        g["number"]: {
            c["item_id"]: c["quantity"]
            for c in g["charges"]
            if c["item_id"].startswith("KL-") and c["quantity"]
        }
        for g in state["agreements"]
    }


def agreement_of(state: dict[str, Any], account: int, kind: str) -> int:
    """The number of an account's agreement of a type ("Managed Security")."""
    return next(
        g["number"]
        for g in state["agreements"]
        if g["account"] == account and g["type"] == kind
    )


def without_calls(state: dict[str, Any]) -> dict[str, Any]:
    """An emulator's state without its request counters."""
    return {k: v for k, v in state.items() if k != "calls"}


def assert_fits_and_labelled(page: Any, where: str, width: int, height: int) -> None:
    """Check the page shown does not scroll sideways at this window size and has a
    label on every visible input and select; ``where`` names it in the failure."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{where} scrolls sideways at {width}x{height}"

    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select')]
            .filter(e => e.type !== 'hidden' && !e.labels?.length)
            .map(e => e.id || e.name)"""
    )
    assert unlabelled == [], f"{where}: inputs without a label {unlabelled}"


def focused(page: Any) -> dict[str, str]:
    """The focused element: its id, tag, text and outline (the visible focus ring)."""
    return dict(
        page.evaluate(
            """() => {
                const e = document.activeElement;
                const style = getComputedStyle(e);
                return {id: e.id, tag: e.tagName, text: (e.innerText || '').trim(),
                        outline: style.outlineStyle, width: style.outlineWidth};
            }"""
        )
    )


def submit_by_enter(page: Any) -> None:
    """Press Enter on the focused control and wait for the next page."""
    with page.expect_navigation():
        page.keyboard.press("Enter")
