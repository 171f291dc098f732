"""The service orders the agent opened and has not yet seen closed.

A row lives from the moment an order is planned ("opening", no number yet) through
"open" (Tigerpaw gave its number) to "closing" (a close is queued), and is removed once
Tigerpaw has closed it. The schema allows one row per (tenant, device, kind), which is
the "one open order per device and cause" rule.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3

from agent.errors import StoreError
from agent.store.db import Database, from_db_time, to_db_time, utcnow
from agent.store.records import CLOSING, OPEN, OPENING, TrackedOrder

logger = logging.getLogger(__name__)

_SELECT = (
    "SELECT o.id, o.tenant_id, o.device_id, o.kind, o.key, o.order_number, o.state, "
    "o.opened_at, o.updated_at, o.occurrences FROM service_orders AS o"
)


def _row_to_order(row: sqlite3.Row) -> TrackedOrder:
    """A TrackedOrder from a service_orders row."""
    opened_at = from_db_time(row["opened_at"])
    updated_at = from_db_time(row["updated_at"])
    assert opened_at is not None and updated_at is not None
    return TrackedOrder(
        id=row["id"],
        tenant_id=row["tenant_id"],
        device_id=row["device_id"],
        kind=row["kind"],
        key=row["key"],
        order_number=row["order_number"],
        state=row["state"],
        opened_at=opened_at,
        updated_at=updated_at,
        occurrences=row["occurrences"],
    )


def _require_order(conn: sqlite3.Connection, key: str) -> TrackedOrder:
    """The tracked order with this key, or a StoreError."""
    row = conn.execute(f"{_SELECT} WHERE o.key = ?", (key,)).fetchone()
    if row is None:
        raise StoreError(
            f"The agent tracks no service order with the key {key!r}: it was "
            "closed or its server was removed; the next sync looks it up again"
        )
    return _row_to_order(row)


class OrdersRepo:
    """Store methods for the index of open service orders."""

    _db: Database

    def track_order(
        self,
        tenant_id: int,
        device_id: str,
        kind: str,
        key: str,
        order_number: int | None = None,
        *,
        occurrences: int = 1,
        now: dt.datetime | None = None,
    ) -> TrackedOrder:
        """Start tracking an order, or return the one already tracked for this
        (tenant, device, kind); compare its key to know which happened."""
        stamp = to_db_time(now or utcnow())
        state = OPENING if order_number is None else OPEN

        with self._db.write() as conn:
            existing = conn.execute(
                f"{_SELECT} WHERE o.tenant_id = ? AND o.device_id = ? AND o.kind = ?",
                (tenant_id, device_id, kind),
            ).fetchone()
            if existing is not None:
                return _row_to_order(existing)
            try:
                conn.execute(
                    "INSERT INTO service_orders (tenant_id, device_id, kind, key, "
                    "order_number, state, opened_at, updated_at, occurrences) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant_id,
                        device_id,
                        kind,
                        key,
                        order_number,
                        state,
                        stamp,
                        stamp,
                        max(1, int(occurrences)),
                    ),
                )
            except sqlite3.IntegrityError as err:
                raise StoreError(
                    f"The service order key {key!r} already tracks another device or "
                    "cause: this is a bug in the agent; send its log to support"
                ) from err
            return _require_order(conn, key)

    def order_opened(
        self, key: str, order_number: int, *, now: dt.datetime | None = None
    ) -> TrackedOrder:
        """Record the number Tigerpaw gave the order."""
        return self._set_state(key, OPEN, order_number, now)

    def order_closing(
        self, key: str, *, now: dt.datetime | None = None
    ) -> TrackedOrder:
        """Record that a close of the order is queued."""
        return self._set_state(key, CLOSING, None, now)

    def set_occurrences(
        self, key: str, occurrences: int, *, now: dt.datetime | None = None
    ) -> TrackedOrder:
        """Record how many times the order's cause has been seen so far."""
        with self._db.write() as conn:
            _require_order(conn, key)
            conn.execute(
                "UPDATE service_orders SET occurrences = ?, updated_at = ? "
                "WHERE key = ?",
                (max(1, int(occurrences)), to_db_time(now or utcnow()), key),
            )
            return _require_order(conn, key)

    def forget_order(self, key: str) -> bool:
        """Stop tracking an order (Tigerpaw closed it); False if it was not tracked."""
        with self._db.write() as conn:
            removed = conn.execute(
                "DELETE FROM service_orders WHERE key = ?", (key,)
            ).rowcount
        return bool(removed)

    def find_order(
        self, tenant_id: int, device_id: str, kind: str
    ) -> TrackedOrder | None:
        """The tracked order of a (tenant, device, kind), or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"{_SELECT} WHERE o.tenant_id = ? AND o.device_id = ? AND o.kind = ?",
                (tenant_id, device_id, kind),
            ).fetchone()
        return _row_to_order(row) if row else None

    def find_order_by_key(self, key: str) -> TrackedOrder | None:
        """The tracked order with this key, or None."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE o.key = ?", (key,)).fetchone()
        return _row_to_order(row) if row else None

    def list_orders(
        self,
        *,
        tenant_id: int | None = None,
        integration_id: str | None = None,
    ) -> list[TrackedOrder]:
        """Tracked orders of a tenant, an integration or all, oldest first."""
        query = _SELECT
        params: list[object] = []
        if integration_id is not None:
            query += " JOIN tenants AS t ON t.id = o.tenant_id AND t.integration_id = ?"
            params.append(integration_id)
        if tenant_id is not None:
            query += " WHERE o.tenant_id = ?"
            params.append(tenant_id)

        with self._db.read() as conn:
            rows = conn.execute(f"{query} ORDER BY o.id", params).fetchall()
        return [_row_to_order(row) for row in rows]

    def _set_state(
        self,
        key: str,
        state: str,
        order_number: int | None,
        now: dt.datetime | None,
    ) -> TrackedOrder:
        """Move a tracked order to ``state`` (keeping its number when None)."""
        with self._db.write() as conn:
            _require_order(conn, key)
            conn.execute(
                "UPDATE service_orders SET state = ?, "
                "order_number = COALESCE(?, order_number), updated_at = ? "
                "WHERE key = ?",
                (state, order_number, to_db_time(now or utcnow()), key),
            )
            return _require_order(conn, key)
