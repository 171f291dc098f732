"""What the sync adds to the store: one transaction around a tenant's plan, and the
count of occurrences an order has seen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.store import IntegrationSettings, NewTenant, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store with one Business Hub integration holding one tenant."""
    with Store.open_in(tmp_path) as opened:
        integration = opened.create_integration(
            IntegrationSettings(source="kbh", kbh_email="admin@msp.example")
        )
        opened.add_tenants(integration.id, [NewTenant("c-1", "Contoso Dental")])
        yield opened


def tenant_and_integration(store: Store) -> tuple[int, str]:
    """The one tenant's id and its integration's id."""
    (tenant,) = store.list_tenants()
    return tenant.id, tenant.integration_id


def plan_in_one_transaction(store: Store, fail: bool) -> None:
    """Track an order, queue its write and move the cursor, maybe failing at the end."""
    tenant_id, integration_id = tenant_and_integration(store)
    with store.transaction():
        store.track_order(tenant_id, "pc-1", "status:not_seen", "KSI-1", occurrences=2)
        store.enqueue(
            "order:KSI-1:open",
            integration_id=integration_id,
            kind="order.open",
            payload={"order_key": "KSI-1"},
            tenant_id=tenant_id,
        )
        store.set_cursor(tenant_id, "events", "42")
        if fail:
            raise RuntimeError("the process dies here")


def test_a_plan_is_kept_whole(store: Store) -> None:
    """Tracked order, queued write and cursor are saved together."""
    plan_in_one_transaction(store, fail=False)

    tenant_id, _ = tenant_and_integration(store)
    (order,) = store.list_orders()
    assert (order.key, order.occurrences, order.order_number) == ("KSI-1", 2, None)
    assert store.pending_count() == 1
    assert store.get_cursor(tenant_id, "events") == "42"


def test_a_plan_that_fails_half_way_leaves_nothing(store: Store) -> None:
    """A crash inside the transaction keeps none of the plan."""
    with pytest.raises(RuntimeError):
        plan_in_one_transaction(store, fail=True)

    tenant_id, _ = tenant_and_integration(store)
    assert store.list_orders() == []
    assert store.pending_count() == 0
    assert store.get_cursor(tenant_id, "events") is None


def test_occurrences_are_counted_and_kept(store: Store) -> None:
    """An order's occurrences survive with its number and state."""
    tenant_id, _ = tenant_and_integration(store)
    store.track_order(tenant_id, "pc-1", "event:GNRL_EV_VIRUS_FOUND", "KSI-2")

    store.set_occurrences("KSI-2", 5)
    store.order_opened("KSI-2", 20001)

    found = store.find_order_by_key("KSI-2")
    assert found is not None
    assert (found.occurrences, found.order_number, found.state) == (5, 20001, "open")
