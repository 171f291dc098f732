"""The page's filters for times and counts (no I/O): local time with its zone, and
nouns in the number their count asks for."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest

from agent.sync.licenses import CATEGORY_LABELS
from agent.web.dashboard import write_kind
from agent.web.pages import COUNTED_NOUNS, counted, local_time, plural


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the computer's zone for one test: zone("Asia/Kolkata")."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("Europe/Berlin", "2026-12-04T17:40:15+00:00", "4 Dec 2026 18:40 UTC+01:00"),
        ("Europe/Berlin", "2026-07-04T17:40:15+00:00", "4 Jul 2026 19:40 UTC+02:00"),
        (
            "Asia/Kolkata",
            "2026-12-04T17:40:15.247218+00:00",
            "4 Dec 2026 23:10 UTC+05:30",
        ),
        ("America/St_Johns", "2026-12-04T17:40:00+00:00", "4 Dec 2026 14:10 UTC-03:30"),
        ("UTC", "2026-12-04T17:40:15+00:00", "4 Dec 2026 17:40 UTC"),
    ],
)
def test_times_read_in_local_time_with_the_zone(
    zone, name: str, value: str, expected: str
) -> None:
    zone(name)
    assert local_time(value) == expected
    assert local_time(dt.datetime.fromisoformat(value)) == expected


def test_a_time_without_a_zone_is_local_already(zone) -> None:
    zone("Europe/Berlin")
    assert local_time("2026-12-04 18:40:23,402", seconds=True) == (
        "4 Dec 2026 18:40:23 UTC+01:00"
    )


def test_nothing_or_no_time_never_breaks_a_page(zone) -> None:
    zone("UTC")
    assert local_time(None) == ""
    assert local_time("") == ""
    assert local_time("soon") == "soon"


@pytest.mark.parametrize(
    "count, noun, expected",
    [
        (1, "server", "1 server"),
        (0, "server", "0 servers"),
        (2, "company", "2 companies"),
        (3, "mailbox", "3 mailboxes"),
        (1, "virtual server", "1 virtual server"),
        (5, "virtual server", "5 virtual servers"),
        (2, "thing", "2 things"),
    ],
)
def test_plural_by_count(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 servers of KSWS", "1 server of KSWS"),
        (
            "1 other devices of KES; 18 workstations of KES",
            "1 other device of KES; 18 workstations of KES",
        ),  # fmt: skip
        ("3 device(s) of KES on trial keys", "3 devices of KES on trial keys"),
        ("1 device(s) of KES on trial keys", "1 device of KES on trial keys"),
        ("1 mailboxes of Office 365", "1 mailbox of Office 365"),
        ("0 workstation", "0 workstations"),
        ("Windows Server 2019", "Windows Server 2019"),
        (
            "nothing in use: the quantity goes to 0",
            "nothing in use: the quantity goes to 0",
        ),  # fmt: skip
    ],
)
def test_counts_from_other_parts_agree_with_their_nouns(
    text: str, expected: str
) -> None:
    assert counted(text) == expected


def test_every_billing_category_has_a_singular() -> None:
    assert set(CATEGORY_LABELS.values()) <= set(COUNTED_NOUNS.values())


@pytest.mark.parametrize(
    "target, action, expected",
    [
        ("service order 20009", "created", "service order opened"),
        ("service order 20009", "note added", "note added to an order"),
        ("service order 20009", "closed", "service order closed"),
        ("agreement 5007 charge KL-1", "charge updated", "charge set"),
        ("account 1006 field Kaspersky Tenant", "set", "company named on its account"),
        ("service_order", "created", "service order opened"),
        ("accounts custom field Kaspersky/Tenant", "created", "custom field created"),
        ("something new", "made", "other change"),
    ],
)
def test_what_was_written_in_words(target: str, action: str, expected: str) -> None:
    assert write_kind(target, action)[0] == expected
