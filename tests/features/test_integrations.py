"""FEATURES.md, "Integrations": one test per line, in Debian's chromium.

One sandboxed agent and one page serve the module; the tests run in order and build
on each other: the first walks the first start with KSC (and restarts the agent),
the second edits that integration, makes and removes a Business Hub one, and renames
the first (which frees the default name for the third).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.setup_helpers import (
    emulator_state,
    error_of,
    integrations,
    proceed,
    shot,
    value_of,
    without_calls,
)
from tests.features.flows import (
    add_tenants,
    connect_kbh,
    connect_ksc,
    create_integration,
    ksc_address,
    map_best_guesses,
    start_new_integration,
)

pytestmark = pytest.mark.browser

DEFAULT_NAME = "Integration with Tigerpaw"
SETUP_STEPS = [
    "Connect",
    "Create integration",
    "Add servers or companies",
    "Map to Tigerpaw accounts",
]
KSC_SERVERS = [
    "Contoso Dental",
    "Fabrikam Dental",
    "Litware Dental",
    "Northwind Dental",
    "Tailspin Dental",
]
#: The first integration's name once the second test renames it.
RENAMED = "Main office KSC"
#: The Create integration page's fields, by id, with their labels.
TIGERPAW_FIELDS = {
    "platform": "Select platform",
    "name": "Integration name",
    "api_url": "Tigerpaw API address",
    "soap_user": "SOAP user name",
    "soap_password": "SOAP password",
    "public_key": "REST public key",
    "private_key": "REST private key",
}


def current_step(page: Any) -> str:
    """The setup step the page's step bar marks as current, without its number."""
    text = page.locator("ol.steps [aria-current=step]").inner_text()
    return text.split(". ", 1)[1]


def step_names(page: Any) -> list[str]:
    """Every step the step bar lists, without numbers."""
    texts = page.locator("ol.steps li").all_inner_texts()
    return [text.split(". ", 1)[1] for text in texts]


def calls_to(emulator: dict[str, Any]) -> int:
    """How many requests an emulator has answered so far."""
    return sum(emulator_state(emulator)["calls"].values())


def open_properties(page: Any, agent: Any, name: str) -> None:
    """Follow the integration's name on the dashboard to its properties."""
    page.goto(agent.base_url() + "/")
    with page.expect_navigation():
        page.locator("section.integration").get_by_role(
            "link", name=name, exact=True
        ).click()
    assert page.get_by_role("heading", level=1).inner_text() == name


def test_first_start_walks_the_setup_and_later_starts_open_the_dashboard(
    page, agent, sandbox, artifacts_dir
) -> None:
    """The first start walks the setup (connect, create integration, add servers or
    companies, map)."""
    assert page.url.endswith("/setup/connect"), "the first start opens the setup"
    assert step_names(page) == SETUP_STEPS
    assert current_step(page) == "Connect"
    shot(page, artifacts_dir, "1-first-start-connect")

    connect_ksc(page, sandbox)
    assert current_step(page) == "Create integration"
    assert value_of(page, "name") == DEFAULT_NAME
    create_integration(page, sandbox)
    assert current_step(page) == "Add servers or companies"
    assert sorted(page.locator("#tenant-list label").all_inner_texts()) == KSC_SERVERS
    shot(page, artifacts_dir, "2-add-servers")
    assert add_tenants(page) == KSC_SERVERS
    assert current_step(page) == "Map to Tigerpaw accounts"
    shot(page, artifacts_dir, "3-map")
    map_best_guesses(page)
    shot(page, artifacts_dir, "4-dashboard")

    [made] = integrations(agent)
    assert made["name"] == DEFAULT_NAME and made["source"] == "ksc"
    assert sorted(t["name"] for t in made["tenants"]) == KSC_SERVERS
    assert all(t["account"] for t in made["tenants"]), made["tenants"]

    # Creating happens once: the create step is not offered again.
    page.goto(agent.base_url() + "/setup/integration")
    assert page.url.endswith("/setup/connect"), page.url
    page.goto(agent.base_url() + "/")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert [i["id"] for i in integrations(agent)] == [made["id"]]

    # A later start opens the dashboard, with the same integration.
    agent.stop()
    info = agent.start()
    page.goto(info["url"])
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert "/setup/" not in page.url
    assert page.locator("ol.steps").count() == 0, "no setup step on a later start"
    [again] = integrations(agent)
    assert (again["id"], again["name"]) == (made["id"], made["name"])
    assert {t["name"]: t["account"] for t in again["tenants"]} == {
        t["name"]: t["account"] for t in made["tenants"]
    }
    shot(page, artifacts_dir, "5-later-start-dashboard")


def test_name_links_to_properties_edit_new_integration_and_delete(
    page, agent, sandbox, artifacts_dir
) -> None:
    """The integration's name is a link to its properties: edit (connection and
    Tigerpaw settings, re-checked), create another integration ("New integration",
    blank fields), delete (asks first; deletes nothing in Tigerpaw or Kaspersky)."""
    [first] = integrations(agent)
    open_properties(page, agent, DEFAULT_NAME)
    assert page.url.endswith(f"/integrations/{first['id']}")
    assert ksc_address(sandbox) in page.inner_text("main")
    shot(page, artifacts_dir, "1-properties")

    # Edit the connection: checked against KSC again, a wrong password kept nowhere.
    with page.expect_navigation():
        page.get_by_role("link", name="Edit connection").click()
    assert value_of(page, "ksc_address") == ksc_address(sandbox)
    assert value_of(page, "ksc_user") == sandbox["ksc"]["user"]
    assert value_of(page, "ksc_password") == ""
    asked = calls_to(sandbox["ksc"])
    page.fill("#ksc_password", "Wrong-password-9")
    proceed(page)
    assert (
        "password"
        in (error_of(page, "ksc_password") + error_of(page, "ksc_user")).lower()
    ), page.inner_text("main")
    assert calls_to(sandbox["ksc"]) > asked, "the edit was not re-checked"
    shot(page, artifacts_dir, "2-edit-connection-refused")
    asked = calls_to(sandbox["ksc"])
    page.fill("#ksc_password", "")
    proceed(page)
    assert "checked and saved" in page.inner_text("main")
    assert calls_to(sandbox["ksc"]) > asked, "the saved password was not re-checked"

    # New integration: blank fields, nothing carried over from the first.
    page.goto(agent.base_url() + "/")
    with page.expect_navigation():
        page.get_by_role("link", name="New integration").click()
    assert page.url.split("?")[0].endswith("/setup/connect")
    for field in ("ksc_address", "ksc_user", "ksc_password"):
        assert value_of(page, field) == "", field
    page.check("#source-kbh")
    for field in ("kbh_email", "kbh_password"):
        assert value_of(page, field) == "", field
    connect_kbh(page, sandbox)
    for field in ("name", "soap_user", "soap_password", "public_key", "private_key"):
        assert value_of(page, field) == "", field
    shot(page, artifacts_dir, "3-new-integration-blank")
    create_integration(page, sandbox, "Second integration")
    add_tenants(page, ["Adventure Dental", "Alpine Dental"])
    map_best_guesses(page)
    assert len(integrations(agent)) == 2
    with page.expect_navigation():
        page.get_by_role(
            "button", name="Create test service order for Alpine Dental"
        ).click()
    assert "was created" in page.inner_text("main"), page.inner_text("main")

    # Delete asks first; Cancel keeps the integration.
    tigerpaw, kbh = sandbox["tigerpaw"], sandbox["kbh"]["production"]
    held = without_calls(emulator_state(tigerpaw))
    companies = emulator_state(kbh)["companies"]
    assert any(
        o["brief"].startswith("Test service order") for o in held["service_orders"]
    )
    open_properties(page, agent, "Second integration")
    with page.expect_navigation():
        page.get_by_role("link", name="Remove integration").click()
    assert "Remove the integration Second integration?" in page.inner_text("h1")
    assert "Nothing is deleted in Tigerpaw" in page.inner_text("main")
    assert len(integrations(agent)) == 2, "asking removed nothing"
    shot(page, artifacts_dir, "4-delete-asks-first")
    with page.expect_navigation():
        page.get_by_role("link", name="Cancel").click()
    assert len(integrations(agent)) == 2
    with page.expect_navigation():
        page.get_by_role("link", name="Remove integration").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Remove integration").click()
    assert "is removed" in page.inner_text("main")
    assert [i["name"] for i in integrations(agent)] == [DEFAULT_NAME]
    assert without_calls(emulator_state(tigerpaw)) == held, "Tigerpaw was changed"
    assert emulator_state(kbh)["companies"] == companies, "Business Hub was changed"
    shot(page, artifacts_dir, "5-deleted")

    # Edit the Tigerpaw settings: checked again, then saved with the new name.
    open_properties(page, agent, DEFAULT_NAME)
    with page.expect_navigation():
        page.get_by_role("link", name="Edit name and Tigerpaw settings").click()
    assert value_of(page, "name") == DEFAULT_NAME
    assert value_of(page, "api_url") == tigerpaw["url"]
    assert value_of(page, "soap_user") == tigerpaw["soap_user"]
    assert value_of(page, "public_key") == tigerpaw["public_key"]
    assert value_of(page, "soap_password") == value_of(page, "private_key") == ""
    checks = calls_to(tigerpaw)
    page.fill("#name", RENAMED)
    page.fill("#soap_password", "Wrong-soap-password-9")
    proceed(page)
    assert error_of(page, "soap_password"), page.inner_text("main")
    assert calls_to(tigerpaw) > checks, "the Tigerpaw settings were not re-checked"
    assert [i["name"] for i in integrations(agent)] == [DEFAULT_NAME]
    shot(page, artifacts_dir, "6-edit-tigerpaw-refused")
    checks = calls_to(tigerpaw)
    page.fill("#name", RENAMED)
    proceed(page)
    assert "settings are saved" in page.inner_text("main"), page.inner_text("main")
    assert calls_to(tigerpaw) > checks
    assert [i["name"] for i in integrations(agent)] == [RENAMED]
    assert page.get_by_role("heading", level=1).inner_text() == RENAMED


def test_fields_are_all_required_and_business_hub_shows_the_integration_id(
    page, agent, sandbox, artifacts_dir
) -> None:
    """Fields: Select platform (Tigerpaw), Integration name (default "Integration
    with Tigerpaw"), Tigerpaw API address, SOAP user name, SOAP password, REST
    public key, REST private key."""
    start_new_integration(page, agent)
    connect_kbh(page, sandbox)
    for field, label in TIGERPAW_FIELDS.items():
        found = page.get_by_label(label, exact=True)
        assert found.get_attribute("id") == field, label
    platform = page.locator("#platform option").all_inner_texts()
    assert [text.strip() for text in platform] == ["Tigerpaw"]
    assert value_of(page, "name") == DEFAULT_NAME, "the default name is free again"
    shot(page, artifacts_dir, "1-create-integration-fields")

    # All required: each one left blank is named beside it, nothing is saved.
    page.fill("#name", "")
    page.fill("#api_url", "")
    page.evaluate(
        """() => {
            const select = document.getElementById('platform');
            select.add(new Option('', ''), 0);
            select.value = '';
        }"""
    )
    proceed(page)
    for field, label in TIGERPAW_FIELDS.items():
        assert error_of(page, field), f"no error beside {label}"
    assert len(integrations(agent)) == 1
    shot(page, artifacts_dir, "2-all-required")

    # Business Hub: the ID shown is the one the integration keeps.
    page.get_by_text("View integration ID").click()
    shown = page.locator("#integration-id").inner_text().strip()
    assert uuid.UUID(shown)
    page.fill("#name", DEFAULT_NAME)
    page.fill("#api_url", sandbox["tigerpaw"]["url"])
    create_integration(page, sandbox)
    made = next(i for i in integrations(agent) if i["source"] == "kbh")
    assert made["id"] == shown
    page.goto(f"{agent.base_url()}/integrations/{shown}")
    page.get_by_text("View integration ID").click()
    assert page.locator("#integration-id").inner_text().strip() == shown
    shot(page, artifacts_dir, "3-integration-id")

    # KSC has no integration ID to show.
    ksc = next(i for i in integrations(agent) if i["source"] == "ksc")
    page.goto(f"{agent.base_url()}/integrations/{ksc['id']}")
    assert page.get_by_text("View integration ID").count() == 0
    page.goto(f"{agent.base_url()}/integrations/{ksc['id']}/tigerpaw")
    assert page.get_by_text("View integration ID").count() == 0
