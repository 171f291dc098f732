"""The SQLite connection: WAL mode, transactions, migrations and readable errors.

A transaction borrows a connection from a small pool and gives it back when it ends,
so a connection is used by one thread at a time (SQLite connections are not meant to
be shared while in use) and the agent keeps a few connections, each with its page
cache, rather than one per thread that ever touched the store. Writes open ``BEGIN
IMMEDIATE`` transactions so that two writers queue on the busy timeout instead of
failing half-way through.

Durability: the journal is a write-ahead log with ``synchronous=FULL``. WAL alone keeps
the file whole when the process is killed at any moment; FULL also fsyncs the log at
every commit, so a commit that returned survives a power cut. The outbox promises that a
write is saved *before* it is sent to Tigerpaw, and the agent commits a few hundred
small transactions per sync at most, so the extra fsync is cheap and worth it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from agent.errors import StoreError
from agent.store.migrations import MIGRATIONS, Migration

logger = logging.getLogger(__name__)

DB_FILE_NAME = "agent.db"
DEFAULT_BUSY_TIMEOUT = 10.0
#: Page cache per connection, in KiB (SQLite's default is about 2 MB). Another
#: connection's write empties a cache anyway (WAL) and the system caches the file,
#: so a small one costs little speed; the cache's pages, made and freed as
#: connections come and go, otherwise leave holes in the heap of an idle agent.
CACHE_KIB = 128
#: Connections kept open between transactions; more are made while many threads
#: hold a transaction at once, and closed when given back.
KEEP_IDLE = 4

_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def to_db_time(value: dt.datetime) -> str:
    """A timezone-aware time as sortable UTC text (microseconds always present)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store keeps aware times only, got naive {value!r}")
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def from_db_time(text: str | None) -> dt.datetime | None:
    """Read a time written by :func:`to_db_time` (``None`` stays ``None``)."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text)


def utcnow() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def describe_error(err: sqlite3.Error, path: Path) -> StoreError:
    """Turn an SQLite error into a StoreError a technician can act on."""
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(err).lower()

    if primary in _BUSY_CODES or "locked" in text:
        message = (
            f"The agent's database at {path} is locked by another program: "
            "close it and try again"
        )
    elif primary == sqlite3.SQLITE_FULL or "disk is full" in text:
        message = f"The disk holding {path} is full: free some space; nothing was saved"
    elif primary == sqlite3.SQLITE_READONLY or "readonly" in text:
        message = (
            f"The agent's database at {path} is read-only: give this user write "
            "access to the file and its folder, then try again"
        )
    elif primary == sqlite3.SQLITE_CANTOPEN or "unable to open" in text:
        message = (
            f"The agent cannot open its database at {path}: check that the folder "
            "exists and that this user may write to it"
        )
    elif primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (
        "malformed" in text or "not a database" in text
    ):
        message = (
            f"The agent's database at {path} is damaged: stop the agent, move the "
            "file aside (a new one is made at the next start) and set up the "
            "integrations again, or restore a backup of the file"
        )
    elif primary == sqlite3.SQLITE_IOERR or "disk i/o" in text:
        message = (
            f"The agent could not read or write its database at {path} (a disk "
            "error): check the disk, then try again; nothing was saved"
        )
    else:
        message = (
            f"The agent's database at {path} failed ({err}): try again, and if it "
            "keeps failing send the agent's log to support"
        )
    return StoreError(message)


class Database:
    """One SQLite file, with pooled connections and explicit transactions."""

    def __init__(self, path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        """Remember the file; connections are made when transactions need them."""
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._in_use: set[sqlite3.Connection] = set()
        # The connection this thread's open transaction holds (nested calls join).
        self._local = threading.local()
        self._closed = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Database:
        """Open (or create) the file, switch it to WAL and run pending migrations."""
        db = cls(path, busy_timeout)
        try:
            db.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"The agent cannot create the folder {db.path.parent} for its "
                f"database ({err.strerror}): check that this user may write there"
            ) from err

        try:
            db._restrict_file_mode()
            db._set_journal_mode()
            migrate(db, migrations)
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Close the idle connections now and the others when their transaction
        ends; the Database cannot be used after."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def release_idle(self) -> int:
        """Close every connection no transaction holds (each keeps a page cache);
        how many were closed. The next transaction simply opens a new one."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        return len(idle)

    def in_transaction(self) -> bool:
        """Whether this thread has a transaction open (a call would join it)."""
        return getattr(self._local, "conn", None) is not None

    def _borrow(self) -> sqlite3.Connection:
        """An idle connection, or a new one."""
        with self._lock:
            if self._closed:
                raise StoreError(
                    f"The agent's database at {self.path} is closed: restart the agent"
                )
            conn = self._idle.pop() if self._idle else None
            if conn is not None:
                self._in_use.add(conn)
                return conn

        conn = self._connect()
        with self._lock:
            self._in_use.add(conn)
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        """Keep a connection for the next transaction, or close it."""
        with self._lock:
            self._in_use.discard(conn)
            # One left inside a transaction (its rollback failed) is not reused.
            reusable = not conn.in_transaction and not self._closed
            if reusable and len(self._idle) < KEEP_IDLE:
                self._idle.append(conn)
                return
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        """A new connection with our settings."""
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as err:
            raise describe_error(err, self.path) from err
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        except sqlite3.Error as err:
            conn.close()
            raise describe_error(err, self.path) from err
        conn.row_factory = sqlite3.Row
        return conn

    def _set_journal_mode(self) -> None:
        """Switch the file to write-ahead logging (kept in the file once set)."""
        conn = self._borrow()
        try:
            row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.Error as err:
            raise describe_error(err, self.path) from err
        finally:
            self._give_back(conn)
        if row is None or str(row[0]).lower() != "wal":
            # Some network shares cannot hold the shared-memory file WAL needs;
            # SQLite then keeps its rollback journal, which is still crash-safe.
            logger.warning(
                "The database at %s could not use write-ahead logging (mode %s); "
                "it still works, a little slower",
                self.path,
                row[0] if row else "unknown",
            )

    def _restrict_file_mode(self) -> None:
        """Make the files readable by their owner only (they name the MSP's clients).

        A new file is created 0600 before SQLite opens it, because SQLite gives its
        -wal and -shm files the mode of the database file.
        """
        if os.name != "posix":
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as err:
            raise StoreError(
                f"The agent cannot create its database at {self.path} "
                f"({err.strerror}): check that this user may write to the folder"
            ) from err
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").chmod(0o600)

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), committed when the block ends."""
        return self._transaction("BEGIN IMMEDIATE")

    def read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query in the block sees the same snapshot."""
        return self._transaction("BEGIN")

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        """A transaction opened with ``begin``, committed when the block ends."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            # A nested call joins the transaction already open on this thread.
            yield held
            return

        conn = self._borrow()
        self._local.conn = conn
        try:
            try:
                conn.execute(begin)
            except sqlite3.Error as err:
                raise describe_error(err, self.path) from err
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback(conn)
                raise describe_error(err, self.path) from err
            except BaseException:
                self._rollback(conn)
                raise
        finally:
            self._local.conn = None
            self._give_back(conn)

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        """Roll back if a transaction is open; a failed rollback changes nothing."""
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to the file (0 for a new file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _refuse_newer(path: Path, current: int, known: int) -> None:
    """Raise when the file was migrated by a newer agent than this one."""
    if current > known:
        raise StoreError(
            f"The agent's database at {path} was written by a newer version of the "
            f"agent (schema {current}; this version knows up to {known}): install "
            "that newer version again, or move the file aside to start afresh"
        )


def migrate(db: Database, migrations: Sequence[Migration]) -> int:
    """Apply the migrations the file lacks, each in its own transaction."""
    ordered = sorted(migrations, key=lambda m: m.version)
    known = ordered[-1].version if ordered else 0
    with db.read() as conn:
        current = schema_version(conn)
    _refuse_newer(db.path, current, known)

    for migration in ordered:
        if migration.version <= current:
            continue

        with db.write() as conn:
            # Read the version again under the write lock: another process may
            # have migrated the file while we waited.
            current = schema_version(conn)
            _refuse_newer(db.path, current, known)
            if migration.version <= current:
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY,"
                " description TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) "
                "VALUES (?, ?, ?)",
                (migration.version, migration.description, to_db_time(utcnow())),
            )
            current = migration.version

        logger.info(
            "Database %s: applied migration %d (%s)",
            db.path,
            migration.version,
            migration.description,
        )
    return current
