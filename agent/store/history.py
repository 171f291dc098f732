"""History: every change the agent made in Tigerpaw, with before and after."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

from agent.store.db import Database, from_db_time, to_db_time, utcnow
from agent.store.records import HistoryEntry, NewHistory

DEFAULT_PAGE = 100

_SELECT = (
    "SELECT id, at, integration_id, integration_name, tenant_id, tenant_name, "
    "account_number, target, action, before, after, outbox_key FROM history"
)


def _dump(value: object) -> str | None:
    """JSON text of a before/after value (None stays NULL)."""
    return None if value is None else json.dumps(value, sort_keys=True)


def insert_history(conn: sqlite3.Connection, entry: NewHistory, at: str) -> int:
    """Write one history row inside the caller's transaction; returns its id.

    The integration's and tenant's names are copied so the row stays readable
    after either is deleted.
    """
    cursor = conn.execute(
        "INSERT INTO history (at, integration_id, integration_name, tenant_id, "
        "tenant_name, account_number, target, action, before, after, outbox_key) "
        "VALUES (?, ?, COALESCE((SELECT name FROM integrations WHERE id = ?), ''), "
        "?, COALESCE((SELECT name FROM tenants WHERE id = ?), ''), ?, ?, ?, ?, ?, ?)",
        (
            at,
            entry.integration_id,
            entry.integration_id,
            entry.tenant_id,
            entry.tenant_id,
            entry.account_number,
            entry.target,
            entry.action,
            _dump(entry.before),
            _dump(entry.after),
            entry.outbox_key,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _row_to_entry(row: sqlite3.Row) -> HistoryEntry:
    """A HistoryEntry from a history row."""
    at = from_db_time(row["at"])
    assert at is not None
    return HistoryEntry(
        id=row["id"],
        at=at,
        integration_id=row["integration_id"],
        integration_name=row["integration_name"],
        tenant_id=row["tenant_id"],
        tenant_name=row["tenant_name"],
        account_number=row["account_number"],
        target=row["target"],
        action=row["action"],
        before=None if row["before"] is None else json.loads(row["before"]),
        after=None if row["after"] is None else json.loads(row["after"]),
        outbox_key=row["outbox_key"],
    )


class HistoryRepo:
    """Store methods for the history of writes to Tigerpaw."""

    _db: Database

    def record_history(
        self, entry: NewHistory, *, at: dt.datetime | None = None
    ) -> HistoryEntry:
        """Keep one change made in Tigerpaw."""
        with self._db.write() as conn:
            entry_id = insert_history(conn, entry, to_db_time(at or utcnow()))
            row = conn.execute(f"{_SELECT} WHERE id = ?", (entry_id,)).fetchone()
        return _row_to_entry(row)

    def list_history(
        self,
        *,
        integration_id: str | None = None,
        account_number: int | None = None,
        tenant_id: int | None = None,
        before_id: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[HistoryEntry]:
        """Kept changes, newest first; ``before_id`` pages back from an entry."""
        conditions: list[str] = []
        params: list[object] = []
        for column, value in (
            ("integration_id", integration_id),
            ("account_number", account_number),
            ("tenant_id", tenant_id),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if before_id is not None:
            conditions.append("id < ?")
            params.append(before_id)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""

        with self._db.read() as conn:
            rows = conn.execute(
                f"{_SELECT}{where} ORDER BY id DESC LIMIT ?", (*params, limit)
            ).fetchall()
        return [_row_to_entry(row) for row in rows]
