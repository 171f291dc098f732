"""Tenants: the virtual servers and companies an integration holds."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterable

from agent.errors import SetupError
from agent.secrets import redact
from agent.store.db import Database, from_db_time, to_db_time, utcnow
from agent.store.integrations import require_integration
from agent.store.records import FAILED, PENDING, AccountMapping, NewTenant, Tenant

logger = logging.getLogger(__name__)

#: Tenants with their mapping (the m_ columns are NULL for an unmapped tenant).
TENANT_SELECT = (
    "SELECT t.id, t.integration_id, t.source, t.source_id, t.name, t.added_at, "
    "t.last_sync_at, t.last_error, t.last_error_at, "
    "m.tenant_id AS m_tenant_id, m.account_number AS m_account_number, "
    "m.account_name AS m_account_name, m.agreement_number AS m_agreement_number, "
    "m.agreement_name AS m_agreement_name, m.billing AS m_billing, "
    "m.service_orders AS m_service_orders, "
    "m.billing_approved AS m_billing_approved, m.mapped_at AS m_mapped_at, "
    "m.updated_at AS m_updated_at "
    "FROM tenants AS t LEFT JOIN mappings AS m ON m.tenant_id = t.id"
)


def row_to_mapping(row: sqlite3.Row, prefix: str = "") -> AccountMapping | None:
    """An AccountMapping from mapping columns (named with ``prefix``), or None."""
    if row[f"{prefix}tenant_id"] is None:
        return None
    mapped_at = from_db_time(row[f"{prefix}mapped_at"])
    updated_at = from_db_time(row[f"{prefix}updated_at"])
    assert mapped_at is not None and updated_at is not None
    return AccountMapping(
        tenant_id=row[f"{prefix}tenant_id"],
        account_number=row[f"{prefix}account_number"],
        account_name=row[f"{prefix}account_name"],
        agreement_number=row[f"{prefix}agreement_number"],
        agreement_name=row[f"{prefix}agreement_name"],
        billing=bool(row[f"{prefix}billing"]),
        service_orders=bool(row[f"{prefix}service_orders"]),
        billing_approved=bool(row[f"{prefix}billing_approved"]),
        mapped_at=mapped_at,
        updated_at=updated_at,
    )


def row_to_tenant(row: sqlite3.Row) -> Tenant:
    """A Tenant (with its mapping) from a row of TENANT_SELECT."""
    added_at = from_db_time(row["added_at"])
    assert added_at is not None
    return Tenant(
        id=row["id"],
        integration_id=row["integration_id"],
        source=row["source"],
        source_id=row["source_id"],
        name=row["name"],
        added_at=added_at,
        last_sync_at=from_db_time(row["last_sync_at"]),
        last_error=row["last_error"],
        last_error_at=from_db_time(row["last_error_at"]),
        mapping=row_to_mapping(row, "m_"),
    )


def require_tenant(conn: sqlite3.Connection, tenant_id: int) -> Tenant:
    """The tenant, or a SetupError saying it is gone."""
    row = conn.execute(f"{TENANT_SELECT} WHERE t.id = ?", (tenant_id,)).fetchone()
    if row is None:
        raise SetupError(
            f"The server or company {tenant_id} is no longer part of an "
            "integration: reload the page",
            field="tenant",
        )
    return row_to_tenant(row)


class TenantsRepo:
    """Store methods for tenants."""

    _db: Database

    def add_tenants(
        self,
        integration_id: str,
        tenants: Iterable[NewTenant],
        *,
        now: dt.datetime | None = None,
    ) -> list[Tenant]:
        """Add tenants to an integration (a known one is renamed); all or nothing.

        Raises SetupError naming the first tenant that another integration holds.
        """
        stamp = to_db_time(now or utcnow())
        wanted = list(tenants)

        with self._db.write() as conn:
            integration = require_integration(conn, integration_id)
            console = conn.execute(
                "SELECT console FROM integrations WHERE id = ?", (integration_id,)
            ).fetchone()[0]
            ids = [
                _add_one(conn, integration.id, integration.source, console, item, stamp)
                for item in wanted
            ]
            added = [require_tenant(conn, tenant_id) for tenant_id in ids]

        logger.info(
            "Integration %s now holds %s",
            integration.name,
            ", ".join(t.name for t in added) or "no new tenants",
        )
        return added

    def remove_tenant(self, tenant_id: int) -> bool:
        """Remove a tenant with its mapping, cursors, tracked orders and unsent writes.

        Nothing in Tigerpaw or the console is touched. False when it was not there.
        """
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT name FROM tenants WHERE id = ?", (tenant_id,)
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                "DELETE FROM outbox WHERE tenant_id = ? AND state IN (?, ?)",
                (tenant_id, PENDING, FAILED),
            )
            conn.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))

        logger.info("Removed %s from its integration", row["name"])
        return True

    def get_tenant(self, tenant_id: int) -> Tenant | None:
        """The tenant with this local id, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"{TENANT_SELECT} WHERE t.id = ?", (tenant_id,)
            ).fetchone()
        return row_to_tenant(row) if row else None

    def find_tenant(self, integration_id: str, source_id: str) -> Tenant | None:
        """The integration's tenant with this console id, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"{TENANT_SELECT} WHERE t.integration_id = ? AND t.source_id = ?",
                (integration_id, source_id),
            ).fetchone()
        return row_to_tenant(row) if row else None

    def list_tenants(self, integration_id: str | None = None) -> list[Tenant]:
        """Tenants by name: one integration's, or every integration's."""
        with self._db.read() as conn:
            if integration_id is None:
                rows = conn.execute(
                    f"{TENANT_SELECT} ORDER BY t.name COLLATE NOCASE, t.id"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"{TENANT_SELECT} WHERE t.integration_id = ? "
                    "ORDER BY t.name COLLATE NOCASE, t.id",
                    (integration_id,),
                ).fetchall()
        return [row_to_tenant(row) for row in rows]

    def note_tenant_result(
        self,
        tenant_id: int,
        *,
        error: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Record a sync of the tenant: success clears the error, failure keeps it."""
        stamp = to_db_time(at or utcnow())
        with self._db.write() as conn:
            if error is None:
                conn.execute(
                    "UPDATE tenants SET last_sync_at = ?, last_error = NULL, "
                    "last_error_at = NULL WHERE id = ?",
                    (stamp, tenant_id),
                )
            else:
                conn.execute(
                    "UPDATE tenants SET last_error = ?, last_error_at = ? WHERE id = ?",
                    (redact(error), stamp, tenant_id),
                )


def _add_one(
    conn: sqlite3.Connection,
    integration_id: str,
    source: str,
    console: str,
    item: NewTenant,
    stamp: str,
) -> int:
    """Insert or rename one tenant; SetupError when another integration holds it."""
    source_id = str(item.source_id).strip()
    name = (item.name or "").strip() or source_id
    if not source_id:
        raise SetupError(
            f"{name or 'A tenant'} has no id: reload the list", field="tenant"
        )

    holder = conn.execute(
        "SELECT t.id, t.integration_id, i.name AS owner FROM tenants AS t "
        "JOIN integrations AS i ON i.id = t.integration_id "
        "WHERE t.source = ? AND t.console = ? AND t.source_id = ?",
        (source, console, source_id),
    ).fetchone()
    if holder is not None and holder["integration_id"] != integration_id:
        raise SetupError(
            f"{name} already belongs to the integration {holder['owner']}: "
            "remove it there first, or leave it out here",
            field="tenant",
        )
    if holder is not None:
        conn.execute("UPDATE tenants SET name = ? WHERE id = ?", (name, holder["id"]))
        return int(holder["id"])

    cursor = conn.execute(
        "INSERT INTO tenants (integration_id, source, console, source_id, name, "
        "added_at) VALUES (?, ?, ?, ?, ?, ?)",
        (integration_id, source, console, source_id, name, stamp),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid
