"""The Business Hub path of the setup, in Debian's chromium, from the first page on.

One sandboxed agent and one browser (tests/e2e/conftest.py) serve the module; the
tests run in order, each step leaving the page where the next one starts, with
screenshots of every step.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.e2e.setup_helpers import (
    error_of,
    fill_tigerpaw,
    integrations,
    proceed,
    sandbox_state,
    shot,
    use_every_suggestion,
    value_of,
    wait_for_agreements,
)

pytestmark = pytest.mark.browser


def test_first_page_is_connect_with_blank_field_errors(page, artifacts_dir) -> None:
    assert page.url.endswith("/setup/connect")
    assert page.get_by_role("heading", name="Connect").is_visible()
    page.check("#source-kbh")
    assert page.locator("#kbh-fields").is_visible()
    assert not page.locator("#ksc-fields").is_visible()
    shot(page, artifacts_dir, "1-connect-kbh")

    proceed(page)
    assert "Enter the email address" in error_of(page, "kbh_email")
    assert "Enter the password" in error_of(page, "kbh_password")
    assert page.locator("#kbh_email").get_attribute("aria-invalid") == "true"
    shot(page, artifacts_dir, "2-connect-blank-errors")

    page.fill("#kbh_email", "not-an-address")
    page.fill("#kbh_password", "whatever")
    proceed(page)
    assert "email address" in error_of(page, "kbh_email")
    assert value_of(page, "kbh_email") == "not-an-address"
    assert value_of(page, "kbh_password") == "", "passwords are never sent back"


def test_connector_error_is_shown_beside_the_field(
    page, sandbox, artifacts_dir
) -> None:
    kbh = sandbox["kbh"]["production"]
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", "Wrong-password-1")
    proceed(page)

    message = error_of(page, "kbh_password")
    assert "refused the email" in message and kbh["email"] in message
    assert value_of(page, "kbh_email") == kbh["email"], "the form keeps what was typed"
    assert value_of(page, "kbh_password") == ""
    assert "Wrong-password-1" not in page.content()
    shot(page, artifacts_dir, "3-connect-wrong-password")

    page.fill("#kbh_email", kbh["disabled_email"])
    page.fill("#kbh_password", kbh["disabled_password"])
    proceed(page)
    assert page.locator(".banner.error").count() >= 1
    assert "disabled" in page.inner_text("main").lower()
    shot(page, artifacts_dir, "4-connect-disabled-user")


def test_connect_then_create_integration_blank_errors(
    page, sandbox, artifacts_dir
) -> None:
    kbh = sandbox["kbh"]["production"]
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", kbh["password"])
    proceed(page)

    assert page.url.endswith("/setup/integration")
    assert value_of(page, "name") == "Integration with Tigerpaw"
    assert value_of(page, "api_url") == sandbox["tigerpaw"]["url"]
    assert page.locator("#platform").input_value() == "Tigerpaw"
    shot(page, artifacts_dir, "5-create-integration")

    for field in ("name", "api_url", "soap_user", "public_key"):
        page.fill(f"#{field}", "")
    proceed(page)
    for field in (
        "name",
        "api_url",
        "soap_user",
        "soap_password",
        "public_key",
        "private_key",
    ):
        assert error_of(page, field), f"no error beside {field}"
    shot(page, artifacts_dir, "6-create-integration-blank-errors")


def test_integration_id_is_shown_with_a_copy_button(page, artifacts_dir) -> None:
    page.get_by_text("View integration ID").click()
    shown = page.locator("#integration-id").inner_text().strip()
    assert uuid.UUID(shown)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function(
        "() => document.getElementById('copy-status').textContent === 'Copied'"
    )
    assert page.evaluate("navigator.clipboard.readText()") == shown
    shot(page, artifacts_dir, "7-integration-id")


@pytest.mark.parametrize(
    ("user", "field", "words"),
    [
        ("soap_inactive", "soap_user", "not active"),
        ("rest_no_service_order_create", "public_key", "Service orders: create"),
        ("bad_address", "api_url", "Nothing is listening"),
    ],
)
def test_tigerpaw_errors_name_the_field(
    page, sandbox, artifacts_dir, user: str, field: str, words: str
) -> None:
    tigerpaw = sandbox["tigerpaw"]
    if user == "bad_address":
        overrides = {"api_url": "http://127.0.0.1:1"}
    else:
        overrides = {
            key: value
            for key, value in tigerpaw["test_users"][user].items()
            if key in ("soap_user", "soap_password", "public_key", "private_key")
        }
    page.fill("#name", "Integration with Tigerpaw")
    fill_tigerpaw(page, tigerpaw, **overrides)
    proceed(page)

    assert page.url.endswith("/setup/integration")
    assert words in error_of(page, field)
    assert value_of(page, "soap_password") == ""
    shot(page, artifacts_dir, f"8-tigerpaw-{user}")


def test_create_integration_saves_it(page, agent, sandbox, artifacts_dir) -> None:
    page.get_by_text("View integration ID").click()
    shown = page.locator("#integration-id").inner_text().strip()
    page.fill("#name", "Integration with Tigerpaw")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)

    assert "/add" in page.url
    saved = integrations(agent)
    assert [i["id"] for i in saved] == [shown], "the ID shown is the ID kept"
    assert "Integration with Tigerpaw is saved" in page.inner_text("main")
    shot(page, artifacts_dir, "9-add-companies")


def test_add_companies_with_filter_and_select_all(page, agent, artifacts_dir) -> None:
    rows = page.locator("#tenant-list li")
    assert rows.count() == 5
    assert page.locator("#tenant-list .ws-office365").count() >= 1
    assert page.locator("#tenant-list .ws-kes_cloud").count() == 5

    page.fill("#tenant-filter", "alp")
    assert page.locator("#tenant-list li:visible").count() == 1
    page.fill("#tenant-filter", "")
    page.check("#select-all")
    assert page.locator("#tenant-list input:checked").count() == 5
    page.uncheck("#select-all")
    proceed(page)
    assert "Tick at least one company" in page.inner_text("main")

    # Three of five: the other two stay free for the next integration.
    for name in ("Adventure Dental", "Alpine Dental", "Blue Yonder Dental"):
        page.get_by_label(name).check()
    shot(page, artifacts_dir, "10-companies-ticked")
    proceed(page)
    assert "/accounts" in page.url
    tenants = integrations(agent)[0]["tenants"]
    assert sorted(t["name"] for t in tenants) == [
        "Adventure Dental",
        "Alpine Dental",
        "Blue Yonder Dental",
    ]


def test_mapping_refuses_one_account_twice(page, agent, artifacts_dir) -> None:
    assert page.get_by_role("heading", name="Map to Tigerpaw accounts").is_visible()
    guesses = page.locator("button[data-fill]")
    assert guesses.count() == 3
    assert all(
        page.locator(f"#{f}").input_value() == ""
        for f in page.eval_on_selector_all(
            "input[data-agreement]", "els => els.map(e => e.id)"
        )
    ), "a best guess is never applied by itself"
    unmapped = page.locator("#unmapped-tenants li")
    assert unmapped.count() == 3
    shot(page, artifacts_dir, "11-mapping")

    inputs = page.locator("input[data-agreement]")
    first, second = inputs.nth(0), inputs.nth(1)
    first.fill("Contoso Dental (1001)")
    first.dispatch_event("change")
    second.fill("Contoso Dental (1001)")
    second.dispatch_event("change")
    wait_for_agreements(page)
    proceed(page)
    text = page.inner_text("main")
    assert "Nothing was saved" in text
    assert "each Tigerpaw account takes one company" in text
    assert all(t["account"] is None for t in integrations(agent)[0]["tenants"])
    shot(page, artifacts_dir, "12-mapping-one-to-one")


def test_mapping_with_best_guesses_reaches_the_dashboard(
    page, agent, artifacts_dir
) -> None:
    page.goto(page.url.split("?")[0])
    assert use_every_suggestion(page) == 3
    wait_for_agreements(page)
    for select in page.locator("select[id^=agreement-]").all():
        if not select.input_value():
            # Two running agreements: the person picks the one for the charges.
            option = select.locator("option", has_text="Managed Security").first
            select.select_option(option.get_attribute("value"))
        assert "Managed Security" in select.inner_text()
    shot(page, artifacts_dir, "13-mapping-guesses-used")
    proceed(page)

    assert page.url.rstrip("/").endswith(agent.base_url().split("//")[1].split("/")[0])
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    tenants = integrations(agent)[0]["tenants"]
    assert {t["name"]: t["account"]["name"] for t in tenants} == {
        "Adventure Dental": "Adventure Dental",
        "Alpine Dental": "Alpine Dental",
        "Blue Yonder Dental": "Blue Yonder Dental",
    }
    link = page.get_by_role("link", name="Integration with Tigerpaw")
    assert link.is_visible()
    shot(page, artifacts_dir, "14-dashboard")


def test_test_service_order_lands_in_tigerpaw(page, sandbox, artifacts_dir) -> None:
    before = len(sandbox_state(sandbox["tigerpaw"]["url"])["service_orders"])
    page.get_by_role(
        "button", name="Create test service order for Alpine Dental"
    ).click()
    page.wait_for_load_state()
    text = page.inner_text("main")
    number = re.search(r"Test service order (\d+) was created", text)
    assert number, text
    orders = sandbox_state(sandbox["tigerpaw"]["url"])["service_orders"]
    assert len(orders) == before + 1
    created = next(o for o in orders if o["number"] == int(number.group(1)))
    assert created["account"] == 1007
    shot(page, artifacts_dir, "15-test-order")


def test_companies_held_elsewhere_are_hidden(
    page, agent, sandbox, artifacts_dir
) -> None:
    page.get_by_role("link", name="New integration").click()
    page.check("#source-kbh")
    kbh = sandbox["kbh"]["production"]
    page.fill("#kbh_email", kbh["email"])
    page.fill("#kbh_password", kbh["password"])
    proceed(page)
    assert value_of(page, "name") == "", "the default name is taken"
    page.fill("#name", "Integration with Tigerpaw")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    assert "already" in error_of(page, "name")

    page.fill("#name", "Second Business Hub")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    listed = page.locator("#tenant-list label").all_inner_texts()
    assert sorted(listed) == ["Coho Dental", "Wide World Dental"]
    assert "Not listed: 3 held by another integration" in page.inner_text("main")
    shot(page, artifacts_dir, "16-held-elsewhere-hidden")
    assert len(integrations(agent)) == 2


def test_settings_and_billing_preview_approval(page, agent, artifacts_dir) -> None:
    page.goto(agent.base_url() + "/")
    section = page.locator("section.integration").first
    section.get_by_role("link", name="Settings").click()
    assert page.get_by_role("heading", name="Settings of Integration with Tigerpaw")
    whole = page.locator("select[id^='item::']:not([id*='/'])")
    assert whole.count() >= 1, "the licensed applications are listed"
    for index in range(whole.count()):
        whole.nth(index).select_option("KL-KESB-WS")
    page.check("#event-critical-enabled")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert error_of(page, "rep"), "a switched-on row needs the rep"
    page.select_option("#rep", label="Kaspersky Integration")
    page.select_option("#new_status", "New")
    page.select_option("#closed_status", "Closed")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert "are saved" in page.inner_text("main")
    shot(page, artifacts_dir, "17-sync-settings")

    page.goto(page.url.replace("/settings", "/billing"))
    assert page.get_by_role("heading", name="Billing preview").is_visible()
    lines = page.locator("table.grid tbody tr")
    assert lines.count() >= 1
    assert "KL-KESB-WS" in page.inner_text("main")
    shot(page, artifacts_dir, "18-billing-preview")
    boxes = page.locator("input[name=approve]")
    assert boxes.count() == 3
    boxes.first.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Approve the ticked accounts").click()
    assert "Approved the billing of 1 account" in page.inner_text("main")
    assert page.locator("input[name=approve]").count() == 2
