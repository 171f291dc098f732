"""Sync cursors: where each tenant's stream (events, for example) was read up to."""

from __future__ import annotations

import datetime as dt

from agent.store.db import Database, to_db_time, utcnow


class CursorsRepo:
    """Store methods for sync cursors."""

    _db: Database

    def get_cursor(self, tenant_id: int, stream: str) -> str | None:
        """The saved cursor of a tenant's stream, or None before the first read."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT value FROM cursors WHERE tenant_id = ? AND stream = ?",
                (tenant_id, stream),
            ).fetchone()
        return row["value"] if row else None

    def set_cursor(
        self,
        tenant_id: int,
        stream: str,
        value: str,
        *,
        now: dt.datetime | None = None,
    ) -> None:
        """Save how far a tenant's stream was read."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO cursors (tenant_id, stream, value, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id, stream) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at",
                (tenant_id, stream, str(value), to_db_time(now or utcnow())),
            )

    def clear_cursor(self, tenant_id: int, stream: str) -> None:
        """Forget a stream's cursor, so the next read starts over."""
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM cursors WHERE tenant_id = ? AND stream = ?",
                (tenant_id, stream),
            )
