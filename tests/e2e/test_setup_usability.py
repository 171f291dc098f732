"""The setup walked with the keyboard alone, and every page at 1280x800 and 800x600."""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent_process import AgentProcess
from tests.browser import chromium_page
from tests.e2e.setup_helpers import (
    SIZES,
    assert_fits_and_labelled,
    focused,
    integrations,
    shot,
    submit_by_enter,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    """One sandboxed agent for the module."""
    process = AgentProcess(tmp_path_factory.mktemp("usability"), "--sandbox")
    process.start()
    yield process
    process.stop()


def tab_to(page: Any, wanted: str, *, limit: int = 80) -> dict[str, str]:
    """Press Tab until the element with id ``wanted`` (or button text) has focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if wanted in (now["id"], now["text"]):
            assert now["outline"] != "none" and now["width"] != "0px", now
            return now
    raise AssertionError(f"Tab never reached {wanted}")


def type_into(page: Any, field: str, text: str) -> None:
    """Tab to a field and type into it."""
    tab_to(page, field)
    page.keyboard.type(text)


def test_keyboard_alone_walks_the_setup(agent: AgentProcess, artifacts_dir) -> None:
    info = agent.agent_info()
    assert info is not None
    sandbox = agent.sandbox_info()
    kbh, tigerpaw = sandbox["kbh"]["production"], sandbox["tigerpaw"]

    with chromium_page() as page:
        page.goto(info["url"])
        tab_to(page, "source-ksc")
        page.keyboard.press("ArrowDown")
        assert page.is_checked("#source-kbh")
        type_into(page, "kbh_email", kbh["email"])
        type_into(page, "kbh_password", kbh["password"])
        shot(page, artifacts_dir, "1-connect-by-keyboard")
        tab_to(page, "Proceed")
        submit_by_enter(page)
        assert page.url.endswith("/setup/integration")

        tab_to(page, "name")
        for field in ("soap_user", "soap_password", "public_key", "private_key"):
            type_into(page, field, tigerpaw[field])
        shot(page, artifacts_dir, "2-integration-by-keyboard")
        submit_by_enter(page)
        assert "/add" in page.url, page.inner_text("main")

        tab_to(page, "select-all")
        page.keyboard.press("Space")
        tab_to(page, "Proceed")
        submit_by_enter(page)
        assert "/accounts" in page.url

        for row in range(page.locator("button[data-fill]").count()):
            button = page.locator("button[data-fill]").nth(row)
            tab_to(page, button.inner_text())
            page.keyboard.press("Enter")
        page.wait_for_function(
            """() => [...document.querySelectorAll('select[id^=agreement-]')]
                .every(s => s.dataset.loadedFor)"""
        )
        for select in page.locator("select[id^=agreement-]").all():
            if not select.input_value():
                tab_to(page, select.get_attribute("id"))
                page.keyboard.press("ArrowDown")
        shot(page, artifacts_dir, "3-mapping-by-keyboard")
        tab_to(page, "Proceed", limit=200)
        submit_by_enter(page)
        assert page.get_by_role("heading", name="Dashboard").is_visible()
        shot(page, artifacts_dir, "4-dashboard")

    tenants = integrations(agent)[0]["tenants"]
    assert len(tenants) == 5 and all(t["account"] for t in tenants)


def test_pages_read_well_at_both_sizes(agent: AgentProcess, artifacts_dir) -> None:
    info = agent.agent_info()
    assert info is not None
    integration = integrations(agent)[0]["id"]
    pages = {
        "dashboard": "/",
        "connect": "/setup/connect",
        "integration": f"/integrations/{integration}",
        "tigerpaw": f"/integrations/{integration}/tigerpaw",
        "connection": f"/integrations/{integration}/connection",
        "accounts": f"/integrations/{integration}/accounts",
        "add": f"/integrations/{integration}/add",
        "settings": f"/integrations/{integration}/settings",
        "billing": f"/integrations/{integration}/billing",
        "config": "/settings",
        "log": "/log",
    }
    base = info["url"].split("/?")[0]
    for width, height in SIZES:
        with chromium_page(width, height) as page:
            page.goto(info["url"])
            for name, path in pages.items():
                page.goto(base + path)
                assert page.locator("h1").count() == 1, name
                assert_fits_and_labelled(page, name, width, height)
                shot(page, artifacts_dir, f"{width}x{height}-{name}")


def test_config_settings_are_written_to_the_file(
    agent: AgentProcess, artifacts_dir
) -> None:
    info = agent.agent_info()
    assert info is not None
    with chromium_page() as page:
        page.goto(info["url"])
        page.get_by_role("link", name="Settings").first.click()
        page.fill("#ServiceOrderSyncMinutes", "0")
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        assert "ServiceOrderSyncMinutes must be" in page.inner_text(
            "#ServiceOrderSyncMinutes-error"
        )
        page.fill("#ServiceOrderSyncMinutes", "15")
        page.select_option("#LogLevel", "Debug")
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        assert "Saved to the config file" in page.inner_text("main")
        shot(page, artifacts_dir, "config-saved")

        page.goto(info["url"].split("/?")[0] + "/log?level=Warning")
        levels = set(page.locator("#log-rows td:nth-child(2)").all_inner_texts())
        assert levels <= {"WARNING", "ERROR", "CRITICAL"}
        shot(page, artifacts_dir, "log-warnings")

    text = agent.config_path.read_text()
    assert 'key="ServiceOrderSyncMinutes" value="15"' in text
    settings = agent.status()["config"]["settings"]
    assert settings["ServiceOrderSyncMinutes"] == "15"
    assert settings["LogLevel"] == "Debug"
