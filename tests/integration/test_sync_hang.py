"""A Tigerpaw that accepts connections and never answers: Sync now shows it as
unreachable within about half a minute, the cycle ends soon after, and once Tigerpaw
answers again the writes go out once each."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.sync.scheduler import Scheduler
from tests.integration.sync_support import (
    FAST,
    SETTINGS,
    SyncWorld,
    open_titles,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("no_os_keyring")

#: Seconds from Sync now until the status must say Tigerpaw is unreachable.
SHOWN_WITHIN = 40.0
#: Seconds from Sync now until the cycle must have ended.
ENDED_WITHIN = 60.0


@pytest.fixture
def scheduler(world: SyncWorld) -> Iterator[Scheduler]:
    """A scheduler with orders every minute and billing twelve hours away."""
    far = (dt.datetime.now() + dt.timedelta(hours=12)).time()
    settings = dataclasses.replace(
        SETTINGS,
        service_order_sync_minutes=1,
        license_sync_time=dt.time(far.hour, far.minute),
    )
    made = Scheduler(
        world.store,
        world.secrets,
        lambda: settings,
        per_api=3,
        policy=FAST,
        kbh_table=world.table,
    )
    yield made
    made.stop(timeout=10)


def integration(scheduler: Scheduler) -> dict[str, Any]:
    """The only integration's part of the sync status."""
    return scheduler.status()["integrations"][0]


def ended(scheduler: Scheduler, runs: int) -> bool:
    """Whether more than ``runs`` cycles ran and none runs now."""
    now = integration(scheduler)
    return now["state"] != "running" and now["runs"] > runs


def test_a_hung_tigerpaw_shows_within_half_a_minute_and_loses_nothing(
    world: SyncWorld, scheduler: Scheduler
) -> None:
    """Sync now against a hung Tigerpaw: unreachable and done within the bounds."""
    scheduler.start()
    wait_until(lambda: ended(scheduler, 0), 30)
    tenant = world.fleet.tenants[0].name
    world.kbh_events({"events": [{"tenant": tenant, "severity": "critical"}]})
    world.tigerpaw_faults(hang=True)
    runs = integration(scheduler)["runs"]

    started = time.monotonic()
    scheduler.sync_now()
    (outage,) = wait_until(lambda: integration(scheduler)["unreachable"], 60)
    shown = time.monotonic() - started
    wait_until(lambda: ended(scheduler, runs), 60)
    done = time.monotonic() - started

    print(f"hung Tigerpaw: unreachable after {shown:.1f} s, cycle ended {done:.1f} s")
    assert "did not answer in time" in outage["error"]
    assert shown < SHOWN_WITHIN
    assert done < ENDED_WITHIN

    world.tigerpaw_faults(reset=True)
    runs = integration(scheduler)["runs"]
    scheduler.sync_now()
    wait_until(lambda: ended(scheduler, runs), 60)
    assert integration(scheduler)["unreachable"] == []
    world_orders = open_titles(world.our_orders())
    assert world_orders == world.expected_orders()
    references = [order["reference"] for order in world.our_orders()]
    assert len(references) == len(set(references))
