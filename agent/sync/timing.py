"""When the next cycles are due: service orders every N minutes, billing daily.

Pure functions over aware datetimes; ``LicenseSyncTime`` is a local time of day,
so the daily time follows the computer's clock and time zone (daylight saving
included).
"""

from __future__ import annotations

import datetime as dt
import time


def next_daily(after: dt.datetime, at: dt.time) -> dt.datetime:
    """The first moment strictly after ``after`` when the local clock shows ``at``.

    Returned in UTC. A local time skipped by a daylight-saving jump is taken as the
    same wall-clock reading, which the system maps just past the jump.
    """
    local = dt.datetime.fromtimestamp(after.timestamp())
    candidate = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    while _as_utc(candidate) <= after:
        candidate += dt.timedelta(days=1)
    return _as_utc(candidate)


def _as_utc(local: dt.datetime) -> dt.datetime:
    """A naive local wall-clock time as an aware UTC time."""
    return dt.datetime.fromtimestamp(time.mktime(local.timetuple()), dt.UTC).replace(
        microsecond=local.microsecond
    )


def next_orders_run(
    last_start: dt.datetime | None, minutes: int, first: dt.datetime
) -> dt.datetime:
    """When the next service order cycle is due: ``minutes`` after the last one
    started, or ``first`` before any ran."""
    if last_start is None:
        return first
    return last_start + dt.timedelta(minutes=minutes)


def next_licenses_run(
    last_run: dt.datetime | None, at: dt.time, started: dt.datetime
) -> dt.datetime:
    """When the next daily billing cycle is due: the first ``at`` after the last
    billing cycle, or after the scheduler started when none has run yet."""
    return next_daily(last_run or started, at)


def iso(moment: dt.datetime | None) -> str | None:
    """An aware time as ISO 8601 text for JSON (None stays None)."""
    return None if moment is None else moment.isoformat(timespec="seconds")
