"""One agent against real Business Hub and Tigerpaw emulators on 127.0.0.1: the
start and stop of that world, and the setup steps the pages take on it."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from lxml import html

from agent.app import Agent, AgentOptions
from agent.logs import RecentRecords
from agent.sandbox import seed
from agent.sandbox.certs import make_certificate
from agent.sandbox.kbh import KbhEmulator
from agent.sandbox.tigerpaw import TigerpawEmulator
from agent.secrets import SecretStore, secret_name
from agent.setup_drafts import SourceInput, TigerpawInput
from agent.setup_tenants import MappingChoice
from agent.store import KBH, IntegrationSettings, NewTenant, Store, Tenant
from agent.web import create_app

ROOT = Path(__file__).resolve().parents[2]
#: The port the page's app believes it serves on; its test client opens no socket.
PORT = 47993
HOST = f"127.0.0.1:{PORT}"


@dataclass
class World:
    """The agent, its page and one Business Hub integration, mapped with billing."""

    agent: Agent
    client: FlaskClient
    integration_id: str
    tigerpaw: dict[str, Any]

    def get(self, path: str, status: int = 200) -> str:
        """A page's HTML, in the signed-in browser session."""
        reply = self.client.get(path, headers={"Host": HOST})
        assert reply.status_code == status, reply.get_data(as_text=True)
        return reply.get_data(as_text=True)

    def post(self, path: str, data: dict[str, Any], status: int) -> Any:
        """Send a form as the page does, with the session's CSRF token."""
        page = html.fromstring(self.get(path))
        token = page.xpath("//input[@name='csrf_token']/@value")[0]
        reply = self.client.post(
            path, data={**data, "csrf_token": token}, headers={"Host": HOST}
        )
        assert reply.status_code == status, reply.get_data(as_text=True)
        return reply


@contextlib.contextmanager
def agent_with_emulators(
    tmp_path: Path,
    fleet: seed.Fleet,
    accounts: list[str] | None = None,
    **store_options: Any,
) -> Iterator[tuple[Agent, dict[str, Any], dict[str, Any]]]:
    """Business Hub serving this fleet, Tigerpaw with these accounts (by default
    one per company), and an agent with an empty store opened with these options;
    the agent and both emulators' descriptions, all stopped afterwards."""
    from agent.sources import kbh

    identity = make_certificate(tmp_path / "certs", "kbh")
    hub = KbhEmulator(fleet, environment="production", tls=identity, seed=1).start()
    names = accounts if accounts is not None else [t.name for t in fleet.tenants]
    tigerpaw = TigerpawEmulator(names, seed=1).start()
    kbh.register_servers({"production": (hub.url, str(identity.cert_path))})

    shutil.copy(ROOT / "IntegrationUI.exe.config", tmp_path / "agent.config")
    options = AgentOptions(config_path=tmp_path / "agent.config", data_dir=tmp_path)
    agent = Agent(options, RecentRecords())
    agent.config.load()
    agent.store = Store.open_in(tmp_path, **store_options)
    agent.secrets = SecretStore(tmp_path)
    try:
        yield agent, hub.describe(), tigerpaw.describe()
    finally:
        agent.store.close()
        hub.stop()
        tigerpaw.stop()
        kbh.clear_registered_servers()


def create_integration(
    agent: Agent,
    hub: dict[str, Any],
    tigerpaw: dict[str, Any],
    name: str = "Integration with Tigerpaw",
) -> Any:
    """Connect to Business Hub and create an integration, as the pages do; the
    service's reply, whose integration keeps the draft's id."""
    service = agent.setup
    draft = service.begin(
        SourceInput(source="kbh", kbh_email=hub["email"], kbh_password=hub["password"])
    )
    service.connect(draft.id)
    created = service.create_integration(
        draft.id,
        TigerpawInput(
            name=name,
            platform="Tigerpaw",
            api_url=tigerpaw["url"],
            soap_user=tigerpaw["soap_user"],
            soap_password=tigerpaw["soap_password"],
            public_key=tigerpaw["public_key"],
            private_key=tigerpaw["private_key"],
        ),
    )
    assert created.integration.id == draft.id
    return created


def add_every_tenant(agent: Agent, integration_id: str) -> list[Any]:
    """Add every company Business Hub offers to the integration; the tenants."""
    service = agent.setup
    offered = service.available_tenants(integration_id).tenants
    return service.add_tenants(integration_id, [t.id for t in offered])


def set_up(agent: Agent, hub: dict[str, Any], tigerpaw: dict[str, Any]) -> str:
    """Connect, create the integration, add and map every company with billing on,
    and choose a price book item for every application, as the pages do."""
    service = agent.setup
    integration = create_integration(agent, hub, tigerpaw).integration
    tenants = add_every_tenant(agent, integration.id)

    accounts = {a.name: a.number for a in service.accounts(integration.id)}
    choices = []
    for tenant in tenants:
        number = accounts[tenant.name]
        agreement = service.agreements(integration.id, number)[0].number
        choices.append(
            MappingChoice(tenant.id, str(number), str(agreement), True, True)
        )
    assert service.save_mappings(integration.id, choices) == {}

    items = [i.item_id for i in service.tigerpaw_lists(integration.id).items]
    products = service.license_types(integration.id).products
    saved = agent.store.get_sync_choices(integration.id)
    service.save_choices(
        integration.id,
        replace(saved, price_book_items=dict(zip(products, items, strict=False))),
    )
    return integration.id


@contextlib.contextmanager
def mapped_world(tmp_path: Path, fleet: seed.Fleet) -> Iterator[World]:
    """An agent with one integration set up by ``set_up`` over emulators serving
    this fleet, its page's client signed in by the agent's token."""
    with agent_with_emulators(tmp_path, fleet) as (agent, hub, tigerpaw):
        integration_id = set_up(agent, hub, tigerpaw)

        client = create_app(agent, PORT).test_client()
        opened = client.get(f"/?token={agent.token}", headers={"Host": HOST})
        assert opened.status_code == 302
        yield World(agent, client, integration_id, tigerpaw)


def agent_with_stored_integration(
    tmp_path: Path, tigerpaw: dict[str, Any], names: list[str]
) -> tuple[Agent, str, list[Tenant]]:
    """An agent (config read, store and secrets in ``tmp_path``) holding a Business
    Hub integration stored as the pages store it, pointing at the Tigerpaw that
    ``tigerpaw`` describes, with one unmapped company per name: the agent, the
    integration's id and the companies."""
    shutil.copy(ROOT / "IntegrationUI.exe.config", tmp_path / "agent.config")
    options = AgentOptions(config_path=tmp_path / "agent.config", data_dir=tmp_path)
    agent = Agent(options, RecentRecords())
    agent.config.load()
    agent.store = store = Store.open_in(tmp_path)
    agent.secrets = secrets = SecretStore(tmp_path)
    integration = store.create_integration(
        IntegrationSettings(
            source=KBH,
            name="Integration with Tigerpaw",
            kbh_email="msp@example.com",
            tigerpaw_url=tigerpaw["url"],
            tigerpaw_soap_user=tigerpaw["soap_user"],
            tigerpaw_public_key=tigerpaw["public_key"],
        )
    )
    for field, value in (
        ("tigerpaw_soap_password", tigerpaw["soap_password"]),
        ("tigerpaw_private_key", tigerpaw["private_key"]),
    ):
        secrets.set(secret_name(integration.id, field), value)
    tenants = store.add_tenants(
        integration.id, [NewTenant(f"c-{n}", name) for n, name in enumerate(names)]
    )
    return agent, integration.id, tenants
