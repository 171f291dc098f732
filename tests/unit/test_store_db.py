"""Tests of the store's file handling: migrations, WAL, errors a technician reads."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import threading

import pytest

from agent.errors import StoreError
from agent.store import DB_FILE_NAME, IntegrationSettings, Store, describe_error
from agent.store.db import CACHE_KIB, KEEP_IDLE, Database, to_db_time
from agent.store.migrations import MIGRATIONS, Migration

EXPECTED_TABLES = {
    "schema_version",
    "integrations",
    "administrators",
    "tenants",
    "mappings",
    "sync_choices",
    "cursors",
    "outbox",
    "history",
    "service_orders",
}


def _tables(path) -> set[str]:
    """The table names in a database file, read with a plain connection."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows} - {"sqlite_sequence"}


def test_migrations_build_the_schema_from_an_empty_folder(tmp_path):
    """A new data folder gets agent.db with every table and one version row each."""
    with Store.open_in(tmp_path / "data") as store:
        assert store.path == tmp_path / "data" / DB_FILE_NAME
        assert store.schema_version() == MIGRATIONS[-1].version
        assert store.check_integrity() == []

    assert _tables(tmp_path / "data" / DB_FILE_NAME) == EXPECTED_TABLES
    with sqlite3.connect(tmp_path / "data" / DB_FILE_NAME) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    assert versions == [m.version for m in MIGRATIONS]


def test_reopening_runs_no_migration_twice(tmp_path):
    """A migration that inserts a row leaves one row however often the file opens."""
    migrations = (
        *MIGRATIONS,
        Migration(
            MIGRATIONS[-1].version + 1,
            "a counter",
            (
                "CREATE TABLE counter (n INTEGER)",
                "INSERT INTO counter (n) VALUES (1)",
            ),
        ),
    )
    path = tmp_path / "agent.db"
    for _ in range(3):
        Store.open(path, migrations=migrations).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM counter").fetchone()[0] == 1
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == [m.version for m in migrations]


def test_a_failing_migration_leaves_the_last_good_version(tmp_path):
    """Each migration is one transaction: a bad statement undoes its whole step."""
    path = tmp_path / "agent.db"
    broken = (
        *MIGRATIONS,
        Migration(
            MIGRATIONS[-1].version + 1,
            "half a step",
            ("CREATE TABLE half (n INTEGER)", "INSERT INTO no_such_table VALUES (1)"),
        ),
    )

    with pytest.raises(StoreError) as caught:
        Store.open(path, migrations=broken)

    assert str(path) in str(caught.value)
    assert "half" not in _tables(path)
    with Store.open(path) as store:
        assert store.schema_version() == MIGRATIONS[-1].version


def test_a_database_from_a_newer_agent_is_refused(tmp_path):
    """A schema version above the code's gives a StoreError saying what to do."""
    path = tmp_path / "agent.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            "VALUES (999, 'from the future', ?)",
            (to_db_time(dt.datetime.now(dt.UTC)),),
        )

    with pytest.raises(StoreError) as caught:
        Store.open(path)

    message = str(caught.value)
    assert "newer version of the agent" in message
    assert "schema 999" in message
    assert str(path) in message


def test_the_file_uses_wal_full_sync_and_owner_only_mode(tmp_path):
    """WAL is kept in the file; the files are readable by their owner only."""
    path = tmp_path / "agent.db"
    Store.open(path).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    if os.name == "posix":
        store = Store.open(path)
        store.list_integrations()
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode)
            assert mode == 0o600, suffix
        store.close()


def test_a_locked_database_says_so(tmp_path):
    """Another program holding the write lock gives the 'locked' message."""
    path = tmp_path / "agent.db"
    store = Store.open(path, busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as caught:
            store.enqueue("k", integration_id="i", kind="test", payload={})
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()

    assert str(caught.value) == (
        f"The agent's database at {path} is locked by another program: "
        "close it and try again"
    )


def test_a_locked_database_blocks_integration_creation(tmp_path):
    """A write waits for the busy timeout, then reports the lock; nothing is kept."""
    path = tmp_path / "agent.db"
    store = Store.open(path, busy_timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another program"):
            store.create_integration(
                IntegrationSettings(source="kbh", kbh_email="msp@example.com")
            )
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert store.list_integrations() == []
    store.close()


def test_disk_full_gets_a_plain_message(tmp_path):
    """A real SQLITE_FULL (a page limit) becomes the 'disk is full' message."""
    path = tmp_path / "full.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.commit()
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    conn.close()

    error = describe_error(caught.value, path)

    assert isinstance(error, StoreError)
    assert str(error) == (
        f"The disk holding {path} is full: free some space; nothing was saved"
    )


def test_a_file_that_is_not_a_database_is_reported(tmp_path):
    """Garbage in agent.db gives advice, not a traceback."""
    path = tmp_path / "agent.db"
    path.write_bytes(b"this is not SQLite" * 100)

    with pytest.raises(StoreError, match="is damaged: stop the agent"):
        Store.open(path)


def test_a_closed_store_refuses_use(tmp_path):
    """After close, a call says the database is closed."""
    store = Store.open(tmp_path / "agent.db")
    store.close()

    with pytest.raises(StoreError, match="is closed"):
        store.list_integrations()


def test_naive_times_are_refused():
    """Times without a zone would sort wrongly against UTC ones."""
    with pytest.raises(ValueError, match="aware"):
        to_db_time(dt.datetime(2024, 1, 1))
    assert to_db_time(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).endswith("+00:00")


def test_threads_share_a_few_pooled_connections(tmp_path):
    """Twelve threads reading at once leave at most KEEP_IDLE connections open,
    which release_idle closes; the database works on afterwards."""
    db = Database.open(tmp_path / "agent.db")
    together = threading.Barrier(12)

    def read() -> None:
        """Read inside a transaction held until all twelve hold one."""
        with db.read() as conn:
            conn.execute("SELECT COUNT(*) FROM integrations").fetchone()
            together.wait(5)

    workers = [threading.Thread(target=read) for _ in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert db.release_idle() == KEEP_IDLE
    assert db.release_idle() == 0
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM integrations").fetchone()[0] == 0
    db.close()
    assert db.release_idle() == 0


def test_a_transaction_keeps_its_connection_to_itself(tmp_path):
    """While one thread's write is open, another thread reads on a connection of
    its own and does not see the change until it is committed."""
    store = Store.open(tmp_path / "agent.db")
    inside, done = threading.Event(), threading.Event()
    seen: list[int] = []

    def write() -> None:
        """Create an integration and hold the transaction open for a moment."""
        with store.transaction():
            store.create_integration(
                IntegrationSettings(source="ksc", ksc_address="ksc.example.test")
            )
            inside.set()
            done.wait(5)

    writer = threading.Thread(target=write)
    writer.start()
    assert inside.wait(5)
    seen.append(len(store.list_integrations()))
    done.set()
    writer.join()
    seen.append(len(store.list_integrations()))

    assert seen == [0, 1]
    store.close()


def test_connections_keep_a_small_page_cache(tmp_path):
    """Every connection's page cache is capped (an idle agent stays small)."""
    db = Database.open(tmp_path / "agent.db")
    with db.read() as conn:
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    db.close()
