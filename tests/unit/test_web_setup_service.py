"""The setup service against real emulators on 127.0.0.1: rules the page relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from agent.errors import SetupError, WrongCredentials
from agent.sandbox import seed
from agent.secrets import SECRET_FIELDS, secret_name
from agent.setup_drafts import SourceInput, TigerpawInput
from agent.setup_tenants import MappingChoice
from tests.integration.agent_support import agent_with_emulators, create_integration


@pytest.fixture
def world(tmp_path: Path):
    """Business Hub with 4 companies, Tigerpaw with 2 accounts, and an agent."""
    fleet = seed.make_fleet("production", 4, 1, devices=2)
    accounts = ["Adventure Dental", "Alpine Dental"]
    with agent_with_emulators(tmp_path, fleet, accounts) as made:
        yield made


def make_integration(agent, hub, tigerpaw, name="Integration with Tigerpaw"):
    """Connect to Business Hub and create an integration, as the pages do; the
    integration keeps its draft's id (checked in ``create_integration``)."""
    return create_integration(agent, hub, tigerpaw, name).integration


def test_wrong_password_keeps_nothing_connected(world) -> None:
    agent, hub, _ = world
    draft = agent.setup.begin(
        SourceInput(source="kbh", kbh_email=hub["email"], kbh_password="Wrong-1")
    )
    with pytest.raises(WrongCredentials) as caught:
        agent.setup.connect(draft.id)
    assert caught.value.field == "password"
    assert not agent.setup.drafts.get(draft.id).connected
    with pytest.raises(SetupError):
        agent.setup.create_integration(
            draft.id,
            TigerpawInput(name="x", platform="Tigerpaw", api_url="", soap_user=""),
        )


def test_secrets_live_in_the_secret_store_only(world) -> None:
    agent, hub, tigerpaw = world
    integration = make_integration(agent, hub, tigerpaw)
    stored = vars(agent.store.get_integration(integration.id))
    for secret in (hub["password"], tigerpaw["soap_password"], tigerpaw["private_key"]):
        assert secret not in map(str, stored.values())
    assert agent.setup.secrets_set(integration.id) == {
        "kbh_password",
        "tigerpaw_soap_password",
        "tigerpaw_private_key",
    }
    assert (
        agent.secrets.get(secret_name(integration.id, "kbh_password"))
        == hub["password"]
    )


def test_more_companies_than_accounts_is_refused(world) -> None:
    agent, hub, tigerpaw = world
    integration = make_integration(agent, hub, tigerpaw)
    offered = agent.setup.available_tenants(integration.id).tenants
    assert len(offered) == 4

    with pytest.raises(SetupError) as caught:
        agent.setup.add_tenants(integration.id, [t.id for t in offered[:3]])
    assert "You chose 3 companies, but only 2 Tigerpaw accounts are free" in str(
        caught.value
    )
    assert agent.store.list_tenants(integration.id) == []
    assert len(agent.setup.add_tenants(integration.id, [offered[0].id])) == 1


def test_taken_companies_are_hidden_and_accounts_swap(world) -> None:
    agent, hub, tigerpaw = world
    first = make_integration(agent, hub, tigerpaw)
    offered = agent.setup.available_tenants(first.id).tenants
    added = agent.setup.add_tenants(first.id, [t.id for t in offered[:2]])

    second = make_integration(agent, hub, tigerpaw, name="Second")
    other = agent.setup.available_tenants(second.id)
    assert other.held_elsewhere == 2 and len(other.tenants) == 2

    a, b = added

    def choose(tenant, account):
        return MappingChoice(tenant.id, account, "", billing=False, service_orders=True)

    assert (
        agent.setup.save_mappings(first.id, [choose(a, "1001"), choose(b, "1002")])
        == {}
    )
    twice = agent.setup.save_mappings(first.id, [choose(a, "1001"), choose(b, "1001")])
    assert "takes one company" in twice[b.id]
    assert (
        agent.setup.save_mappings(first.id, [choose(a, "1002"), choose(b, "1001")])
        == {}
    )
    numbers = {
        t.name: t.mapping.account_number for t in agent.store.list_tenants(first.id)
    }
    assert numbers == {a.name: 1002, b.name: 1001}

    billing = MappingChoice(a.id, "1002", "", billing=True, service_orders=True)
    errors = agent.setup.save_mappings(first.id, [billing])
    assert "Select the agreement" in errors[a.id]


def test_removing_an_integration_leaves_tigerpaw_alone(world) -> None:
    agent, hub, tigerpaw = world
    integration = make_integration(agent, hub, tigerpaw)
    offered = agent.setup.available_tenants(integration.id).tenants
    (tenant,) = agent.setup.add_tenants(integration.id, [offered[0].id])
    agent.setup.save_mappings(
        integration.id,
        [MappingChoice(tenant.id, "1001", "", billing=False, service_orders=True)],
    )
    before = requests.get(f"{tigerpaw['url']}/_sandbox/state", timeout=10).json()

    assert agent.setup.delete_integration(integration.id)
    after = requests.get(f"{tigerpaw['url']}/_sandbox/state", timeout=10).json()
    assert before["agreements"] == after["agreements"]
    assert before["service_orders"] == after["service_orders"]
    assert agent.store.list_integrations() == []
    for field in SECRET_FIELDS:
        assert agent.secrets.get(secret_name(integration.id, field)) is None
