"""The Scheduler against the sandbox: timers, Sync now, Pause/Resume, a clean stop."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.config import Settings
from agent.store import NewTenant
from agent.sync.scheduler import Scheduler
from agent.transport import describe_address
from tests.integration.sync_support import (
    FAST,
    SETTINGS,
    SyncWorld,
    kaspersky_charges,
    open_titles,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("no_os_keyring")


class SettingsHolder:
    """The settings in force, changed by the test as the config watcher would."""

    def __init__(self) -> None:
        """Start with orders every minute and billing twelve hours away."""
        far = (dt.datetime.now() + dt.timedelta(hours=12)).time()
        self.current = dataclasses.replace(
            SETTINGS,
            service_order_sync_minutes=1,
            license_sync_time=dt.time(far.hour, far.minute),
        )

    def __call__(self) -> Settings:
        """The settings in force now."""
        return self.current


@pytest.fixture
def settings() -> SettingsHolder:
    """Orders every minute; billing not due for twelve hours."""
    return SettingsHolder()


@pytest.fixture
def notices() -> list[tuple[str, str]]:
    """The notifications the scheduler sent."""
    return []


@pytest.fixture
def scheduler(
    world: SyncWorld, settings: SettingsHolder, notices: list[tuple[str, str]]
) -> Iterator[Scheduler]:
    """A scheduler (not started) on the world's store."""
    made = Scheduler(
        world.store,
        world.secrets,
        settings,
        per_api=3,
        policy=FAST,
        kbh_table=world.table,
        notify=lambda title, text: notices.append((title, text)),
    )
    yield made
    made.stop(timeout=10)


def finished_runs(scheduler: Scheduler) -> list[str]:
    """The last run of each integration that is idle again."""
    return [
        i["last_run"]
        for i in scheduler.status()["integrations"]
        if i["last_run"] and i["state"] != "running"
    ]


def run_now(scheduler: Scheduler) -> dict[str, Any]:
    """Sync now and wait for that cycle to end; the status after it."""
    status = scheduler.status()["integrations"][0]
    # A cycle running now (the one at start) ends first; Sync now's comes after it.
    before = status["runs"] + (1 if status["state"] == "running" else 0)
    scheduler.sync_now()
    wait_until(
        lambda: (
            (i := scheduler.status()["integrations"][0])["state"] != "running"
            and i["runs"] > before
        )
    )
    return scheduler.status()


def test_orders_run_at_start_and_billing_waits_for_its_time_or_sync_now(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Orders run at start; billing waits for its time or Sync now."""
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))

    status = scheduler.status()
    assert status["state"] == "idle"
    (integration,) = status["integrations"]
    last = dt.datetime.fromisoformat(integration["last_run"])
    assert dt.datetime.fromisoformat(integration["next_run"]) == last + dt.timedelta(
        minutes=1
    )
    assert {t["state"] for t in integration["tenants"]} == {"ok"}
    assert open_titles(world.our_orders()) == world.expected_orders()
    assert integration["orders_opened"] == sum(world.expected_orders().values())
    expected = world.expected_charges()
    assert kaspersky_charges({a: world.charges()[a] for a in expected}) == {
        a: {} for a in expected
    }

    again = run_now(scheduler)

    assert again["integrations"][0]["orders_opened"] == 0, "nothing new to open"
    charges = world.charges()
    assert kaspersky_charges({a: charges[a] for a in expected}) == expected
    assert scheduler.stop(timeout=10)


def test_a_changed_interval_applies_at_once(
    scheduler: Scheduler, settings: SettingsHolder
) -> None:
    """A new ServiceOrderSyncMinutes moves the next run at once."""
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))
    old = settings.current

    settings.current = dataclasses.replace(old, service_order_sync_minutes=7)
    scheduler.settings_changed(old, settings.current)

    (integration,) = scheduler.status()["integrations"]
    last = dt.datetime.fromisoformat(integration["last_run"])
    assert dt.datetime.fromisoformat(integration["next_run"]) == last + dt.timedelta(
        minutes=7
    )


def test_pause_holds_scheduled_cycles_and_resume_lets_them_run(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Paused, nothing scheduled starts; resumed, the due cycle runs."""
    scheduler.pause()
    scheduler.start()
    time.sleep(0.5)

    status = scheduler.status()
    assert status["state"] == "paused" and status["next_run"] is None
    assert world.our_orders() == []

    scheduler.resume()
    wait_until(lambda: finished_runs(scheduler))
    assert scheduler.status()["state"] == "idle"
    assert open_titles(world.our_orders()) == world.expected_orders()


def test_sync_now_runs_even_while_paused(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Sync now is a person's explicit ask and runs while paused."""
    scheduler.pause()
    scheduler.start()

    status = run_now(scheduler)

    assert status["state"] == "paused"
    assert open_titles(world.our_orders()) == world.expected_orders()


def test_a_tenant_that_keeps_failing_is_shown_failing_and_notified_once(
    world: SyncWorld, scheduler: Scheduler, notices: list[tuple[str, str]]
) -> None:
    """A tenant failing every cycle is shown failing and notified once."""
    (ghost,) = world.store.add_tenants(
        world.integration_id,
        [NewTenant("00000000-0000-4000-8000-000000000000", "Ghost Company")],
    )
    spare = next(
        a
        for a in world.sandbox.tigerpaw.world.accounts
        if a.number not in world.accounts.values()
    )
    world.store.map_account(ghost.id, spare.number, spare.name, None, billing=False)
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))

    for _ in range(4):
        status = run_now(scheduler)

    assert [title for title, _ in notices] == ["Ghost Company is not syncing"]
    assert status["state"] == "failing"
    tenants = {t["name"]: t for t in status["integrations"][0]["tenants"]}
    assert tenants["Ghost Company"]["state"] == "failing"
    assert tenants["Ghost Company"]["failures"] == 5
    assert {t["state"] for n, t in tenants.items() if n != "Ghost Company"} == {"ok"}
    assert open_titles(world.our_orders()) == world.expected_orders()


def test_stop_during_a_cycle_is_clean_and_loses_nothing(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Stop in the middle of a cycle returns soon; the next run completes it."""
    world.tigerpaw_faults(latency_ms=30)
    scheduler.sync_now()
    scheduler.start()
    wait_until(lambda: scheduler.status()["state"] == "running")
    time.sleep(0.3)

    started = time.monotonic()
    assert scheduler.stop(timeout=10)
    assert time.monotonic() - started < 5
    world.tigerpaw_faults(reset=True)

    code, out = world.sync()

    assert code == 0, out
    assert open_titles(world.our_orders()) == world.expected_orders()
    expected = world.expected_charges()
    charges = world.charges()
    assert kaspersky_charges({a: charges[a] for a in expected}) == expected
    assert world.store.pending_count() == 0


def test_sync_now_sends_writes_that_were_waiting_for_a_later_retry(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """A charge refused until a person fixes Tigerpaw goes out at the next Sync now."""
    account = next(iter(world.expected_charges()))
    world.tigerpaw_events({"remove_cross_reference": [account]})
    scheduler.start()
    # The first cycle writes service orders only; a Sync now counted from before
    # it ends would return with it, before any charge was tried.
    wait_until(lambda: finished_runs(scheduler))
    run_now(scheduler)
    assert kaspersky_charges({account: world.charges()[account]}) == {account: {}}
    assert world.store.list_outbox(state="failed", integration_id=world.integration_id)

    world.tigerpaw_events({"cross_reference": [account]})
    run_now(scheduler)

    expected = world.expected_charges()
    assert kaspersky_charges({account: world.charges()[account]}) == {
        account: expected[account]
    }
    assert not world.store.list_outbox(
        state="failed", integration_id=world.integration_id
    )
    assert scheduler.stop(timeout=10)


def test_an_unreachable_tigerpaw_shows_in_the_status_from_the_first_cycle(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Tigerpaw dropping every connection is in the status after the first cycle
    (the tray asks for attention then), and gone once Tigerpaw answers again."""
    world.tigerpaw_faults(down=True)
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))

    (integration,) = scheduler.status()["integrations"]
    (outage,) = integration["unreachable"]
    assert outage["system"] == "Tigerpaw"
    assert outage["address"] == describe_address(world.tigerpaw_url)
    assert "closed the connection without answering" in outage["error"]
    assert outage["failing"] is False, "it did not answer at all"
    assert outage["since"]

    world.tigerpaw_faults(reset=True)
    status = run_now(scheduler)

    assert status["integrations"][0]["unreachable"] == []
    assert scheduler.stop(timeout=10)


def test_orders_opened_counts_the_orders_sent_not_the_ones_planned(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Orders planned in a cycle when Tigerpaw refused them are counted by the cycle
    that opens them, so the tray's "new service orders" notice matches Tigerpaw."""
    world.tigerpaw_faults(
        error_rate=1.0, error_status=503, path_prefix="/api/serviceorders"
    )
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))
    first = scheduler.status()["integrations"][0]
    assert first["orders_opened"] == 0
    assert world.our_orders() == []

    world.tigerpaw_faults(reset=True)
    again = run_now(scheduler)

    assert open_titles(world.our_orders()) == world.expected_orders()
    assert again["integrations"][0]["orders_opened"] == len(world.our_orders())
    assert scheduler.stop(timeout=10)


def test_a_tenant_with_nothing_to_do_loses_an_error_from_an_outage(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """A cycle that could not start marks every mapped tenant; one with billing and
    service orders off is skipped afterwards, and its old error goes with the
    outage instead of staying on the dashboard."""
    tenant = world.store.list_tenants(world.integration_id)[0]
    assert tenant.mapping is not None
    world.store.map_account(
        tenant.id,
        tenant.mapping.account_number,
        tenant.mapping.account_name,
        billing=False,
        service_orders=False,
    )
    world.tigerpaw_faults(down=True)
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))
    stored = world.store.get_tenant(tenant.id)
    assert stored is not None and stored.last_error

    world.tigerpaw_faults(reset=True)
    run_now(scheduler)

    stored = world.store.get_tenant(tenant.id)
    assert stored is not None and stored.last_error is None
    assert scheduler.stop(timeout=10)


def test_cycles_come_every_minute_while_tigerpaw_is_down(
    world: SyncWorld, scheduler: Scheduler, settings: SettingsHolder
) -> None:
    """While Tigerpaw does not answer, the next service order cycle comes a minute
    after the last (not ServiceOrderSyncMinutes), so waiting writes go out soon after
    it is back; once it answers, the config's interval applies again."""
    settings.current = dataclasses.replace(
        settings.current, service_order_sync_minutes=5
    )
    world.tigerpaw_faults(down=True)
    scheduler.start()
    wait_until(lambda: finished_runs(scheduler))

    (down,) = scheduler.status()["integrations"]
    last = dt.datetime.fromisoformat(down["last_run"])
    assert dt.datetime.fromisoformat(down["next_run"]) <= last + dt.timedelta(minutes=1)

    world.tigerpaw_faults(reset=True)
    up = run_now(scheduler)["integrations"][0]

    assert up["unreachable"] == []
    last = dt.datetime.fromisoformat(up["last_run"])
    assert dt.datetime.fromisoformat(up["next_run"]) >= last + dt.timedelta(minutes=4)
    assert scheduler.stop(timeout=10)
