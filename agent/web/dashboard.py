"""What the dashboard shows per integration and tenant, gathered in a few queries."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.store import FAILED, HistoryEntry, Integration, Store, Tenant
from agent.store.records import TENANT_LABELS

if TYPE_CHECKING:
    from agent.app import Agent

logger = logging.getLogger(__name__)

#: How many recent history rows feed the "what it wrote" column.
HISTORY_WINDOW = 5000

#: History targets and actions in words.
TARGET_WORDS = {"charge": "charge", "service_order": "service order", "note": "note"}


@dataclass
class TenantRow:
    """One tenant on the dashboard."""

    tenant: Tenant
    wrote: str = ""
    last_write_at: dt.datetime | None = None


@dataclass
class IntegrationRow:
    """One integration on the dashboard, with its tenants."""

    integration: Integration
    label: str
    tenants: list[TenantRow] = field(default_factory=list)
    mapped: int = 0
    failing: int = 0
    #: Writes Tigerpaw refused for now, waiting for their next try (or Sync now).
    waiting: int = 0
    waiting_error: str = ""
    next_try: dt.datetime | None = None


def dashboard_rows(
    store: Store, integrations: list[Integration]
) -> list[IntegrationRow]:
    """Each integration with its tenants and what the agent last wrote for them."""
    tenants_by_integration: dict[str, list[Tenant]] = {}
    for tenant in store.list_tenants():
        tenants_by_integration.setdefault(tenant.integration_id, []).append(tenant)
    writes = _writes_by_tenant(store.list_history(limit=HISTORY_WINDOW))

    rows = []
    for integration in integrations:
        tenants = tenants_by_integration.get(integration.id, [])
        row = IntegrationRow(integration, TENANT_LABELS[integration.source])
        for tenant in tenants:
            summary, at = writes.get(tenant.id, ("", None))
            row.tenants.append(TenantRow(tenant, summary, at))
        row.mapped = sum(1 for t in tenants if t.mapping)
        row.failing = sum(1 for t in tenants if t.last_error)
        _note_waiting_writes(store, row)
        rows.append(row)
    return rows


def _note_waiting_writes(store: Store, row: IntegrationRow) -> None:
    """Count the integration's writes waiting for a retry, with the latest reason."""
    waiting = store.list_outbox(
        state=FAILED, integration_id=row.integration.id, limit=1000
    )
    row.waiting = len(waiting)
    if waiting:
        row.waiting_error = waiting[0].last_error or ""
        row.next_try = min(item.next_attempt_at for item in waiting)


def _writes_by_tenant(
    entries: list[HistoryEntry],
) -> dict[int, tuple[str, dt.datetime | None]]:
    """Per tenant: the writes of its latest day of activity, in words, and when."""
    latest: dict[int, dt.datetime] = {}
    counts: dict[int, Counter[str]] = {}
    for entry in entries:
        if entry.tenant_id is None:
            continue
        newest = latest.setdefault(entry.tenant_id, entry.at)
        if newest - entry.at > dt.timedelta(days=1):
            continue
        target = TARGET_WORDS.get(entry.target, entry.target.replace("_", " "))
        counts.setdefault(entry.tenant_id, Counter())[f"{target} {entry.action}"] += 1

    return {
        tenant_id: (
            ", ".join(f"{n} {what}" for what, n in sorted(counter.items())),
            latest[tenant_id],
        )
        for tenant_id, counter in counts.items()
    }


def sync_controls(agent: Agent, status: dict[str, Any]) -> dict[str, Any]:
    """The sync's state and which buttons apply (none while no scheduler runs)."""
    scheduler = getattr(agent, "scheduler", None)
    state = scheduler.status() if scheduler is not None else status.get("sync", {})
    return {
        "available": scheduler is not None,
        "state": state.get("state", "idle"),
        "last_run": state.get("last_run"),
        "next_run": state.get("next_run"),
    }
