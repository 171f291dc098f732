"""The numbered migrations of the agent's database, oldest first.

A migration is never edited once released: a change to the schema is a new, higher
number. Each runs in one transaction with the ``schema_version`` row that records it
(the runner in :mod:`agent.store.db` creates that table). Foreign keys are on during
migrations, so a future migration that rebuilds a table must copy rows in an order the
keys allow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its number, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


_INITIAL = (
    # Connection fields that are not secret; passwords and private keys live in
    # agent.secrets. ``console`` names the server the tenants come from, so that a
    # tenant can belong to one integration only (see the tenants table).
    """
    CREATE TABLE integrations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (trim(name) <> ''),
        platform TEXT NOT NULL DEFAULT 'Tigerpaw' CHECK (platform = 'Tigerpaw'),
        source TEXT NOT NULL CHECK (source IN ('ksc', 'kbh')),
        console TEXT NOT NULL,
        ksc_address TEXT NOT NULL DEFAULT '',
        ksc_user TEXT NOT NULL DEFAULT '',
        ksc_certificate_path TEXT NOT NULL DEFAULT '',
        ksc_fingerprint TEXT NOT NULL DEFAULT '',
        proxy_address TEXT NOT NULL DEFAULT '',
        proxy_user TEXT NOT NULL DEFAULT '',
        kbh_email TEXT NOT NULL DEFAULT '',
        tigerpaw_url TEXT NOT NULL DEFAULT '',
        tigerpaw_asmx_url TEXT NOT NULL DEFAULT '',
        tigerpaw_soap_user TEXT NOT NULL DEFAULT '',
        tigerpaw_public_key TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE administrators (
        integration_id TEXT NOT NULL
            REFERENCES integrations (id) ON DELETE CASCADE,
        email TEXT NOT NULL COLLATE NOCASE,
        alias TEXT NOT NULL DEFAULT '',
        added_at TEXT NOT NULL,
        PRIMARY KEY (integration_id, email)
    ) WITHOUT ROWID
    """,
    # The UNIQUE key is what makes "a tenant belongs to one integration only" a rule
    # of the schema rather than of the code.
    """
    CREATE TABLE tenants (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        integration_id TEXT NOT NULL
            REFERENCES integrations (id) ON DELETE CASCADE,
        source TEXT NOT NULL CHECK (source IN ('ksc', 'kbh')),
        console TEXT NOT NULL,
        source_id TEXT NOT NULL CHECK (source_id <> ''),
        name TEXT NOT NULL,
        added_at TEXT NOT NULL,
        last_sync_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        UNIQUE (source, console, source_id)
    )
    """,
    "CREATE INDEX tenants_by_integration ON tenants (integration_id)",
    # One-to-one: a tenant has at most one row (primary key) and an account number
    # appears at most once (UNIQUE), across every integration.
    """
    CREATE TABLE mappings (
        tenant_id INTEGER PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        account_number INTEGER NOT NULL UNIQUE,
        account_name TEXT NOT NULL DEFAULT '',
        agreement_number INTEGER,
        agreement_name TEXT NOT NULL DEFAULT '',
        billing INTEGER NOT NULL DEFAULT 0 CHECK (billing IN (0, 1)),
        service_orders INTEGER NOT NULL DEFAULT 1 CHECK (service_orders IN (0, 1)),
        billing_approved INTEGER NOT NULL DEFAULT 0
            CHECK (billing_approved IN (0, 1)),
        mapped_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE sync_choices (
        integration_id TEXT PRIMARY KEY
            REFERENCES integrations (id) ON DELETE CASCADE,
        choices TEXT NOT NULL CHECK (json_valid(choices)),
        updated_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE cursors (
        tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        stream TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, stream)
    ) WITHOUT ROWID
    """,
    # The outbox keeps sent rows (and their keys) after a tenant goes, so that a key
    # once sent is never sent again; its integration_id is therefore not a foreign key.
    """
    CREATE TABLE outbox (
        key TEXT PRIMARY KEY CHECK (key <> ''),
        integration_id TEXT NOT NULL,
        tenant_id INTEGER REFERENCES tenants (id) ON DELETE SET NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL CHECK (json_valid(payload)),
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sent', 'failed', 'abandoned')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        tigerpaw_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        done_at TEXT
    )
    """,
    """
    CREATE INDEX outbox_due ON outbox (next_attempt_at)
        WHERE state IN ('pending', 'failed')
    """,
    "CREATE INDEX outbox_by_integration ON outbox (integration_id, state)",
    # History outlives integrations and tenants, so it copies their names and holds
    # no foreign keys.
    """
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        integration_id TEXT NOT NULL,
        integration_name TEXT NOT NULL DEFAULT '',
        tenant_id INTEGER,
        tenant_name TEXT NOT NULL DEFAULT '',
        account_number INTEGER,
        target TEXT NOT NULL,
        action TEXT NOT NULL,
        before TEXT CHECK (before IS NULL OR json_valid(before)),
        after TEXT CHECK (after IS NULL OR json_valid(after)),
        outbox_key TEXT
    )
    """,
    "CREATE INDEX history_by_integration ON history (integration_id, id)",
    "CREATE INDEX history_by_account ON history (account_number, id)",
    # Orders the agent has opened and not yet seen closed. The UNIQUE key on
    # (tenant, device, kind) is the "one open order per device and cause" rule.
    """
    CREATE TABLE service_orders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE CHECK (key <> ''),
        order_number INTEGER,
        state TEXT NOT NULL DEFAULT 'opening'
            CHECK (state IN ('opening', 'open', 'closing')),
        opened_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (tenant_id, device_id, kind)
    )
    """,
)

# How many times the cause of an order was seen while the order stayed open, so that
# a repeat's note can say "seen 3 times" across restarts.
_ORDER_OCCURRENCES = (
    "ALTER TABLE service_orders ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1",
)

# When the first attempt of a write began (committed before anything is sent). A
# write whose mark is set may have reached Tigerpaw unrecorded (a crash, a timeout),
# so only then does its next attempt look for what it made; a first attempt sends
# straight away.
_ATTEMPT_STARTED = ("ALTER TABLE outbox ADD COLUMN attempt_started_at TEXT",)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "integrations, tenants, mappings, outbox, history", _INITIAL),
    Migration(2, "service orders count their occurrences", _ORDER_OCCURRENCES),
    Migration(3, "writes record when their first attempt began", _ATTEMPT_STARTED),
)
