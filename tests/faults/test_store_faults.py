"""The database locked by another program, or its disk full, while the page saves
or the sync records a write: the agent says so in words and loses nothing accepted.

The lock is real: a second SQLite connection holding ``BEGIN EXCLUSIVE`` on
agent.db. The full disk is real too: the store on a small tmpfs of the test's own,
filled up (skipped where this platform cannot mount one).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.app import Agent
from agent.errors import StoreError
from agent.sandbox import seed
from agent.store import IntegrationSettings, Store, SyncChoices
from agent.web import create_app
from tests.integration.agent_support import (
    add_every_tenant,
    agent_with_emulators,
    create_integration,
)
from tests.integration.sync_support import CHOICES, SyncWorld

PORT = 47990
HOST = f"127.0.0.1:{PORT}"
#: Seconds the agent's store waits for a lock before it reports it.
BUSY = 0.3
LOCKED_WORDS = "is locked by another program: close it and try again"

pytestmark = pytest.mark.usefixtures("no_os_keyring")


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program holding an exclusive lock on the database file."""
    other = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield other
    finally:
        with contextlib.suppress(sqlite3.Error):
            other.execute("ROLLBACK")
        other.close()


class Page:
    """The setup page's Flask app, driven as a script does (Bearer token)."""

    def __init__(self, agent: Agent) -> None:
        """Build the real app for the agent."""
        self.client = create_app(agent, PORT).test_client()
        self.headers = {"Host": HOST, "Authorization": f"Bearer {agent.token}"}

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        """Post a form; the status and the page's text."""
        reply = self.client.post(path, data=form, headers=self.headers)
        return reply.status_code, reply.get_data(as_text=True)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Agent, dict[str, Any], dict[str, Any]]]:
    """Business Hub with 3 companies, Tigerpaw with 3 accounts, and an agent whose
    store waits only a moment for a lock."""
    fleet = seed.make_fleet("production", 3, 1, devices=2)
    with agent_with_emulators(tmp_path, fleet, busy_timeout=BUSY) as made:
        yield made


def set_up(agent: Agent, hub: dict[str, Any], tigerpaw: dict[str, Any]) -> str:
    """Connect, create the integration and add every company; its id."""
    integration_id = create_integration(agent, hub, tigerpaw).integration.id
    add_every_tenant(agent, integration_id)
    return integration_id


def mapping_form(agent: Agent, integration_id: str, order: list[int]) -> dict[str, str]:
    """The grid's fields mapping the tenants, by name order, to the accounts at
    these positions of the account list (billing off)."""
    tenants = sorted(agent.store.list_tenants(integration_id), key=lambda t: t.name)
    accounts = agent.setup.accounts(integration_id)
    form = {}
    for tenant, position in zip(tenants, order, strict=True):
        form[f"account-{tenant.id}"] = str(accounts[position].number)
        form[f"orders-{tenant.id}"] = "on"
    return form


def mapped(agent: Agent, integration_id: str) -> dict[str, int | None]:
    """Tenant name to its mapped account number (None when unmapped)."""
    return {
        t.name: t.mapping.account_number if t.mapping else None
        for t in agent.store.list_tenants(integration_id)
    }


def test_a_locked_database_while_saving_a_mapping_is_shown_and_loses_nothing(
    agent: tuple[Agent, dict[str, Any], dict[str, Any]],
) -> None:
    """The page says the database is locked; the accepted mapping stays."""
    made, hub, tigerpaw = agent
    integration_id = set_up(made, hub, tigerpaw)
    page = Page(made)
    path = f"/integrations/{integration_id}/accounts"
    status, _ = page.post(path, mapping_form(made, integration_id, [0, 1, 2]))
    assert status == 302
    accepted = mapped(made, integration_id)

    with exclusive_lock(made.store.path):
        status, text = page.post(path, mapping_form(made, integration_id, [1, 0, 2]))

    assert status == 409
    assert LOCKED_WORDS in text and str(made.store.path) in text
    assert mapped(made, integration_id) == accepted
    assert made.store.check_integrity() == []

    status, _ = page.post(path, mapping_form(made, integration_id, [1, 0, 2]))
    assert status == 302
    swapped = mapped(made, integration_id)
    assert swapped != accepted and set(swapped.values()) == set(accepted.values())


def test_a_lock_taken_in_the_middle_of_a_mapping_save_loses_nothing(
    agent: tuple[Agent, dict[str, Any], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another program locks the file between two rows of one save: the save is
    whole or not at all, never a tenant left without its accepted account."""
    made, hub, tigerpaw = agent
    integration_id = set_up(made, hub, tigerpaw)
    page = Page(made)
    path = f"/integrations/{integration_id}/accounts"
    assert page.post(path, mapping_form(made, integration_id, [0, 1, 2]))[0] == 302
    accepted = mapped(made, integration_id)

    store = made.store
    unmap = store.unmap
    locks: list[contextlib.ExitStack] = []

    def unmap_then_lock(tenant_id: int) -> bool:
        """Unmap as asked; then another program takes the lock (if it can)."""
        done = unmap(tenant_id)
        if not locks:
            held = contextlib.ExitStack()
            locks.append(held)
            with contextlib.suppress(sqlite3.OperationalError):
                other = sqlite3.connect(store.path, timeout=0.05, isolation_level=None)
                held.callback(other.close)
                other.execute("BEGIN EXCLUSIVE")
                held.callback(other.execute, "ROLLBACK")
        return done

    monkeypatch.setattr(store, "unmap", unmap_then_lock)
    try:
        status, text = page.post(path, mapping_form(made, integration_id, [1, 0, 2]))
    finally:
        for held in locks:
            held.close()

    now = mapped(made, integration_id)
    assert None not in now.values(), (status, now)
    if status == 409:
        assert LOCKED_WORDS in text
        assert now == accepted
    else:
        assert status == 302
        assert set(now.values()) == set(accepted.values()) and now != accepted


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A sandbox with 5 companies, set up and approved, its store quick to report
    a lock."""
    made = SyncWorld(tmp_path)
    made.store.close()
    made.store = Store.open_in(tmp_path / "data", busy_timeout=BUSY)
    made.set_up()
    yield made
    made.close()


def test_a_database_locked_while_the_sync_records_writes_loses_nothing(
    world: SyncWorld,
) -> None:
    """The file is locked after Tigerpaw took some writes but before the agent
    recorded them: the run says the database is locked, and the next run sends
    nothing twice and ends exact."""
    tigerpaw = world.sandbox.tigerpaw
    handle = tigerpaw.handle
    creates = 0
    lock: list[sqlite3.Connection] = []

    def handle_then_lock(request: Any) -> Any:
        """Serve the call; after the fifth order created, lock the agent's file."""
        nonlocal creates
        answer = handle(request)
        if request.method == "POST" and request.path.endswith("/ServiceOrders"):
            creates += 1
            if creates == 5 and not lock:
                other = sqlite3.connect(
                    world.store.path, isolation_level=None, check_same_thread=False
                )
                other.execute("BEGIN EXCLUSIVE")
                lock.append(other)
        return answer

    tigerpaw.handle = handle_then_lock  # type: ignore[method-assign]
    try:
        code, out = world.sync(settle=0)
    finally:
        for other in lock:
            other.execute("ROLLBACK")
            other.close()
        del tigerpaw.handle

    assert lock, "the lock was never taken"
    assert code == 1, out
    assert LOCKED_WORDS in out

    code, out = world.sync()

    assert code == 0, out
    from tests.faults.test_remote_faults import assert_exact

    assert_exact(world)
    assert world.store.check_integrity() == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted in the test's folder, unmounted after."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            "a small tmpfs cannot be mounted here (needs root and the mount "
            f"capability): {mounted.stderr.strip()}"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the disk holding ``folder`` to the last byte; the filler file."""
    filler = folder / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
    return filler


def test_a_full_disk_while_saving_choices_is_reported_and_loses_nothing(
    small_disk: Path,
) -> None:
    """Saving the sync choices on a full disk: StoreError in words, the accepted
    choices stay, the file stays sound, and the save works once there is room."""
    store = Store.open_in(small_disk, busy_timeout=BUSY)
    try:
        integration = store.create_integration(
            IntegrationSettings(
                source="kbh", name="Integration with Tigerpaw", kbh_email="a@b.example"
            )
        )
        store.set_sync_choices(integration.id, CHOICES)
        big = SyncChoices(
            rep="R" * 2000,
            new_status="New",
            closed_status="Closed",
            events=CHOICES.events,
            device_statuses=CHOICES.device_statuses,
            price_book_items={f"product-{n}/x": "I" * 500 for n in range(400)},
            bill_by_category=True,
        )
        filler = fill(small_disk)

        with pytest.raises(StoreError) as caught:
            store.set_sync_choices(integration.id, big)

        assert "is full: free some space; nothing was saved" in str(caught.value)
        assert store.get_sync_choices(integration.id) == CHOICES

        filler.unlink()
        store.set_sync_choices(integration.id, big)
        assert store.get_sync_choices(integration.id) == big
        assert store.check_integrity() == []
    finally:
        store.close()
