"""Account mappings: each tenant to one Tigerpaw account, never two to one."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

from agent.errors import SetupError
from agent.store.db import Database, to_db_time, utcnow
from agent.store.records import AccountMapping
from agent.store.tenants import require_tenant, row_to_mapping

logger = logging.getLogger(__name__)

_MAPPING_SELECT = (
    "SELECT tenant_id, account_number, account_name, agreement_number, "
    "agreement_name, billing, service_orders, billing_approved, mapped_at, "
    "updated_at FROM mappings"
)


def _require_mapping(conn: sqlite3.Connection, tenant_id: int) -> AccountMapping:
    """The tenant's mapping, or a SetupError saying it has none."""
    row = conn.execute(
        f"{_MAPPING_SELECT} WHERE tenant_id = ?", (tenant_id,)
    ).fetchone()
    mapping = row_to_mapping(row) if row else None
    if mapping is None:
        tenant = require_tenant(conn, tenant_id)
        raise SetupError(
            f"{tenant.name} is not mapped to a Tigerpaw account: choose one first",
            field="account",
        )
    return mapping


class MappingsRepo:
    """Store methods for tenant-to-account mappings."""

    _db: Database

    def map_account(
        self,
        tenant_id: int,
        account_number: int,
        account_name: str,
        agreement_number: int | None = None,
        agreement_name: str = "",
        *,
        billing: bool | None = None,
        service_orders: bool | None = None,
        now: dt.datetime | None = None,
    ) -> AccountMapping:
        """Map (or re-map) a tenant to an account and agreement.

        A new account or agreement withdraws the billing preview approval. Switches
        left as None keep their value (off for billing, on for service orders when
        new). SetupError names the account when another tenant has it.
        """
        stamp = to_db_time(now or utcnow())
        account_number = int(account_number)

        with self._db.write() as conn:
            tenant = require_tenant(conn, tenant_id)
            _refuse_taken_account(conn, tenant_id, account_number, account_name)

            old = tenant.mapping
            same_target = (
                old is not None
                and old.account_number == account_number
                and old.agreement_number == agreement_number
            )
            conn.execute(
                "INSERT INTO mappings (tenant_id, account_number, account_name, "
                "agreement_number, agreement_name, billing, service_orders, "
                "billing_approved, mapped_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?) "
                "ON CONFLICT (tenant_id) DO UPDATE SET "
                "account_number = excluded.account_number, "
                "account_name = excluded.account_name, "
                "agreement_number = excluded.agreement_number, "
                "agreement_name = excluded.agreement_name, "
                "billing = excluded.billing, "
                "service_orders = excluded.service_orders, "
                "billing_approved = ?, updated_at = excluded.updated_at",
                (
                    tenant_id,
                    account_number,
                    account_name.strip(),
                    agreement_number,
                    agreement_name.strip(),
                    _choose(billing, old.billing if old else False),
                    _choose(service_orders, old.service_orders if old else True),
                    stamp,
                    stamp,
                    int(same_target and old is not None and old.billing_approved),
                ),
            )
            mapping = _require_mapping(conn, tenant_id)

        logger.info(
            "Mapped %s to Tigerpaw account %s (%d), agreement %s",
            tenant.name,
            mapping.account_name,
            mapping.account_number,
            mapping.agreement_number if mapping.agreement_number else "none",
        )
        return mapping

    def update_mapping(
        self,
        tenant_id: int,
        *,
        billing: bool | None = None,
        service_orders: bool | None = None,
        billing_approved: bool | None = None,
        now: dt.datetime | None = None,
    ) -> AccountMapping:
        """Turn billing, service orders or the billing approval on or off."""
        with self._db.write() as conn:
            old = _require_mapping(conn, tenant_id)
            conn.execute(
                "UPDATE mappings SET billing = ?, service_orders = ?, "
                "billing_approved = ?, updated_at = ? WHERE tenant_id = ?",
                (
                    _choose(billing, old.billing),
                    _choose(service_orders, old.service_orders),
                    _choose(billing_approved, old.billing_approved),
                    to_db_time(now or utcnow()),
                    tenant_id,
                ),
            )
            return _require_mapping(conn, tenant_id)

    def unmap(self, tenant_id: int) -> bool:
        """Unlink a tenant from its account (nothing is deleted anywhere else)."""
        with self._db.write() as conn:
            removed = conn.execute(
                "DELETE FROM mappings WHERE tenant_id = ?", (tenant_id,)
            ).rowcount
        if removed:
            logger.info("Unmapped tenant %d from its Tigerpaw account", tenant_id)
        return bool(removed)

    def get_mapping(self, tenant_id: int) -> AccountMapping | None:
        """The tenant's mapping, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"{_MAPPING_SELECT} WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
        return row_to_mapping(row) if row else None

    def mapped_accounts(self) -> dict[int, int]:
        """Every mapped account number, across integrations, with its tenant id."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT account_number, tenant_id FROM mappings"
            ).fetchall()
        return {row["account_number"]: row["tenant_id"] for row in rows}


def _choose(value: bool | None, current: bool) -> int:
    """The new switch value as SQLite stores it, or the current one when None."""
    return int(current if value is None else value)


def _refuse_taken_account(
    conn: sqlite3.Connection, tenant_id: int, account_number: int, account_name: str
) -> None:
    """SetupError naming the account when another tenant is mapped to it."""
    row = conn.execute(
        "SELECT t.name AS tenant, i.name AS owner FROM mappings AS m "
        "JOIN tenants AS t ON t.id = m.tenant_id "
        "JOIN integrations AS i ON i.id = t.integration_id "
        "WHERE m.account_number = ? AND m.tenant_id <> ?",
        (account_number, tenant_id),
    ).fetchone()
    if row is not None:
        label = (
            f"{account_name.strip()} ({account_number})"
            if account_name
            else (str(account_number))
        )
        raise SetupError(
            f"The Tigerpaw account {label} is already mapped to {row['tenant']} "
            f"in the integration {row['owner']}: unmap it there first",
            field="account",
        )
