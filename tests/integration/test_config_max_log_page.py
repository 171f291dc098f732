"""The Settings page shows MaxLogFileKB and writes it into integrationLogging."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from lxml import html

from agent.app import Agent, AgentOptions
from agent.logs import RecentRecords
from agent.secrets import SecretStore
from agent.store import Store
from agent.web import create_app

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
PORT = 47992
HOST = f"127.0.0.1:{PORT}"


@dataclass
class SettingsPage:
    """The agent (config read, no watcher) and its Settings page, signed in."""

    agent: Agent
    client: FlaskClient
    path: Path

    def get(self) -> html.HtmlElement:
        """The Settings page."""
        reply = self.client.get("/settings", headers={"Host": HOST})
        assert reply.status_code == 200, reply.get_data(as_text=True)
        return html.fromstring(reply.get_data(as_text=True))

    def post(self, values: dict[str, str], status: int = 200) -> html.HtmlElement:
        """Save the form with ``values`` over what the page shows."""
        form = self.get().xpath("//form[@method='post']")[0]
        data = dict(form.form_values())
        data.update(values)
        reply = self.client.post(
            "/settings", data=data, headers={"Host": HOST}, follow_redirects=True
        )
        assert reply.status_code == status, reply.get_data(as_text=True)
        return html.fromstring(reply.get_data(as_text=True))


def words(element: html.HtmlElement) -> str:
    """The text a person reads in ``element``, in one line."""
    return " ".join(element.text_content().split())


@pytest.fixture
def page(tmp_path: Path) -> Iterator[SettingsPage]:
    """An agent on a copy of the shipped config, with its page."""
    path = tmp_path / "IntegrationUI.exe.config"
    shutil.copy(ROOT / "IntegrationUI.exe.config", path)
    agent = Agent(AgentOptions(config_path=path, data_dir=tmp_path), RecentRecords())
    agent.config.load()
    agent.store = Store.open_in(tmp_path)
    agent.secrets = SecretStore(tmp_path)
    client = create_app(agent, PORT).test_client()
    assert client.get(f"/?token={agent.token}", headers={"Host": HOST}).status_code
    yield SettingsPage(agent, client, path)
    agent.store.close()


def test_the_page_shows_the_value_in_force(page: SettingsPage) -> None:
    [field] = page.get().xpath("//input[@id='MaxLogFileKB']")
    assert field.get("value") == "1024"
    assert field.get("name") == "MaxLogFileKB"


def test_saving_writes_only_that_value(page: SettingsPage) -> None:
    after = page.post({"MaxLogFileKB": "2048"})

    assert page.path.read_text(encoding="utf-8") == SHIPPED.replace(
        'value="1024"', 'value="2048"'
    )
    assert page.agent.config.settings.max_log_file_kb == 2048
    assert "Saved to the config file: MaxLogFileKB = 2048" in words(after)
    assert after.xpath("//input[@id='MaxLogFileKB']")[0].get("value") == "2048"


def test_a_bad_value_in_the_form_is_refused_beside_its_field(
    page: SettingsPage,
) -> None:
    after = page.post({"MaxLogFileKB": "32"}, 400)

    assert page.path.read_text(encoding="utf-8") == SHIPPED
    field = after.xpath("//input[@id='MaxLogFileKB']/ancestor::div[@class]")[0]
    assert "invalid" in field.get("class")
    assert "MaxLogFileKB must be a whole number of KB from 64 to 102400, not '32'" in (
        words(field)
    )


def test_a_bad_value_in_the_file_is_shown_and_saving_repairs_it(
    page: SettingsPage,
) -> None:
    broken = SHIPPED.replace('value="1024"', 'value="big"')
    page.path.write_text(broken, encoding="utf-8")
    page.agent.config.load()
    line = broken[: broken.index('value="big"')].count("\n") + 1

    status = page.agent.status()
    assert status["config"]["ok"] is False
    assert status["config"]["error"]["line"] == line
    form = page.get()
    field = form.xpath("//input[@id='MaxLogFileKB']/ancestor::div[@class]")[0]
    assert f"line {line}: MaxLogFileKB must be" in words(field)

    page.post({})

    assert page.path.read_text(encoding="utf-8") == SHIPPED
    assert page.agent.config.error is None
