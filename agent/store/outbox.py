"""The outbox: every write to Tigerpaw, saved under its key before it is sent."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from agent.errors import StoreError
from agent.secrets import redact
from agent.store.db import Database, from_db_time, to_db_time, utcnow
from agent.store.history import insert_history
from agent.store.records import (
    ABANDONED,
    FAILED,
    PENDING,
    SENT,
    NewHistory,
    OutboxItem,
)
from agent.wording import plural

logger = logging.getLogger(__name__)

_SELECT = (
    "SELECT key, integration_id, tenant_id, kind, payload, state, attempts, "
    "next_attempt_at, last_error, tigerpaw_id, created_at, updated_at, done_at "
    "FROM outbox"
)


def _row_to_item(row: sqlite3.Row) -> OutboxItem:
    """An OutboxItem from an outbox row."""
    times = {
        name: from_db_time(row[name])
        for name in ("next_attempt_at", "created_at", "updated_at")
    }
    return OutboxItem(
        key=row["key"],
        integration_id=row["integration_id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        tigerpaw_id=row["tigerpaw_id"],
        done_at=from_db_time(row["done_at"]),
        **times,  # type: ignore[arg-type]
    )


def _missing(key: str) -> StoreError:
    """The error for a write the outbox no longer holds."""
    return StoreError(
        f"The outbox holds no write with the key {key!r}: it was removed with "
        "its integration or server; the next sync plans it again if needed"
    )


def _require_item(conn: sqlite3.Connection, key: str) -> OutboxItem:
    """The outbox item with this key, or a StoreError."""
    row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise _missing(key)
    return _row_to_item(row)


class OutboxRepo:
    """Store methods for the outbox."""

    _db: Database

    def enqueue(
        self,
        key: str,
        *,
        integration_id: str,
        kind: str,
        payload: Any,
        tenant_id: int | None = None,
        now: dt.datetime | None = None,
    ) -> OutboxItem:
        """Save a write under its key, due now; a key already saved is kept as is."""
        stamp = to_db_time(now or utcnow())
        document = json.dumps(payload, sort_keys=True)

        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO outbox (key, integration_id, tenant_id, kind, payload, "
                "state, next_attempt_at, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (
                    key,
                    integration_id,
                    tenant_id,
                    kind,
                    document,
                    PENDING,
                    stamp,
                    stamp,
                    stamp,
                ),
            )
            return _require_item(conn, key)

    def get_outbox_item(self, key: str) -> OutboxItem | None:
        """The write saved under this key, or None."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return _row_to_item(row) if row else None

    def start_attempt(self, key: str, *, now: dt.datetime | None = None) -> bool:
        """Mark that a write is about to be sent; whether an earlier attempt began.

        The mark is committed before this returns, so it must be called outside any
        transaction: after a crash or a timeout, a set mark says the write may have
        reached Tigerpaw and must be looked for before it is sent again.
        """
        if self._db.in_transaction():
            raise StoreError(
                f"The agent marked the write {key!r} inside another change, so the "
                "mark would not be saved before sending (a bug): send the agent's "
                "log to support"
            )
        stamp = to_db_time(now or utcnow())

        with self._db.write() as conn:
            row = conn.execute(
                "SELECT attempt_started_at FROM outbox WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                raise _missing(key)
            began = row["attempt_started_at"]
            if began is None:
                conn.execute(
                    "UPDATE outbox SET attempt_started_at = ? WHERE key = ?",
                    (stamp, key),
                )
        return began is not None

    def due(
        self,
        now: dt.datetime | None = None,
        limit: int = 100,
        *,
        integration_id: str | None = None,
    ) -> list[OutboxItem]:
        """Writes to send now: pending or failed ones whose time has come, oldest due
        first (so a write waiting out a backoff never holds up the others)."""
        stamp = to_db_time(now or utcnow())
        query = f"{_SELECT} WHERE state IN (?, ?) AND next_attempt_at <= ?"
        params: list[object] = [PENDING, FAILED, stamp]
        if integration_id is not None:
            query += " AND integration_id = ?"
            params.append(integration_id)

        with self._db.read() as conn:
            rows = conn.execute(
                f"{query} ORDER BY next_attempt_at, rowid LIMIT ?", (*params, limit)
            ).fetchall()
        return [_row_to_item(row) for row in rows]

    def mark_sent(
        self,
        key: str,
        tigerpaw_id: str | int | None = None,
        *,
        history: NewHistory | None = None,
        now: dt.datetime | None = None,
    ) -> OutboxItem:
        """Mark a write done with Tigerpaw's id, keeping its history in the same
        transaction; a write already marked sent is left alone."""
        stamp = to_db_time(now or utcnow())
        if history is not None and history.outbox_key is None:
            history = dataclasses.replace(history, outbox_key=key)

        def record(conn: sqlite3.Connection) -> None:
            """Keep what the write changed, in the transaction that marks it."""
            if history is not None:
                insert_history(conn, history, stamp)

        return self._update_unsent(
            key,
            "state = ?, tigerpaw_id = ?, attempts = attempts + 1, last_error = NULL, "
            "updated_at = ?, done_at = ?",
            (SENT, None if tigerpaw_id is None else str(tigerpaw_id), stamp, stamp),
            then=record,
        )

    def mark_failed(
        self,
        key: str,
        error: str,
        next_attempt: dt.datetime,
        *,
        now: dt.datetime | None = None,
    ) -> OutboxItem:
        """Count a failed attempt and set when to try again."""
        return self._fail(key, FAILED, error, next_attempt, now)

    def abandon(
        self, key: str, error: str, *, now: dt.datetime | None = None
    ) -> OutboxItem:
        """Give up on a write (it needs a person); it stays listed with its error."""
        return self._fail(key, ABANDONED, error, None, now)

    def retry(self, key: str, *, now: dt.datetime | None = None) -> OutboxItem:
        """Make a failed or abandoned write due now (for the page's Retry button)."""
        stamp = to_db_time(now or utcnow())
        return self._update_unsent(
            key,
            "state = ?, next_attempt_at = ?, updated_at = ?",
            (PENDING, stamp, stamp),
        )

    def retry_waiting(
        self, integration_id: str, *, now: dt.datetime | None = None
    ) -> int:
        """Make every failed write of an integration due now (a person pressed Sync
        now); how many."""
        stamp = to_db_time(now or utcnow())
        with self._db.write() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, updated_at = ? "
                "WHERE integration_id = ? AND state = ?",
                (PENDING, stamp, stamp, integration_id, FAILED),
            )
        return cursor.rowcount

    def _fail(
        self,
        key: str,
        state: str,
        error: str,
        next_attempt: dt.datetime | None,
        now: dt.datetime | None,
    ) -> OutboxItem:
        """Record a failed attempt in ``state``; a sent write is left alone."""
        stamp = to_db_time(now or utcnow())
        return self._update_unsent(
            key,
            "state = ?, attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = COALESCE(?, next_attempt_at), updated_at = ?, "
            "done_at = ?",
            (
                state,
                redact(error),
                to_db_time(next_attempt) if next_attempt else None,
                stamp,
                stamp if state == ABANDONED else None,
            ),
        )

    def _update_unsent(
        self,
        key: str,
        assignments: str,
        values: tuple[object, ...],
        *,
        then: Callable[[sqlite3.Connection], None] | None = None,
    ) -> OutboxItem:
        """Set columns of a write (``assignments``: ``column = ?, ...``) and run
        ``then`` in the same transaction; the write as it is now.

        A write already sent is left as it is: Tigerpaw has it, and a late failure
        or retry of the same write must not make it due again.
        """
        with self._db.write() as conn:
            item = _require_item(conn, key)
            if item.state == SENT:
                return item
            conn.execute(
                f"UPDATE outbox SET {assignments} WHERE key = ?", (*values, key)
            )
            if then is not None:
                then(conn)
            return _require_item(conn, key)

    def pending_count(self, integration_id: str | None = None) -> int:
        """How many writes wait to be sent (pending or failed, not abandoned)."""
        return sum(
            count
            for state, count in self.outbox_counts(integration_id).items()
            if state in (PENDING, FAILED)
        )

    def outbox_counts(self, integration_id: str | None = None) -> dict[str, int]:
        """The number of writes in each state (states without any are left out)."""
        query = "SELECT state, COUNT(*) AS n FROM outbox"
        params: tuple[object, ...] = ()
        if integration_id is not None:
            query += " WHERE integration_id = ?"
            params = (integration_id,)
        with self._db.read() as conn:
            rows = conn.execute(f"{query} GROUP BY state", params).fetchall()
        return {row["state"]: row["n"] for row in rows}

    def list_outbox(
        self,
        *,
        state: str | None = None,
        integration_id: str | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        """Writes, most recently changed first, for the page."""
        conditions: list[str] = []
        params: list[object] = []
        if state is not None:
            conditions.append("state = ?")
            params.append(state)
        if integration_id is not None:
            conditions.append("integration_id = ?")
            params.append(integration_id)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""

        with self._db.read() as conn:
            rows = conn.execute(
                f"{_SELECT}{where} ORDER BY updated_at DESC, rowid DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_row_to_item(row) for row in rows]

    def prune_outbox(self, done_before: dt.datetime) -> int:
        """Delete sent writes done before a time (history keeps what they changed).

        Their keys are forgotten too, so prune only past the time a key can recur.
        """
        with self._db.write() as conn:
            removed = conn.execute(
                "DELETE FROM outbox WHERE state = ? AND done_at < ?",
                (SENT, to_db_time(done_before)),
            ).rowcount
        if removed:
            logger.info("Pruned %s from the outbox", plural(removed, "sent write"))
        return removed
