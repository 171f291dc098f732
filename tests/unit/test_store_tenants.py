"""Tests of tenants, account mappings and cursors in the store."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from agent.errors import SetupError
from agent.secrets import register_secret
from agent.store import IntegrationSettings, NewTenant

KSC_A = IntegrationSettings(
    source="ksc", name="Office A", ksc_address="https://ksc-a.example.test:13299"
)
KSC_B = IntegrationSettings(
    source="ksc", name="Office B", ksc_address="https://ksc-b.example.test:13299"
)
KBH_1 = IntegrationSettings(source="kbh", name="Cloud 1", kbh_email="one@example.test")
KBH_2 = IntegrationSettings(source="kbh", name="Cloud 2", kbh_email="two@example.test")


def test_add_tenants_lists_them_by_name_and_renames_known_ones(store):
    """Adding twice renames instead of duplicating."""
    integration = store.create_integration(KSC_A)
    store.add_tenants(integration.id, [NewTenant("2", "Tailspin"), NewTenant("1", "")])

    again = store.add_tenants(integration.id, [NewTenant("2", "Tailspin Toys")])

    tenants = store.list_tenants(integration.id)
    assert [(t.source_id, t.name) for t in tenants] == [
        ("1", "1"),
        ("2", "Tailspin Toys"),
    ]
    assert again[0].id == tenants[1].id
    assert tenants[0].label == "virtual server"
    assert store.find_tenant(integration.id, "2") == tenants[1]


def test_a_tenant_held_by_another_integration_is_refused(store):
    """The same virtual server of the same KSC cannot join a second integration."""
    first = store.create_integration(KSC_A)
    second = store.create_integration(
        dataclasses.replace(
            KSC_A, name="Office A again", ksc_address="KSC-A.example.test"
        )
    )
    store.add_tenants(first.id, [NewTenant("7", "Contoso")])

    with pytest.raises(SetupError) as caught:
        store.add_tenants(second.id, [NewTenant("8", "Fabrikam"), NewTenant("7", "C")])

    assert "C already belongs to the integration Office A" in str(caught.value)
    assert store.list_tenants(second.id) == []


def test_the_schema_itself_keeps_a_tenant_in_one_integration(store, tmp_path):
    """Even SQL that skips the store's checks cannot add the tenant twice."""
    first = store.create_integration(KBH_1)
    second = store.create_integration(KBH_2)
    store.add_tenants(first.id, [NewTenant("company-1", "Contoso")])

    with sqlite3.connect(store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO tenants (integration_id, source, console, source_id, name, "
            "added_at) VALUES (?, 'kbh', 'kbh', 'company-1', 'x', 'now')",
            (second.id,),
        )


def test_same_id_on_different_consoles_is_two_tenants(store):
    """Virtual server 1 of one KSC is not virtual server 1 of another."""
    a = store.create_integration(KSC_A)
    b = store.create_integration(KSC_B)

    store.add_tenants(a.id, [NewTenant("1", "Contoso")])
    store.add_tenants(b.id, [NewTenant("1", "Northwind")])

    assert len(store.list_tenants()) == 2


def test_kbh_companies_belong_to_one_integration_across_accounts(store):
    """Business Hub company ids are global: a second KBH integration cannot take one."""
    one = store.create_integration(KBH_1)
    two = store.create_integration(KBH_2)
    store.add_tenants(one.id, [NewTenant("company-1", "Contoso")])

    with pytest.raises(SetupError, match="already belongs to the integration Cloud 1"):
        store.add_tenants(two.id, [NewTenant("company-1", "Contoso")])
    assert store.get_tenant(store.list_tenants(one.id)[0].id).label == "company"


def test_moving_an_integration_onto_a_taken_console_is_refused(store):
    """Changing the KSC address cannot make two integrations hold one server."""
    a = store.create_integration(KSC_A)
    b = store.create_integration(KSC_B)
    store.add_tenants(a.id, [NewTenant("1", "Contoso")])
    store.add_tenants(b.id, [NewTenant("1", "Northwind")])

    with pytest.raises(SetupError, match="Northwind on that server already belongs"):
        store.update_integration(
            b.id, dataclasses.replace(b.settings, ksc_address=KSC_A.ksc_address)
        )

    moved = store.update_integration(
        b.id, dataclasses.replace(b.settings, ksc_address="ksc-c.example.test")
    )
    assert moved.ksc_address == "ksc-c.example.test"
    # Its tenants moved with it: the new console's server 1 is now taken.
    c = store.create_integration(
        dataclasses.replace(KSC_B, name="C", ksc_address="ksc-c.example.test:13299")
    )
    with pytest.raises(SetupError, match="belongs to the integration Office B"):
        store.add_tenants(c.id, [NewTenant("1", "Northwind")])
    store.add_tenants(c.id, [NewTenant("2", "Free")])


def test_one_to_one_mapping_names_the_account(store):
    """An account mapped to one tenant is refused to another, in any integration."""
    a = store.create_integration(KSC_A)
    b = store.create_integration(KBH_1)
    [contoso] = store.add_tenants(a.id, [NewTenant("1", "Contoso")])
    [fabrikam] = store.add_tenants(b.id, [NewTenant("c-2", "Fabrikam")])
    store.map_account(contoso.id, 1053145, "Contoso Dental", 77, "Managed services")

    with pytest.raises(SetupError) as caught:
        store.map_account(fabrikam.id, 1053145, "Contoso Dental")

    assert str(caught.value) == (
        "The Tigerpaw account Contoso Dental (1053145) is already mapped to Contoso "
        "in the integration Office A: unmap it there first"
    )
    assert caught.value.field == "account"
    assert store.get_mapping(fabrikam.id) is None
    assert store.mapped_accounts() == {1053145: contoso.id}


def test_the_schema_itself_keeps_mappings_one_to_one(store):
    """A second row for the same account fails in SQLite too."""
    integration = store.create_integration(KSC_A)
    one, two = store.add_tenants(
        integration.id, [NewTenant("1", "A"), NewTenant("2", "B")]
    )
    store.map_account(one.id, 5, "Five")

    with sqlite3.connect(store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO mappings (tenant_id, account_number, mapped_at, updated_at) "
            "VALUES (?, 5, 'now', 'now')",
            (two.id,),
        )


def test_remapping_keeps_switches_and_withdraws_approval_on_change(store):
    """A new agreement needs a new billing preview; switches persist."""
    integration = store.create_integration(KSC_A)
    [tenant] = store.add_tenants(integration.id, [NewTenant("1", "Contoso")])
    first = store.map_account(tenant.id, 10, "Contoso", 100, "Old", billing=True)
    assert (first.billing, first.service_orders, first.billing_approved) == (
        True,
        True,
        False,
    )
    store.update_mapping(tenant.id, billing_approved=True, service_orders=False)

    same = store.map_account(tenant.id, 10, "Contoso Ltd", 100, "Old")
    assert same.account_name == "Contoso Ltd"
    assert (same.billing, same.service_orders, same.billing_approved) == (
        True,
        False,
        True,
    )

    moved = store.map_account(tenant.id, 10, "Contoso Ltd", 101, "New")
    assert moved.billing_approved is False
    assert moved.agreement_number == 101
    assert store.get_tenant(tenant.id).mapping == moved


def test_unmap_frees_the_account(store):
    """After unmapping, another tenant may take the account."""
    integration = store.create_integration(KSC_A)
    one, two = store.add_tenants(
        integration.id, [NewTenant("1", "A"), NewTenant("2", "B")]
    )
    store.map_account(one.id, 5, "Five")

    assert store.unmap(one.id) is True
    assert store.unmap(one.id) is False
    assert store.map_account(two.id, 5, "Five").tenant_id == two.id
    with pytest.raises(SetupError, match="is not mapped"):
        store.update_mapping(one.id, billing=True)


def test_remove_tenant_drops_its_state(store):
    """Removing a tenant removes its mapping, cursors and unsent writes."""
    integration = store.create_integration(KSC_A)
    [tenant] = store.add_tenants(integration.id, [NewTenant("1", "Contoso")])
    store.map_account(tenant.id, 5, "Five")
    store.set_cursor(tenant.id, "events", "99")
    store.enqueue(
        "w1", integration_id=integration.id, kind="k", payload={}, tenant_id=tenant.id
    )

    assert store.remove_tenant(tenant.id) is True

    assert store.list_tenants() == []
    assert store.mapped_accounts() == {}
    assert store.get_outbox_item("w1") is None
    assert store.remove_tenant(tenant.id) is False
    with pytest.raises(SetupError, match="reload the page"):
        store.map_account(tenant.id, 5, "Five")


def test_cursors_per_tenant_and_stream(store):
    """Cursors are saved, replaced and cleared per stream."""
    integration = store.create_integration(KSC_A)
    one, two = store.add_tenants(
        integration.id, [NewTenant("1", "A"), NewTenant("2", "B")]
    )

    store.set_cursor(one.id, "events", "10")
    store.set_cursor(one.id, "events", "11")
    store.set_cursor(one.id, "devices", "x")
    store.set_cursor(two.id, "events", "3")

    assert store.get_cursor(one.id, "events") == "11"
    assert store.get_cursor(one.id, "devices") == "x"
    assert store.get_cursor(two.id, "events") == "3"
    assert store.get_cursor(two.id, "devices") is None
    store.clear_cursor(one.id, "events")
    assert store.get_cursor(one.id, "events") is None


def test_tenant_results_record_success_and_masked_errors(store):
    """A failure keeps the last good time; secrets in the error text are masked."""
    integration = store.create_integration(KSC_A)
    [tenant] = store.add_tenants(integration.id, [NewTenant("1", "Contoso")])
    register_secret("hunter2-tenant-secret")

    store.note_tenant_result(tenant.id)
    synced = store.get_tenant(tenant.id).last_sync_at
    store.note_tenant_result(tenant.id, error="login hunter2-tenant-secret refused")

    failed = store.get_tenant(tenant.id)
    assert failed.last_sync_at == synced
    assert failed.last_error == "login ******** refused"
    store.note_tenant_result(tenant.id)
    assert store.get_tenant(tenant.id).last_error is None
