"""The service order rules: open, note, close, and when not to."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

from agent.sources.records import (
    DATABASES_OUTDATED,
    NOT_PROTECTED,
    WORKSTATION,
    Device,
    SecurityEvent,
)
from agent.store import CLOSING, OPEN, OPENING, OrderRule, SyncChoices, TrackedOrder
from agent.sync.order_texts import status_rule_name
from agent.sync.service_orders import (
    OrderContext,
    event_kind,
    is_closed,
    plan_orders,
    repeats_to_check,
    status_kind,
    status_level,
)
from agent.tigerpaw.models import ServiceOrder

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
CONTEXT = OrderContext(
    tenant_id=1,
    tenant_name="Contoso Dental",
    account_name="Contoso Dental",
    console="Kaspersky Business Hub",
)
ON = OrderRule(enabled=True, priority="2 - High", order_type="Security Alert")
CHOICES = SyncChoices(
    rep="Pat",
    new_status="New",
    closed_status="Closed",
    events={
        "critical": ON,
        "functional_failure": OrderRule(),
        "warning": dataclasses.replace(ON, lifetime_days=3),
    },
    device_statuses={
        DATABASES_OUTDATED: ON,
        "Protection is not running": ON,
    },
)


def keys():
    """Deterministic order keys: K1, K2, ..."""
    counter = itertools.count(1)
    return lambda: f"K{next(counter)}"


def device(
    device_id: str, *problems: str, name: str | None = None, status: str = ""
) -> Device:
    """A workstation with ``problems``, in Warning status unless it has none."""
    return Device(
        tenant_id="t",
        id=device_id,
        name=name or device_id.upper(),
        kind=WORKSTATION,
        status=status or ("warning" if problems else "ok"),
        problems=frozenset(problems),
        last_seen=NOW,
    )


def event(
    event_id: str,
    device_id: str = "pc-17",
    *,
    severity: str = "critical",
    age: dt.timedelta = dt.timedelta(minutes=5),
    kind: str = "GNRL_EV_VIRUS_FOUND",
) -> SecurityEvent:
    """A security event on a device, ``age`` before NOW."""
    return SecurityEvent(
        tenant_id="t",
        id=event_id,
        time=NOW - age,
        severity=severity,
        type=kind,
        device_id=device_id,
        device_name=device_id.upper(),
        description="Virus found",
        threat="Trojan.Win32.Agent.xyz",
    )


def tracked(
    key: str,
    device_id: str,
    kind: str,
    *,
    number: int | None = 20001,
    state: str = OPEN,
    occurrences: int = 1,
) -> TrackedOrder:
    """An order the agent tracks."""
    return TrackedOrder(
        id=1,
        tenant_id=1,
        device_id=device_id,
        kind=kind,
        key=key,
        order_number=number,
        state=state,
        opened_at=NOW,
        updated_at=NOW,
        occurrences=occurrences,
    )


def plan(devices=(), events=(), orders=(), choices=CHOICES):
    """The plan for one tenant."""
    return plan_orders(
        CONTEXT, list(devices), list(events), list(orders), choices, NOW, new_key=keys()
    )


def test_an_event_opens_one_order_with_a_clear_title_and_body() -> None:
    """An event opens an order titled cause on device, with what to act on."""
    found = plan(events=[event("1")])

    (order,) = found.opens
    assert order.title == "Virus found on PC-17"
    assert order.kind == "event:GNRL_EV_VIRUS_FOUND"
    assert order.rule == ON
    for text in ("PC-17", "Trojan.Win32.Agent.xyz", "Critical", "2025-03-01 11:55"):
        assert text in order.body
    assert not found.notes and not found.closes


def test_events_of_one_device_and_kind_in_one_batch_open_one_order() -> None:
    """Several events of one cause in one read open one order."""
    found = plan(events=[event("1"), event("2"), event("3", "pc-18")])

    assert [(o.device_id, o.occurrences) for o in found.opens] == [
        ("pc-17", 2),
        ("pc-18", 1),
    ]
    assert "Seen 2 times" in found.opens[0].body


def test_severities_switched_off_or_info_open_nothing() -> None:
    """Severities whose rule is off, and info events, open nothing."""
    found = plan(
        events=[
            event("1", severity="functional_failure"),
            event("2", severity="info"),
        ]
    )

    assert found.empty
    assert found.skipped_events == 2


def test_events_older_than_their_lifetime_open_nothing() -> None:
    """Each severity's lifetime decides which events are too old."""
    found = plan(
        events=[
            event("1", age=dt.timedelta(days=1, minutes=1)),
            event("2", severity="warning", age=dt.timedelta(days=2)),
        ]
    )

    assert [o.key for o in found.opens] == ["K1"]
    assert found.opens[0].rule.lifetime_days == 3
    assert found.skipped_events == 1


def test_a_repeat_adds_one_note_with_the_count() -> None:
    """Repeats of an open order's cause add one note with the running count."""
    kind = event_kind(event("x"))
    order = tracked("OLD", "pc-17", kind, occurrences=2)

    found = plan(events=[event("8"), event("9")], orders=[order])

    assert not found.opens
    (note,) = found.notes
    assert note.order_key == "OLD"
    assert note.note_key == "OLD:event:9"
    assert note.occurrences == 4
    assert "Seen 2 more times" in note.text and "4 occurrences" in note.text


def test_a_repeat_of_an_order_still_being_opened_is_a_note_too() -> None:
    """A repeat waits as a note for an order whose create is still queued."""
    order = tracked("NEW", "pc-17", event_kind(event("x")), number=None, state=OPENING)

    found = plan(events=[event("5")], orders=[order])

    assert [n.order_key for n in found.notes] == ["NEW"]
    assert not found.opens


def test_event_orders_are_never_closed_by_the_agent() -> None:
    """Event orders stay open for a person."""
    order = tracked("EV", "pc-17", event_kind(event("x")))

    found = plan(devices=[device("pc-17")], orders=[order])

    assert found.empty


def test_after_a_person_closed_an_event_order_a_new_occurrence_opens_a_new_one() -> (
    None
):
    """Once a person closed an event order, the next occurrence opens another."""
    order = tracked("EV", "pc-17", event_kind(event("x")))
    events = [event("10")]

    assert repeats_to_check([order], events, CHOICES, NOW) == [order]
    # The cycle found it closed in Tigerpaw and stopped tracking it.
    found = plan(events=events, orders=[])

    assert [(o.key, o.device_id) for o in found.opens] == [("K1", "pc-17")]


def test_only_repeats_of_numbered_orders_are_checked() -> None:
    """Only open orders with a number and a repeat are looked up in Tigerpaw."""
    kind = event_kind(event("x"))
    orders = [
        tracked("A", "pc-17", kind),
        tracked("B", "pc-18", kind, number=None, state=OPENING),
        tracked("C", "pc-19", kind),
    ]
    events = [event("1", "pc-17"), event("2", "pc-18"), event("3", "pc-20")]

    assert [o.key for o in repeats_to_check(orders, events, CHOICES, NOW)] == ["A"]


def test_a_device_problem_opens_one_order_per_device_and_reason() -> None:
    """Each device problem whose rule is on opens its own order."""
    devices = [
        device("pc-1", DATABASES_OUTDATED, NOT_PROTECTED, name="PC-001"),
        device("pc-2", DATABASES_OUTDATED),
        device("pc-3"),
    ]

    found = plan(devices=devices)

    assert sorted((o.device_id, o.kind) for o in found.opens) == [
        ("pc-1", status_kind(DATABASES_OUTDATED)),
        ("pc-1", status_kind(NOT_PROTECTED)),
        ("pc-2", status_kind(DATABASES_OUTDATED)),
    ]
    titles = {o.title for o in found.opens}
    assert "Databases are out of date on PC-001" in titles
    assert "Protection is not running on PC-001" in titles


def test_a_problem_already_tracked_opens_nothing_more() -> None:
    """A problem that already has an order opens no second one."""
    order = tracked("S", "pc-1", status_kind(DATABASES_OUTDATED))

    found = plan(devices=[device("pc-1", DATABASES_OUTDATED)], orders=[order])

    assert found.empty


def test_a_cleared_status_closes_its_order_even_if_another_reason_remains() -> None:
    """A cleared reason closes its order though the device stays in Warning."""
    orders = [
        tracked("S1", "pc-1", status_kind(DATABASES_OUTDATED)),
        tracked("S2", "pc-1", status_kind(NOT_PROTECTED)),
    ]

    found = plan(devices=[device("pc-1", NOT_PROTECTED)], orders=orders)

    (close,) = found.closes
    assert close.order_key == "S1"
    assert close.order_number == 20001
    assert "no longer applies to PC-1" in close.text
    assert not found.opens


def test_a_removed_device_closes_its_status_orders() -> None:
    """Status orders of a device the console dropped close."""
    order = tracked("S", "pc-9", status_kind(DATABASES_OUTDATED))

    found = plan(devices=[device("pc-1")], orders=[order])

    assert [c.order_key for c in found.closes] == ["S"]
    assert "no longer lists the device" in found.closes[0].text


def test_an_order_being_closed_is_not_closed_twice_nor_replaced() -> None:
    """An order with a queued close gets neither a second close nor a twin."""
    order = tracked("S", "pc-1", status_kind(DATABASES_OUTDATED), state=CLOSING)

    assert plan(devices=[device("pc-1")], orders=[order]).empty
    assert plan(devices=[device("pc-1", DATABASES_OUTDATED)], orders=[order]).empty


def test_statuses_switched_off_open_nothing() -> None:
    """Device problems without a rule open nothing."""
    choices = dataclasses.replace(CHOICES, device_statuses={})

    assert plan(devices=[device("pc-1", DATABASES_OUTDATED)], choices=choices).empty


def test_closed_means_stamped_or_in_the_closed_status() -> None:
    """An order is closed when stamped closed or in the chosen closed status."""
    base = ServiceOrder(number=1, account_number=2, brief_description="x")

    assert not is_closed(dataclasses.replace(base, status="New"), "Closed")
    assert is_closed(dataclasses.replace(base, status="closed"), "Closed")
    assert is_closed(dataclasses.replace(base, status="Complete", closed=NOW), "Closed")


def test_long_titles_fit_tigerpaw() -> None:
    """Titles are cut to Tigerpaw's 100 characters."""
    long_name = "X" * 120

    found = plan(devices=[device("pc-1", DATABASES_OUTDATED, name=long_name)])

    assert len(found.opens[0].title) == 100
    assert found.opens[0].title.endswith("...")


def test_a_description_that_names_the_device_makes_the_same_clear_title() -> None:
    # KSC describes an event with its device and threat; Business Hub does not.
    """KSC's long event descriptions still give a short title."""
    ksc_event = dataclasses.replace(
        event("1"), description="Virus found on PC-17: Trojan.Win32.Agent.xyz"
    )

    (order,) = plan(events=[ksc_event]).opens

    assert order.title == "Virus found on PC-17"
    assert "The console reported: Virus found on PC-17: Trojan" in order.body


#: The sections apart: databases out of date on in both, each with its own priority
#: and type; "not protected" on in Critical status only.
LOW = OrderRule(enabled=True, priority="4 - Low", order_type="Maintenance")
HIGH = OrderRule(enabled=True, priority="2 - High", order_type="Break/Fix")
SECTIONS = dataclasses.replace(
    CHOICES,
    device_statuses={
        f"warning:{DATABASES_OUTDATED}": LOW,
        f"critical:{DATABASES_OUTDATED}": HIGH,
        f"warning:{NOT_PROTECTED}": OrderRule(),
        f"critical:{NOT_PROTECTED}": HIGH,
    },
)


def test_a_problem_follows_the_row_of_the_devices_status_section() -> None:
    """A device in Critical follows the Critical status row of its description,
    one in Warning the Warning status row; a row off there opens nothing."""
    devices = [
        device("pc-1", DATABASES_OUTDATED, NOT_PROTECTED, status="critical"),
        device("pc-2", DATABASES_OUTDATED, NOT_PROTECTED, status="warning"),
    ]

    found = plan(devices=devices, choices=SECTIONS)

    opened = {(o.device_id, o.kind): o.rule for o in found.opens}
    assert opened == {
        ("pc-1", status_kind(DATABASES_OUTDATED)): HIGH,
        ("pc-1", status_kind(NOT_PROTECTED)): HIGH,
        ("pc-2", status_kind(DATABASES_OUTDATED)): LOW,
    }


def test_a_critical_row_off_opens_nothing_for_a_critical_device() -> None:
    """Only the section of the device's status counts: Warning's row being on does
    not open an order for a device in Critical."""
    only_warning = dataclasses.replace(
        CHOICES, device_statuses={f"warning:{DATABASES_OUTDATED}": LOW}
    )

    sick = device("pc-1", DATABASES_OUTDATED, status="critical")

    assert plan(devices=[sick], choices=only_warning).empty
    assert status_level(sick) == "critical"


def test_a_device_going_from_warning_to_critical_keeps_its_one_order() -> None:
    """The order's kind is the description alone: the same cause in Critical now
    neither opens a second order nor closes the first."""
    order = tracked("S", "pc-1", status_kind(DATABASES_OUTDATED))
    now_critical = device("pc-1", DATABASES_OUTDATED, status="critical")

    assert plan(devices=[now_critical], orders=[order], choices=SECTIONS).empty


def test_a_problem_beside_an_ok_status_follows_the_warning_section() -> None:
    """A reported problem is worth a look whatever the status reads."""
    odd = device("pc-1", DATABASES_OUTDATED, status="ok")

    (order,) = plan(devices=[odd], choices=SECTIONS).opens

    assert status_level(odd) == "warning" and order.rule == LOW


def test_status_rows_are_named_by_section_and_description_in_messages() -> None:
    """Setup problems name the row as the page shows it."""
    assert (
        status_rule_name("warning:databases_outdated")
        == "Warning status 'Databases are out of date'"
    )
    assert (
        status_rule_name("critical:Protection is not running")
        == "Critical status 'Protection is not running'"
    )
    assert status_rule_name("odd_word") == "Device status 'Odd word'"
