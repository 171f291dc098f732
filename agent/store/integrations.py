"""Integrations: create, read, edit and delete, and the console each one reads."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import uuid

from agent.errors import SetupError
from agent.store.db import Database, from_db_time, to_db_time, utcnow
from agent.store.records import (
    FAILED,
    KBH,
    KSC,
    PENDING,
    PLATFORM,
    SETTINGS_FIELDS,
    SOURCES,
    TENANT_LABELS,
    Integration,
    IntegrationSettings,
)
from agent.wording import plural

logger = logging.getLogger(__name__)

KSC_DEFAULT_PORT = 13299

_COLUMNS = ", ".join(("id", *SETTINGS_FIELDS, "created_at", "updated_at"))


def console_identity(settings: IntegrationSettings) -> str:
    """Which console an integration's tenants come from, written one way only.

    Every Business Hub company has an id unique across Business Hub, so all KBH
    integrations share one console; a KSC virtual server is known by its server's
    address (lower case, without scheme or trailing slash, with the default port).
    """
    if settings.source == KBH:
        return KBH

    address = settings.ksc_address.strip().lower().rstrip("/")
    for scheme in ("https://", "http://"):
        if address.startswith(scheme):
            address = address[len(scheme) :]
    host, sep, port = address.rpartition(":")
    if not sep or host.endswith(":") or (address.startswith("[") and "]" in port):
        # No port given (a bare host, or an IPv6 address in brackets).
        address = f"{address}:{KSC_DEFAULT_PORT}"
    return f"{KSC}:{address}"


def clean_settings(settings: IntegrationSettings) -> IntegrationSettings:
    """Trim every field and check what the store relies on; SetupError names it."""
    values = {}
    for name in SETTINGS_FIELDS:
        value = getattr(settings, name)
        values[name] = "" if value is None else str(value).strip()
    cleaned = IntegrationSettings(**values)

    if not cleaned.name:
        raise SetupError("Give the integration a name", field="name")
    if cleaned.platform != PLATFORM:
        raise SetupError(
            f"Select the platform {PLATFORM}: it is the only one this agent serves",
            field="platform",
        )
    if cleaned.source not in SOURCES:
        raise SetupError(
            "Choose where the integration reads from: Kaspersky Security Center "
            "or Kaspersky Business Hub",
            field="source",
        )
    if cleaned.source == KSC and not cleaned.ksc_address:
        raise SetupError(
            "Enter the address of Kaspersky Security Center", field="ksc_address"
        )
    if cleaned.source == KBH and not cleaned.kbh_email:
        raise SetupError(
            "Enter the email address you sign in to Business Hub with",
            field="kbh_email",
        )
    return cleaned


def row_to_integration(row: sqlite3.Row) -> Integration:
    """An Integration from a row of the integrations table."""
    created = from_db_time(row["created_at"])
    updated = from_db_time(row["updated_at"])
    assert created is not None and updated is not None
    return Integration(
        id=row["id"],
        created_at=created,
        updated_at=updated,
        **{name: row[name] for name in SETTINGS_FIELDS},
    )


def require_integration(conn: sqlite3.Connection, integration_id: str) -> Integration:
    """The integration, or a SetupError saying it is gone."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM integrations WHERE id = ?", (integration_id,)
    ).fetchone()
    if row is None:
        raise SetupError(
            f"The integration {integration_id} no longer exists: reload the page",
            field="integration",
        )
    return row_to_integration(row)


class IntegrationsRepo:
    """Store methods for integrations."""

    _db: Database

    def create_integration(
        self,
        settings: IntegrationSettings,
        *,
        now: dt.datetime | None = None,
        integration_id: str | None = None,
    ) -> Integration:
        """Save a new integration under a new UUID (or the one given) and return it.

        The setup page gives the UUID it already showed as the integration ID and
        sent to Business Hub while checking the connection.
        """
        cleaned = clean_settings(settings)
        stamp = to_db_time(now or utcnow())
        chosen = uuid.UUID(integration_id) if integration_id else uuid.uuid4()
        integration_id = str(chosen)

        with self._db.write() as conn:
            _refuse_taken_name(conn, cleaned.name, integration_id)
            values = [getattr(cleaned, name) for name in SETTINGS_FIELDS]
            conn.execute(
                f"INSERT INTO integrations ({_COLUMNS}, console) "
                f"VALUES ({', '.join('?' * (len(SETTINGS_FIELDS) + 4))})",
                (integration_id, *values, stamp, stamp, console_identity(cleaned)),
            )
            created = require_integration(conn, integration_id)

        logger.info("Created integration %s (%s)", created.name, created.id)
        return created

    def get_integration(self, integration_id: str) -> Integration | None:
        """The integration with this ID, or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM integrations WHERE id = ?", (integration_id,)
            ).fetchone()
        return row_to_integration(row) if row else None

    def find_integration(self, name: str) -> Integration | None:
        """The integration with this name (any letter case), or None."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM integrations WHERE name = ?", (name.strip(),)
            ).fetchone()
        return row_to_integration(row) if row else None

    def list_integrations(self) -> list[Integration]:
        """Every integration, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM integrations ORDER BY created_at, rowid"
            ).fetchall()
        return [row_to_integration(row) for row in rows]

    def update_integration(
        self,
        integration_id: str,
        settings: IntegrationSettings,
        *,
        now: dt.datetime | None = None,
    ) -> Integration:
        """Replace an integration's settings; its tenants follow a new KSC address."""
        cleaned = clean_settings(settings)
        console = console_identity(cleaned)

        with self._db.write() as conn:
            current = require_integration(conn, integration_id)
            _refuse_taken_name(conn, cleaned.name, integration_id)
            tenants = conn.execute(
                "SELECT COUNT(*) FROM tenants WHERE integration_id = ?",
                (integration_id,),
            ).fetchone()[0]
            if tenants and cleaned.source != current.source:
                raise SetupError(
                    f"The integration {current.name} holds "
                    f"{plural(tenants, TENANT_LABELS[current.source])}: remove them "
                    "before "
                    "switching it to another source",
                    field="source",
                )
            _move_tenants(conn, integration_id, cleaned.source, console)

            assignments = ", ".join(f"{name} = ?" for name in SETTINGS_FIELDS)
            conn.execute(
                f"UPDATE integrations SET {assignments}, console = ?, updated_at = ? "
                "WHERE id = ?",
                (
                    *(getattr(cleaned, name) for name in SETTINGS_FIELDS),
                    console,
                    to_db_time(now or utcnow()),
                    integration_id,
                ),
            )
            updated = require_integration(conn, integration_id)

        changed = [
            name
            for name in SETTINGS_FIELDS
            if getattr(current, name) != getattr(updated, name)
        ]
        logger.info(
            "Updated integration %s: %s", updated.name, ", ".join(changed) or "nothing"
        )
        return updated

    def delete_integration(self, integration_id: str) -> bool:
        """Delete an integration, its tenants, mappings, cursors and unsent writes.

        History and the record of sent writes are kept. Nothing in Tigerpaw or the
        consoles is touched. Returns False when there was no such integration.
        """
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT name FROM integrations WHERE id = ?", (integration_id,)
            ).fetchone()
            if row is None:
                return False
            dropped = conn.execute(
                "DELETE FROM outbox WHERE integration_id = ? AND state IN (?, ?)",
                (integration_id, PENDING, FAILED),
            ).rowcount
            conn.execute("DELETE FROM integrations WHERE id = ?", (integration_id,))

        logger.info(
            "Deleted integration %s (%s); %s dropped",
            row["name"],
            integration_id,
            plural(dropped, "unsent write"),
        )
        return True


def _refuse_taken_name(conn: sqlite3.Connection, name: str, own_id: str) -> None:
    """SetupError when another integration already has this name."""
    row = conn.execute(
        "SELECT id FROM integrations WHERE name = ? AND id <> ?", (name, own_id)
    ).fetchone()
    if row is not None:
        raise SetupError(
            f"An integration named {name!r} exists already: choose another name",
            field="name",
        )


def _move_tenants(
    conn: sqlite3.Connection, integration_id: str, source: str, console: str
) -> None:
    """Point an integration's tenants at its (new) console, refusing clashes."""
    clash = conn.execute(
        "SELECT mine.name AS tenant, theirs_owner.name AS owner "
        "FROM tenants AS mine "
        "JOIN tenants AS theirs ON theirs.source = ? AND theirs.console = ? "
        "  AND theirs.source_id = mine.source_id "
        "  AND theirs.integration_id <> mine.integration_id "
        "JOIN integrations AS theirs_owner ON theirs_owner.id = theirs.integration_id "
        "WHERE mine.integration_id = ? LIMIT 1",
        (source, console, integration_id),
    ).fetchone()
    if clash is not None:
        raise SetupError(
            f"{clash['tenant']} on that server already belongs to the integration "
            f"{clash['owner']}: remove it there first",
            field="ksc_address",
        )
    conn.execute(
        "UPDATE tenants SET console = ? WHERE integration_id = ?",
        (console, integration_id),
    )
