"""The page's notice banners: coloured by kind, news dismissable, the newest of a
topic alone, and "Setup needed" kept off the setup pages it points to."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import html

from agent.app import Agent, AgentOptions
from agent.config import ConfigManager
from agent.errors import ConfigError
from agent.logs import RecentRecords
from agent.secrets import SecretStore
from agent.store import KBH, IntegrationSettings, Store
from agent.web import create_app

ROOT = Path(__file__).resolve().parents[2]
PORT = 47991
HOST = {"Host": f"127.0.0.1:{PORT}"}


@dataclass
class Page:
    """An agent (no sync, no sandbox) and a signed-in browser session."""

    agent: Agent
    client: Any

    def banners(self, path: str = "/log") -> list[Any]:
        """The notice banners of a page, as elements."""
        reply = self.client.get(path, headers=HOST)
        assert reply.status_code == 200, reply.get_data(as_text=True)[:500]
        return html.fromstring(reply.get_data(as_text=True)).xpath(
            "//main/div[contains(@class, 'notice')]"
        )

    def titles(self, path: str = "/log") -> list[str]:
        """The titles of the notices a page shows, newest first."""
        return [b.xpath("string(strong)") for b in self.banners(path)]


@pytest.fixture
def page(tmp_path: Path, no_os_keyring: None) -> Iterator[Page]:
    """The agent's page over an empty store."""
    shutil.copy(ROOT / "IntegrationUI.exe.config", tmp_path / "agent.config")
    options = AgentOptions(config_path=tmp_path / "agent.config", data_dir=tmp_path)
    agent = Agent(options, RecentRecords())
    agent.config.load()
    agent.store = Store.open_in(tmp_path)
    agent.secrets = SecretStore(tmp_path)
    client = create_app(agent, PORT).test_client()
    assert client.get(f"/?token={agent.token}", headers=HOST).status_code == 302
    yield Page(agent, client)
    agent.store.close()


def add_integration(agent: Agent) -> None:
    """One integration, so that setup is done."""
    assert agent.store is not None
    agent.store.create_integration(
        IntegrationSettings(source=KBH, name="Integration", kbh_email="a@b.example")
    )


def test_a_notice_is_coloured_by_its_kind(page: Page) -> None:
    add_integration(page.agent)
    page.agent.show_banner("new_service_orders", "869 new service orders", "Check.")
    page.agent.show_banner("tenant_failing", "Sync failing for Coho", "Fix it.")

    failing, orders = page.banners()

    assert "error" in failing.classes and failing.get("role") == "alert"
    assert "info" in orders.classes and "ok" not in orders.classes, "not good news"


def test_news_can_be_dismissed_and_problems_cannot(page: Page) -> None:
    add_integration(page.agent)
    page.agent.show_banner("new_service_orders", "869 new service orders", "Check.")
    page.agent.show_banner("tenant_failing", "Sync failing for Coho", "Fix it.")
    failing, orders = page.banners("/log?level=Warning")
    assert not failing.xpath(".//form"), "a problem stays until it ends"
    (form,) = orders.xpath(".//form")

    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}
    assert fields["next"] == "/log?level=Warning"
    reply = page.client.post(form.get("action"), data=fields, headers=HOST)

    assert reply.status_code == 302 and reply.location.endswith("/log?level=Warning")
    assert page.titles() == ["Sync failing for Coho"]
    failing_id = page.agent.notices[-1]["id"]
    assert not page.agent.dismiss_notice(failing_id)


def test_dismissing_needs_the_form_token_and_stays_on_this_site(page: Page) -> None:
    add_integration(page.agent)
    page.agent.show_banner("new_service_orders", "12 new service orders", "Check.")
    (form,) = page.banners()[0].xpath(".//form")
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input")}

    refused = page.client.post(form.get("action"), data={"next": "/log"}, headers=HOST)
    assert refused.status_code in (400, 403)
    assert page.titles() == ["12 new service orders"]

    away = page.client.post(
        form.get("action"), data={**fields, "next": "//example.com/"}, headers=HOST
    )
    assert away.status_code == 302 and away.location in ("/", "http://127.0.0.1:47991/")
    assert page.titles() == []


def test_a_newer_notice_on_a_topic_replaces_the_older(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_integration(page.agent)
    page.agent.show_banner("new_service_orders", "869 new service orders", "Check.")
    page.agent.show_banner("new_service_orders", "12 new service orders", "Check.")
    page.agent.show_banner("config_fixed", "Config file fixed", "Good again.")
    page.agent.show_banner("config_error", "Config file error", "Line 3: bad.")
    broken = property(lambda _self: ConfigError("Line 3: bad"))
    monkeypatch.setattr(ConfigManager, "error", broken)

    titles = page.titles()

    assert titles == ["Config file error", "12 new service orders"]


def test_setup_needed_is_not_shown_on_the_setup_pages(page: Page) -> None:
    page.agent.show_banner("setup_needed", "Setup needed", "Open the setup page.")

    assert page.titles("/setup/connect") == []
    (banner,) = page.banners("/log")
    assert "warn" in banner.classes and banner.xpath("string(strong)") == (
        "Setup needed"
    )
