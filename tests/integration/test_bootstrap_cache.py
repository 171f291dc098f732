"""What the bootstrap found is used again by later cycles, and looked up afresh
when the choices change, a write is refused, or someone presses Sync now."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.connections import connect
from agent.sync.bootstrap import SetupCache
from agent.sync.cycle import CycleOptions, CycleResult, IntegrationCycle
from agent.sync.scheduler import Scheduler
from tests.integration.sync_support import CHOICES, FAST, SETTINGS, SyncWorld

pytestmark = pytest.mark.usefixtures("no_os_keyring")

ORDERS_ONLY = CycleOptions(licenses=False)
#: The master tables and field lists one bootstrap reads.
LOOK_UPS = 8


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    """A sandbox with 3 companies of 5 devices, set up, approved and synced once
    (so the agent's custom fields exist)."""
    made = SyncWorld(tmp_path, tenants=3, devices=5)
    made.set_up()
    code, out = made.sync()
    assert code == 0, out
    yield made
    made.close()


def look_ups(world: SyncWorld) -> int:
    """Master-table and field-list reads the Tigerpaw emulator has answered."""
    calls: Counter[str] = Counter(world.state()["calls"])
    return sum(n for name, n in calls.items() if "/api/mastertables/" in name)


def run_cycle(world: SyncWorld, setups: SetupCache, *, ok: bool = True) -> CycleResult:
    """One service order cycle of the world's integration sharing ``setups``;
    with ``ok``, it must end without an error."""
    integration = world.store.get_integration(world.integration_id)
    assert integration is not None
    connections = connect(
        integration,
        world.secrets,
        lambda: SETTINGS,
        stop=threading.Event(),
        kbh_table=world.table,
    )
    try:
        cycle = IntegrationCycle(
            world.store, integration, connections, policy=FAST, setups=setups
        )
        result = cycle.run(ORDERS_ONLY)
    finally:
        connections.close()
    if ok:
        assert result.ok, (result.error, [t.error for t in result.tenants])
    return result


def test_later_cycles_use_what_the_first_found(world: SyncWorld) -> None:
    """The first cycle reads the master tables; the next ones read none."""
    setups = SetupCache()
    before = look_ups(world)

    first = run_cycle(world, setups)
    after_first = look_ups(world)
    second = run_cycle(world, setups)

    assert after_first - before == LOOK_UPS
    assert look_ups(world) == after_first
    assert second.setup == first.setup


def test_changed_choices_are_looked_up_afresh(world: SyncWorld) -> None:
    """A change on the Service orders tab makes the next cycle read again."""
    setups = SetupCache()
    run_cycle(world, setups)
    before = look_ups(world)
    rule = dataclasses.replace(CHOICES.events["critical"], priority="3 - Normal")
    world.store.set_sync_choices(
        world.integration_id,
        dataclasses.replace(CHOICES, events={**CHOICES.events, "critical": rule}),
    )

    run_cycle(world, setups)

    assert look_ups(world) - before == LOOK_UPS


def test_a_refused_write_makes_the_next_cycle_look_again(world: SyncWorld) -> None:
    """Tigerpaw refusing a create (a status or type may have gone) sends the next
    cycle back to the master tables."""
    setups = SetupCache()
    run_cycle(world, setups)
    world.kbh_events(
        {"events": [{"tenant": world.fleet.tenants[0].name, "severity": "critical"}]}
    )
    world.tigerpaw_faults(
        next_errors=1, error_status=400, path_prefix="/api/ServiceOrders"
    )
    before = look_ups(world)

    refused = run_cycle(world, setups, ok=False)
    assert refused.failed == 1
    assert look_ups(world) == before
    time.sleep(0.3)  # FAST's wait for a refused write

    run_cycle(world, setups)

    assert look_ups(world) - before == LOOK_UPS


def test_sync_now_looks_up_afresh(world: SyncWorld) -> None:
    """The scheduler's first cycle reads the master tables; Sync now reads them
    again (a person may have just fixed something in Tigerpaw)."""
    far = (dt.datetime.now() + dt.timedelta(hours=12)).time()
    settings = dataclasses.replace(
        SETTINGS,
        service_order_sync_minutes=1440,
        license_sync_time=dt.time(far.hour, far.minute),
    )
    scheduler = Scheduler(
        world.store, world.secrets, lambda: settings, policy=FAST, kbh_table=world.table
    )
    before = look_ups(world)
    scheduler.start()
    try:
        wait_for_runs(scheduler, 1)
        after_first = look_ups(world)
        scheduler.sync_now()
        wait_for_runs(scheduler, 2)
    finally:
        scheduler.stop(timeout=10)

    assert after_first - before == LOOK_UPS
    assert look_ups(world) - after_first == LOOK_UPS


def wait_for_runs(scheduler: Scheduler, runs: int, timeout: float = 30.0) -> None:
    """Wait until the integration has finished ``runs`` cycles."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (status,) = scheduler.status()["integrations"]
        if status["runs"] >= runs and status["state"] != "running":
            return
        time.sleep(0.05)
    raise AssertionError(f"{runs} cycle(s) did not finish within {timeout} s")
