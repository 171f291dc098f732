"""Tests of integrations in the store: create, edit, delete, administrators."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from agent.errors import SetupError
from agent.store import (
    PENDING,
    SENT,
    Administrator,
    IntegrationSettings,
    NewHistory,
    NewTenant,
    console_identity,
)

KSC_SETTINGS = IntegrationSettings(
    source="ksc",
    name="Main office",
    ksc_address="https://ksc.example.test:13299",
    ksc_user="svc-tigerpaw",
    ksc_fingerprint="AB:CD",
    proxy_address="http://127.0.0.1:3128",
    proxy_user="proxyuser",
    tigerpaw_url="https://tigerpaw.example.test",
    tigerpaw_soap_user="soapuser",
    tigerpaw_public_key="6f1c2a5e-0000-4000-8000-000000000001",
)
KBH_SETTINGS = IntegrationSettings(
    source="kbh", name="Cloud clients", kbh_email="msp@example.test"
)


def test_create_gives_a_uuid_and_keeps_every_field(store):
    """The ID is a UUID; fields come back trimmed; list shows it."""
    created = store.create_integration(
        dataclasses.replace(KSC_SETTINGS, name="  Main office  ")
    )

    assert uuid.UUID(created.id)
    assert created.name == "Main office"
    assert created.settings == KSC_SETTINGS
    assert created.platform == "Tigerpaw"
    assert created.created_at == created.updated_at
    assert store.list_integrations() == [created]
    assert store.get_integration(created.id) == created
    assert store.find_integration("MAIN OFFICE") == created


def test_the_default_name_is_the_vendors(store):
    """A blank form's name is "Integration with Tigerpaw"."""
    created = store.create_integration(
        IntegrationSettings(source="kbh", kbh_email="a@example.test")
    )

    assert created.name == "Integration with Tigerpaw"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "   "}, "name"),
        ({"source": "tigerpaw"}, "source"),
        ({"platform": "Autotask"}, "platform"),
        ({"ksc_address": ""}, "ksc_address"),
    ],
)
def test_bad_settings_are_refused_with_the_field(store, changes, field):
    """SetupError names the field to fix and nothing is saved."""
    with pytest.raises(SetupError) as caught:
        store.create_integration(dataclasses.replace(KSC_SETTINGS, **changes))

    assert caught.value.field == field
    assert store.list_integrations() == []


def test_kbh_needs_the_sign_in_email(store):
    """A Business Hub integration without its email is refused."""
    with pytest.raises(SetupError) as caught:
        store.create_integration(dataclasses.replace(KBH_SETTINGS, kbh_email=" "))

    assert caught.value.field == "kbh_email"


def test_names_are_unique_in_any_letter_case(store):
    """A second "main OFFICE" is refused, on create and on rename."""
    store.create_integration(KSC_SETTINGS)
    other = store.create_integration(KBH_SETTINGS)

    with pytest.raises(SetupError, match="exists already") as caught:
        store.create_integration(dataclasses.replace(KSC_SETTINGS, name="main OFFICE"))
    assert caught.value.field == "name"
    with pytest.raises(SetupError, match="exists already"):
        store.update_integration(
            other.id, dataclasses.replace(other.settings, name="MAIN office")
        )


def test_update_replaces_settings_and_moves_the_time(store):
    """Edited fields are saved; updated_at moves, created_at stays."""
    created = store.create_integration(KSC_SETTINGS)
    later = created.created_at + dt.timedelta(minutes=5)

    updated = store.update_integration(
        created.id,
        dataclasses.replace(created.settings, tigerpaw_soap_user="newsoap"),
        now=later,
    )

    assert updated.tigerpaw_soap_user == "newsoap"
    assert updated.created_at == created.created_at
    assert updated.updated_at == later
    assert store.get_integration(created.id) == updated


def test_switching_source_with_tenants_is_refused(store):
    """An integration holding servers cannot become a Business Hub one."""
    created = store.create_integration(KSC_SETTINGS)
    store.add_tenants(created.id, [NewTenant("1", "Contoso")])

    with pytest.raises(SetupError, match="remove them") as caught:
        store.update_integration(created.id, KBH_SETTINGS)

    assert caught.value.field == "source"


def test_console_identity_is_written_one_way():
    """Scheme, case, trailing slash and the default port do not matter."""
    same = [
        "https://KSC.example.test:13299/",
        "ksc.example.test",
        "ksc.example.test:13299",
    ]
    identities = {
        console_identity(IntegrationSettings(source="ksc", ksc_address=a)) for a in same
    }

    assert identities == {"ksc:ksc.example.test:13299"}
    assert console_identity(IntegrationSettings(source="ksc", ksc_address="[::1]")) == (
        "ksc:[::1]:13299"
    )
    assert console_identity(KBH_SETTINGS) == "kbh"


def test_delete_removes_tenants_mappings_cursors_and_unsent_writes(store):
    """Deleting an integration clears its state but keeps history and sent writes."""
    kept = store.create_integration(KBH_SETTINGS)
    doomed = store.create_integration(KSC_SETTINGS)
    [tenant] = store.add_tenants(doomed.id, [NewTenant("7", "Contoso")])
    [other] = store.add_tenants(kept.id, [NewTenant("c-1", "Fabrikam")])
    store.map_account(tenant.id, 1001, "Contoso Ltd", 55)
    store.set_cursor(tenant.id, "events", "123")
    store.track_order(tenant.id, "dev-1", "status:not_protected", "key-order")
    store.add_administrators(doomed.id, [Administrator("a@example.test")])
    store.enqueue("sent-one", integration_id=doomed.id, kind="k", payload={})
    store.mark_sent(
        "sent-one",
        42,
        history=NewHistory(
            integration_id=doomed.id,
            tenant_id=tenant.id,
            account_number=1001,
            target="service order",
            action="create",
            after={"number": 42},
        ),
    )
    store.enqueue("unsent", integration_id=doomed.id, kind="k", payload={})
    store.enqueue("other", integration_id=kept.id, kind="k", payload={})

    assert store.delete_integration(doomed.id) is True

    assert [i.id for i in store.list_integrations()] == [kept.id]
    assert [t.id for t in store.list_tenants()] == [other.id]
    assert store.get_tenant(tenant.id) is None
    assert store.mapped_accounts() == {}
    assert store.get_cursor(tenant.id, "events") is None
    assert store.list_orders() == []
    assert store.list_administrators(doomed.id) == []
    assert store.get_outbox_item("unsent") is None
    assert store.get_outbox_item("sent-one").state == SENT
    assert store.get_outbox_item("other").state == PENDING
    [entry] = store.list_history()
    assert entry.integration_name == "Main office"
    assert entry.tenant_name == "Contoso"
    assert entry.after == {"number": 42}
    assert entry.outbox_key == "sent-one"
    assert store.delete_integration(doomed.id) is False


def test_the_tenant_can_join_another_integration_after_a_delete(store):
    """Once its integration is gone, a tenant is free again."""
    first = store.create_integration(KSC_SETTINGS)
    store.add_tenants(first.id, [NewTenant("7", "Contoso")])
    store.delete_integration(first.id)
    second = store.create_integration(KSC_SETTINGS)

    [tenant] = store.add_tenants(second.id, [NewTenant("7", "Contoso")])

    assert tenant.integration_id == second.id


def test_administrators_keep_at_least_one(store):
    """Add with aliases; removing the last one is refused."""
    created = store.create_integration(KBH_SETTINGS)
    store.add_administrators(
        created.id,
        [Administrator("b@example.test", "Bo"), Administrator("a@example.test")],
    )
    store.add_administrators(created.id, [Administrator("B@example.test", "Bob")])

    admins = store.remove_administrators(created.id, ["a@example.test"])

    assert admins == [Administrator("b@example.test", "Bob")]
    with pytest.raises(SetupError, match="at least one administrator"):
        store.remove_administrators(created.id, ["B@EXAMPLE.test"])
    with pytest.raises(SetupError, match="not an email address"):
        store.add_administrators(created.id, [Administrator("nobody")])
    assert store.list_administrators(created.id) == admins
