"""The agent's Settings page on a copy of the shipped config file, through Flask's
test client: open it signed in, hand-edit the file, read and post the form."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask.testing import FlaskClient
from lxml import html

from agent.app import Agent, AgentOptions
from agent.logs import RecentRecords
from agent.secrets import SecretStore
from agent.store import Store
from agent.web import create_app

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
#: The port the page's app believes it serves on; its test client opens no socket.
PORT = 47991
HOST = f"127.0.0.1:{PORT}"


@dataclass
class SettingsPage:
    """The agent (config read, no watcher) and its page in a signed-in session."""

    agent: Agent
    client: FlaskClient
    path: Path

    def save(self, text: str) -> None:
        """Hand-edit the file and let the agent read it, as the watcher would."""
        self.path.write_text(text, encoding="utf-8")
        self.agent.config.load()

    def get(self, status: int = 200) -> html.HtmlElement:
        """The Settings page."""
        reply = self.client.get("/settings", headers={"Host": HOST})
        assert reply.status_code == status, reply.get_data(as_text=True)
        return html.fromstring(reply.get_data(as_text=True))

    def post(self, values: dict[str, str], status: int = 200) -> html.HtmlElement:
        """Save the Settings form with ``values`` over what the page shows."""
        form = self.get().xpath("//form[@method='post']")[0]
        data = dict(form.form_values())
        data.update(values)
        reply = self.client.post(
            "/settings", data=data, headers={"Host": HOST}, follow_redirects=True
        )
        assert reply.status_code == status, reply.get_data(as_text=True)
        return html.fromstring(reply.get_data(as_text=True))


@contextlib.contextmanager
def settings_page(tmp_path: Path) -> Iterator[SettingsPage]:
    """An agent on a copy of the shipped config, with its page, signed in."""
    path = tmp_path / "IntegrationUI.exe.config"
    shutil.copy(ROOT / "IntegrationUI.exe.config", path)
    agent = Agent(AgentOptions(config_path=path, data_dir=tmp_path), RecentRecords())
    agent.config.load()
    agent.store = Store.open_in(tmp_path)
    agent.secrets = SecretStore(tmp_path)
    client = create_app(agent, PORT).test_client()
    assert client.get(f"/?token={agent.token}", headers={"Host": HOST}).status_code
    try:
        yield SettingsPage(agent, client, path)
    finally:
        agent.store.close()


def words(element: html.HtmlElement) -> str:
    """The text a person reads in ``element``, in one line."""
    return " ".join(element.text_content().split())
