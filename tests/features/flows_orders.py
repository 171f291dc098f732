"""Walks the service order and "around it" feature tests share: set up an
integration on the page, save its settings, read what Tigerpaw holds."""

from __future__ import annotations

from typing import Any

from agent.tigerpaw.client import TigerpawClient
from tests.agent_process import AgentProcess
from tests.e2e.setup_helpers import (
    emulator_state,
    fill_tigerpaw,
    integrations,
    our_orders,
    proceed,
    use_every_suggestion,
    wait_for_agreements,
)


def connect_ksc(page: Any, ksc: dict[str, Any]) -> None:
    """Connect to the KSC emulator by password, trusting its certificate."""
    page.check("#source-ksc")
    page.fill("#ksc_address", ksc["url"].split("://")[1])
    page.fill("#ksc_user", ksc["user"])
    page.fill("#ksc_password", ksc["password"])
    proceed(page)
    if page.url.endswith("/setup/certificate"):
        with page.expect_navigation():
            page.get_by_role("button", name="Trust this certificate").click()
    assert page.url.endswith("/setup/integration"), page.inner_text("main")


def connect_kbh(page: Any, kbh: dict[str, Any]) -> None:
    """Connect to a Business Hub emulator."""
    page.check("#source-kbh")
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", kbh["password"])
    proceed(page)
    assert page.url.endswith("/setup/integration"), page.inner_text("main")


def create_and_map_every_tenant(page: Any, tigerpaw: dict[str, Any]) -> None:
    """Create the integration, add every server or company and map each to its
    best-guess account and that account's Managed Security agreement."""
    fill_tigerpaw(page, tigerpaw)
    proceed(page)
    assert "/add" in page.url, page.inner_text("main")

    page.check("#select-all")
    proceed(page)
    assert "/accounts" in page.url, page.inner_text("main")

    use_every_suggestion(page)
    wait_for_agreements(page)
    for select in page.locator("select[id^=agreement-]").all():
        option = select.locator("option", has_text="Managed Security").first
        select.select_option(option.get_attribute("value"))
    proceed(page)
    assert page.get_by_role("heading", name="Dashboard").is_visible()


def accounts_of(agent: AgentProcess) -> dict[str, int]:
    """Tenant name to the number of the account it is mapped to."""
    tenants = integrations(agent)[0]["tenants"]
    return {t["name"]: t["account"]["number"] for t in tenants if t["account"]}


def open_settings(page: Any, agent: AgentProcess) -> None:
    """Open the first integration's Settings page."""
    integration = integrations(agent)[0]["id"]
    page.goto(f"{agent.base_url()}/integrations/{integration}/settings")


def save_settings(page: Any) -> None:
    """Press Save and check the settings were kept."""
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "are saved" in page.inner_text("main"), page.inner_text("main")


def orders(tigerpaw: dict[str, Any]) -> list[dict[str, Any]]:
    """The service orders the agent opened in the Tigerpaw emulator."""
    return our_orders(emulator_state(tigerpaw))


def titled(found: list[dict[str, Any]], account: int, title: str) -> list[dict]:
    """The orders (open or closed) of an account with a title."""
    return [o for o in found if (o["account"], o["brief"]) == (account, title)]


def tigerpaw_client(tigerpaw: dict[str, Any]) -> TigerpawClient:
    """A client of the Tigerpaw emulator with the integration's own keys, to read
    what the emulator's state does not list (the technician of an order)."""
    return TigerpawClient(
        tigerpaw["url"],
        tigerpaw["soap_user"],
        tigerpaw["soap_password"],
        tigerpaw["public_key"],
        tigerpaw["private_key"],
        asmx_url=tigerpaw["asmx_url"],
        attempts=1,
    )
