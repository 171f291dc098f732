"""The Store: the agent's SQLite database behind small, typed methods."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from agent.store.admins import AdminsRepo
from agent.store.choices import ChoicesRepo
from agent.store.cursors import CursorsRepo
from agent.store.db import DB_FILE_NAME, DEFAULT_BUSY_TIMEOUT, Database, schema_version
from agent.store.history import HistoryRepo
from agent.store.integrations import IntegrationsRepo
from agent.store.mappings import MappingsRepo
from agent.store.migrations import MIGRATIONS, Migration
from agent.store.orders import OrdersRepo
from agent.store.outbox import OutboxRepo
from agent.store.tenants import TenantsRepo

logger = logging.getLogger(__name__)


class Store(
    IntegrationsRepo,
    AdminsRepo,
    TenantsRepo,
    MappingsRepo,
    ChoicesRepo,
    CursorsRepo,
    OutboxRepo,
    HistoryRepo,
    OrdersRepo,
):
    """Integrations, tenants, mappings, choices, cursors, outbox, history and orders.

    Safe to share between threads: each thread uses its own SQLite connection, and
    every write is one ``BEGIN IMMEDIATE`` transaction.
    """

    def __init__(self, db: Database) -> None:
        """Wrap an open Database (use :meth:`open` rather than this)."""
        self._db = db

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Store:
        """Open the database file at ``path`` (made if missing) and migrate it."""
        return cls(
            Database.open(Path(path), migrations=migrations, busy_timeout=busy_timeout)
        )

    @classmethod
    def open_in(cls, data_dir: Path | str, **kwargs) -> Store:
        """Open ``agent.db`` in the agent's data folder."""
        return cls.open(Path(data_dir) / DB_FILE_NAME, **kwargs)

    @property
    def path(self) -> Path:
        """Where the database file is."""
        return self._db.path

    def close(self) -> None:
        """Close every connection; the Store cannot be used afterwards."""
        self._db.close()

    def release_idle(self) -> int:
        """Close connections no thread needs now (those of ended threads, and this
        thread's): an idle agent keeps no page caches; how many were closed."""
        return self._db.release_idle()

    def __enter__(self) -> Store:
        """Use the store in a with block that closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store at the end of a with block."""
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction around several store calls made in the block.

        Every store method called on this thread inside the block joins it, so
        either all of their changes are kept or, if the block raises, none is.
        """
        with self._db.write():
            yield

    def schema_version(self) -> int:
        """The number of the last migration applied to the file."""
        with self._db.read() as conn:
            return schema_version(conn)

    def check_integrity(self) -> list[str]:
        """SQLite's own check of the file: an empty list when it is sound."""
        with self._db.read() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems
