"""Tests of sync choices and the index of open service orders."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

import pytest

from agent.errors import SetupError, StoreError
from agent.store import (
    CLOSING,
    OPEN,
    OPENING,
    SEVERITIES,
    IntegrationSettings,
    NewTenant,
    OrderRule,
    SyncChoices,
)
from agent.store.choices import STATUS_LEVELS


@pytest.fixture
def integration(store):
    """A KBH integration with one company."""
    created = store.create_integration(
        IntegrationSettings(source="kbh", kbh_email="msp@example.test")
    )
    store.add_tenants(created.id, [NewTenant("c-1", "Contoso")])
    return created


def test_new_integrations_get_the_vendors_defaults(store, integration):
    """Every severity present and off, lifetime one day, nothing billed."""
    choices = store.get_sync_choices(integration.id)

    assert set(choices.events) == set(SEVERITIES)
    assert all(not rule.enabled for rule in choices.events.values())
    assert all(rule.lifetime_days == 1 for rule in choices.events.values())
    assert choices.price_book_items == {}
    assert choices.missing() == []


def test_choices_round_trip_and_stay_per_integration(store, integration):
    """Saved choices come back equal; another integration keeps its defaults."""
    other = store.create_integration(
        IntegrationSettings(source="ksc", name="KSC", ksc_address="ksc.example.test")
    )
    choices = SyncChoices(
        rep="JSMITH",
        new_status="New",
        closed_status="Closed",
        events={
            "critical": OrderRule(
                enabled=True, priority="High", order_type="Security", lifetime_days=3
            )
        },
        device_statuses={
            "warning:databases_outdated": OrderRule(enabled=True, priority="Low"),
            "critical:databases_outdated": OrderRule(priority="High"),
        },
        price_book_items={
            "Kaspersky Endpoint Security/workstation": "KES-WKS",
            "Kaspersky Endpoint Security/server": "KES-SRV",
        },
        bill_by_category=True,
    )

    saved = store.set_sync_choices(integration.id, choices)

    assert store.get_sync_choices(integration.id) == saved
    assert saved.events["critical"].lifetime_days == 3
    assert saved.events["warning"] == OrderRule()
    assert saved.device_statuses["warning:databases_outdated"].priority == "Low"
    assert saved.device_statuses["critical:databases_outdated"].priority == "High"
    assert not saved.device_statuses["critical:databases_outdated"].enabled
    assert store.get_sync_choices(other.id) == SyncChoices()


#: A rule whose switch is text, as a hand-made JSON document might hold it.
NOT_A_BOOL_RULE: Any = OrderRule(enabled="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("choices", "field"),
    [
        (SyncChoices(events={"info": OrderRule()}), "events"),
        (
            SyncChoices(events={"critical": OrderRule(lifetime_days=0)}),
            "events.critical.lifetime_days",
        ),
        (SyncChoices(rep=5), "rep"),  # type: ignore[arg-type]
        (SyncChoices(price_book_items={" ": "X"}), "price_book_items"),
        (
            SyncChoices(device_statuses={"critical:x": NOT_A_BOOL_RULE}),
            "device_statuses.critical:x.enabled",
        ),
        (
            SyncChoices(device_statuses={"warning: ": OrderRule()}),
            "device_statuses",
        ),
    ],
)
def test_bad_choices_are_refused_with_the_field(store, integration, choices, field):
    """SetupError names the bad field; the saved choices do not change."""
    with pytest.raises(SetupError) as caught:
        store.set_sync_choices(integration.id, choices)

    assert caught.value.field == field
    assert store.get_sync_choices(integration.id) == SyncChoices()


def test_missing_lists_required_general_fields_once_a_rule_is_on(store):
    """Rep and both statuses are required only while orders may open."""
    on = dataclasses.replace(
        SyncChoices(new_status="New"),
        events={**SyncChoices().events, "warning": OrderRule(enabled=True)},
    )

    assert on.missing() == ["rep", "closed_status"]


def test_unreadable_saved_choices_give_a_store_error(store, integration):
    """A damaged document in the file is reported with what to do."""
    store.set_sync_choices(integration.id, SyncChoices())
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE sync_choices SET choices = '{\"rep\": 5}'")

    with pytest.raises(StoreError, match="save them again"):
        store.get_sync_choices(integration.id)


def test_one_tracked_order_per_tenant_device_and_kind(store, integration):
    """A second order for the same cause returns the first; other causes are apart."""
    [tenant] = store.list_tenants(integration.id)

    first = store.track_order(tenant.id, "dev-1", "status:not_protected", "k1")
    repeat = store.track_order(tenant.id, "dev-1", "status:not_protected", "k2")
    other = store.track_order(tenant.id, "dev-1", "event:critical", "k3", 4711)

    assert first.state == OPENING and first.order_number is None
    assert repeat == first
    assert (other.state, other.order_number) == (OPEN, 4711)
    assert store.find_order_by_key("k2") is None
    with pytest.raises(StoreError, match="already tracks another"):
        store.track_order(tenant.id, "dev-2", "status:not_protected", "k1")


def test_tracked_order_lifecycle(store, integration):
    """opening -> open (number) -> closing -> forgotten."""
    [tenant] = store.list_tenants(integration.id)
    store.track_order(tenant.id, "dev-1", "status:databases_outdated", "k1")

    opened = store.order_opened("k1", 5150)
    closing = store.order_closing("k1")

    assert (opened.state, opened.order_number) == (OPEN, 5150)
    assert (closing.state, closing.order_number) == (CLOSING, 5150)
    assert store.find_order(tenant.id, "dev-1", "status:databases_outdated") == closing
    assert store.list_orders(integration_id=integration.id) == [closing]
    assert store.list_orders(tenant_id=tenant.id) == [closing]
    assert store.list_orders(integration_id="other") == []
    assert store.forget_order("k1") is True
    assert store.forget_order("k1") is False
    reopened = store.track_order(tenant.id, "dev-1", "status:databases_outdated", "k9")
    assert reopened.key == "k9"
    with pytest.raises(StoreError, match="tracks no service order"):
        store.order_opened("k1", 1)


def test_rows_saved_before_the_sections_read_as_the_same_rule_in_both(
    store, integration
):
    """A document saved with plain description keys loads as the same rule in the
    Warning and Critical sections; a row keyed with its section wins."""
    before = OrderRule(enabled=True, priority="3 - Normal", order_type="Maintenance")
    document = {
        "rep": "1",
        "new_status": "New",
        "closed_status": "Closed",
        "device_statuses": {
            "databases_outdated": dataclasses.asdict(before),
            "Protection is not running": {"enabled": True, "board": "Security"},
            "not_seen": {"enabled": True},
            "critical:not_seen": {"enabled": False, "priority": "1 - Critical"},
        },
    }
    store.set_sync_choices(integration.id, SyncChoices())
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE sync_choices SET choices = ?", (json.dumps(document),))

    loaded = store.get_sync_choices(integration.id)

    assert loaded.device_statuses == {
        "warning:databases_outdated": before,
        "critical:databases_outdated": before,
        "warning:Protection is not running": OrderRule(enabled=True, board="Security"),
        "critical:Protection is not running": OrderRule(enabled=True, board="Security"),
        "warning:not_seen": OrderRule(enabled=True),
        "critical:not_seen": OrderRule(priority="1 - Critical"),
    }
    for level in STATUS_LEVELS:
        assert loaded.status_rule(level, "databases_outdated") == before
        assert loaded.status_rule(level, "not_protected") is None
        assert loaded.status_rule(
            level, "not_protected", "PROTECTION IS NOT RUNNING"
        ) == OrderRule(enabled=True, board="Security")
    # Saved again, the rows keep their sections and nothing is lost.
    assert store.set_sync_choices(integration.id, loaded) == loaded
    assert store.get_sync_choices(integration.id) == loaded


def test_choices_built_with_plain_keys_are_keyed_by_section() -> None:
    """Code that builds choices with a description alone gets both sections' rows;
    replacing the rows keeps them keyed by section."""
    on = OrderRule(enabled=True)
    choices = SyncChoices(device_statuses={"not_seen": on, "warning:not_seen": on})

    assert choices.device_statuses == {"warning:not_seen": on, "critical:not_seen": on}
    off = dataclasses.replace(
        choices, device_statuses={k: OrderRule() for k in choices.device_statuses}
    )
    assert set(off.device_statuses) == {"warning:not_seen", "critical:not_seen"}
    assert choices.missing() == ["rep", "new_status", "closed_status"]
    assert off.missing() == []
