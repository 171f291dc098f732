"""Schedules, retry waits and the failing-tenant notice: pure parts of the sync."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from agent.errors import (
    NotCrossReferenced,
    RateLimited,
    RecordLocked,
    RequestRejected,
    ServerError,
    TimedOut,
)
from agent.sync.health import TenantHealth
from agent.sync.outbox import RetryPolicy
from agent.sync.timing import next_daily, next_licenses_run, next_orders_run


@pytest.fixture
def local_zone(request: pytest.FixtureRequest):
    """Run the test in the named local time zone (TZ), then restore it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def utc(*parts: int) -> dt.datetime:
    """An aware UTC time."""
    return dt.datetime(*parts, tzinfo=dt.UTC)


@pytest.mark.parametrize("local_zone", ["UTC"], indirect=True)
def test_the_daily_run_is_the_next_time_the_clock_shows_the_setting(local_zone) -> None:
    """Billing runs at the next moment the local clock shows LicenseSyncTime."""
    at = dt.time(2, 0)

    assert next_daily(utc(2025, 3, 1, 1, 59), at) == utc(2025, 3, 1, 2, 0)
    assert next_daily(utc(2025, 3, 1, 2, 0), at) == utc(2025, 3, 2, 2, 0)
    assert next_daily(utc(2025, 3, 1, 13, 0), at) == utc(2025, 3, 2, 2, 0)


@pytest.mark.parametrize("local_zone", ["America/Chicago"], indirect=True)
def test_the_daily_run_follows_local_time_across_daylight_saving(local_zone) -> None:
    """LicenseSyncTime stays a local wall-clock time when daylight saving starts."""
    at = dt.time(2, 30)

    # 02:30 CST on 2025-03-08 is 08:30 UTC; once the clocks went forward on the
    # 9th, 02:30 CDT is 07:30 UTC.
    first = next_daily(utc(2025, 3, 8, 0, 0), at)
    assert first == utc(2025, 3, 8, 8, 30)
    after_change = next_daily(utc(2025, 3, 10, 0, 0), at)
    assert after_change == utc(2025, 3, 10, 7, 30)


def test_orders_run_every_n_minutes_from_the_last_start() -> None:
    """Service orders run at start, then ServiceOrderSyncMinutes after each start."""
    first = utc(2025, 3, 1, 9, 0)

    assert next_orders_run(None, 5, first) == first
    assert next_orders_run(utc(2025, 3, 1, 9, 1), 5, first) == utc(2025, 3, 1, 9, 6)


@pytest.mark.parametrize("local_zone", ["UTC"], indirect=True)
def test_billing_waits_for_the_daily_time_after_start(local_zone) -> None:
    """Starting the agent runs no billing; the first comes at the daily time."""
    started = utc(2025, 3, 1, 9, 0)

    assert next_licenses_run(None, dt.time(2, 0), started) == utc(2025, 3, 2, 2, 0)
    last = utc(2025, 3, 2, 2, 0, 3)
    assert next_licenses_run(last, dt.time(2, 0), started) == utc(2025, 3, 3, 2, 0)


def test_retry_waits_follow_the_kind_of_failure() -> None:
    """Retry-After is honoured, locks and outages back off, refusals wait long."""
    policy = RetryPolicy(base=10, cap=100, locked=60, needs_person=3600)

    assert policy.delay(RateLimited("slow down", retry_after=7), 0) == 7
    assert policy.delay(RecordLocked("open"), 0) == 60
    assert policy.delay(RecordLocked("open"), 5) == 100
    for attempts in range(6):
        wait = policy.delay(ServerError("boom", status=500), attempts)
        assert 5 <= wait <= min(100, 10 * 2**attempts)
    assert 5 <= policy.delay(TimedOut("slow"), 0) <= 10
    assert policy.delay(NotCrossReferenced("no product", account=5), 0) == 3600
    assert policy.delay(RequestRejected("bad value", status=400), 9) == 3600


def test_a_tenant_that_keeps_failing_is_notified_once_and_back_once() -> None:
    """Three failures in a row notify once; a success resets the count."""
    told: list[tuple[str, str]] = []
    health = TenantHealth(lambda title, text: told.append((title, text)), 3)

    for _ in range(2):
        health.failed(7, "Contoso Dental", "Tigerpaw refused")
    assert told == [] and not health.state(7).failing
    for _ in range(4):
        health.failed(7, "Contoso Dental", "Tigerpaw refused")

    assert told == [("Contoso Dental is not syncing", "Tigerpaw refused")]
    assert health.failing() == [7]
    health.succeeded(7, "Contoso Dental")
    assert health.failing() == [] and health.state(7).failures == 0
    for _ in range(3):
        health.failed(7, "Contoso Dental", "again")
    assert len(told) == 2
