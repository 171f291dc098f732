"""Business Hub administrators bound to an integration."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from agent.errors import SetupError
from agent.store.db import Database, to_db_time, utcnow
from agent.store.integrations import require_integration
from agent.store.records import Administrator

logger = logging.getLogger(__name__)


class AdminsRepo:
    """Store methods for an integration's Business Hub administrators."""

    _db: Database

    def list_administrators(self, integration_id: str) -> list[Administrator]:
        """The integration's administrators, by email."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT email, alias FROM administrators WHERE integration_id = ? "
                "ORDER BY email",
                (integration_id,),
            ).fetchall()
        return [Administrator(row["email"], row["alias"]) for row in rows]

    def add_administrators(
        self,
        integration_id: str,
        admins: Iterable[Administrator],
        *,
        now: dt.datetime | None = None,
    ) -> list[Administrator]:
        """Add administrators (a known email gets the new alias); all or nothing."""
        stamp = to_db_time(now or utcnow())
        wanted = [Administrator(a.email.strip(), a.alias.strip()) for a in admins]
        for admin in wanted:
            if "@" not in admin.email or admin.email.startswith("@"):
                raise SetupError(
                    f"{admin.email or 'A blank line'} is not an email address: write "
                    "one administrator per line as email;alias",
                    field="administrators",
                )

        with self._db.write() as conn:
            require_integration(conn, integration_id)
            conn.executemany(
                "INSERT INTO administrators (integration_id, email, alias, added_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (integration_id, email) "
                "DO UPDATE SET alias = excluded.alias",
                [(integration_id, a.email, a.alias, stamp) for a in wanted],
            )
        return self.list_administrators(integration_id)

    def remove_administrators(
        self, integration_id: str, emails: Iterable[str]
    ) -> list[Administrator]:
        """Remove administrators; SetupError when none would be left."""
        doomed = {email.strip().lower() for email in emails}

        with self._db.write() as conn:
            integration = require_integration(conn, integration_id)
            current = conn.execute(
                "SELECT email FROM administrators WHERE integration_id = ?",
                (integration_id,),
            ).fetchall()
            left = [
                row["email"] for row in current if row["email"].lower() not in doomed
            ]
            if current and not left:
                raise SetupError(
                    f"The integration {integration.name} needs at least one "
                    "administrator: add another before removing the last",
                    field="administrators",
                )
            conn.executemany(
                "DELETE FROM administrators WHERE integration_id = ? AND email = ?",
                [(integration_id, email) for email in doomed],
            )
        return self.list_administrators(integration_id)
