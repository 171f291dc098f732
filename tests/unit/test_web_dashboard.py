"""The dashboard's rows: writes waiting for a retry are shown, with the reason."""

from __future__ import annotations

import datetime as dt

from agent.store import IntegrationSettings
from agent.web.dashboard import dashboard_rows


def test_waiting_writes_are_counted_with_the_reason_and_next_try(store) -> None:
    integration = store.create_integration(
        IntegrationSettings(source="ksc", ksc_address="ksc.example.test")
    )
    later = dt.datetime(2030, 1, 1, 9, 30, tzinfo=dt.UTC)
    for key in ("charge-1", "charge-2"):
        store.enqueue(key, integration_id=integration.id, kind="charge", payload={})
        store.mark_failed(key, "Account 1020 is not cross-referenced", later)
    store.enqueue("sent-1", integration_id=integration.id, kind="charge", payload={})

    (row,) = dashboard_rows(store, [integration])

    assert row.waiting == 2
    assert row.next_try == later
    assert "not cross-referenced" in row.waiting_error


def test_nothing_waiting_shows_nothing(store) -> None:
    integration = store.create_integration(
        IntegrationSettings(source="ksc", ksc_address="ksc.example.test")
    )
    (row,) = dashboard_rows(store, [integration])
    assert row.waiting == 0
    assert row.next_try is None
