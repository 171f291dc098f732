"""Events, device statuses and Office 365 problems to service orders: which to open,
note and close.

The rules (nothing here does I/O; the cycle hands in what it read):

- One open order per (tenant, device, kind). The kind of an event order is
  ``event:<event type>``, of a status order ``status:<problem>``, and of an Office
  365 order ``office365:<problem id>`` (Business Hub only; such an order is about the
  company, so its device is "").
- An event opens an order when its severity's rule is on and it is younger than the
  rule's lifetime; older events open nothing (after an outage, for example). An
  Office 365 event follows the same rules, and opens nothing once its problem is no
  longer listed (it cleared before the cycle read it).
- A device problem opens an order when the row of its description is on in the
  section of the device's status: a device in Critical status follows the Critical
  status section, any other device the Warning status section (a problem the
  console reports is worth a look, even beside an OK or unknown status). The order's
  kind is the description alone, so a device going from Warning to Critical for the
  same description keeps its one order.
- A repeat, an event of a kind that already has an open order, adds one note per
  cycle to that order, saying how many times the cause has been seen.
- A status order closes itself (with a note) once its problem no longer applies to
  the device, or the device is gone. An Office 365 order closes itself once Business
  Hub no longer lists its problem. Other event orders are left for a person; once a
  person closed one, the next occurrence opens a new order (the cycle learns of the
  close and stops tracking the old order before planning).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from agent.sources.records import Device, Office365Problem, SecurityEvent
from agent.store.choices import (
    STATUS_CRITICAL,
    STATUS_WARNING,
    OrderRule,
    SyncChoices,
)
from agent.store.records import CLOSING, TrackedOrder
from agent.sync.order_texts import (
    OrderContext,
    cleared_note,
    event_body,
    event_cause,
    office365_body,
    office365_cleared_note,
    office365_title,
    problem_text,
    repeat_note,
    status_body,
    title,
)
from agent.tigerpaw.models import ServiceOrder

logger = logging.getLogger(__name__)

EVENT, STATUS, OFFICE365 = "event", "status", "office365"
KEY_PREFIX = "KSI-"


def new_order_key() -> str:
    """A new key for an order: unique, short enough for Tigerpaw's Reference field."""
    return KEY_PREFIX + uuid.uuid4().hex[:20]


def event_kind(event: SecurityEvent) -> str:
    """The kind of the order an event opens: one per Office 365 problem, else one
    per event type."""
    if event.problem_id:
        return f"{OFFICE365}:{event.problem_id}"
    return f"{EVENT}:{event.type or event.description}"


def status_kind(problem: str) -> str:
    """The kind of the order a device problem opens."""
    return f"{STATUS}:{problem}"


def origin_of(kind: str) -> str:
    """``event``, ``status`` or ``office365``: where an order's kind comes from."""
    return kind.partition(":")[0]


def status_level(device: Device) -> str:
    """The section whose rows a device's problems follow: Critical status for a
    device in Critical, Warning status for any other (see the module's rules)."""
    return STATUS_CRITICAL if device.status == STATUS_CRITICAL else STATUS_WARNING


def status_rule(choices: SyncChoices, level: str, problem: str) -> OrderRule | None:
    """The row of a device problem in a section: by its word, or its description."""
    return choices.status_rule(level, problem, problem_text(problem))


def is_closed(order: ServiceOrder, closed_status: str) -> bool:
    """Whether an order in Tigerpaw is closed (stamped, or in the closed status)."""
    if order.closed is not None:
        return True
    status = (order.status or "").strip().casefold()
    return bool(closed_status) and status == closed_status.strip().casefold()


@dataclass(frozen=True)
class NewOrder:
    """An order to open."""

    key: str
    device_id: str
    kind: str
    title: str
    body: str
    rule: OrderRule
    occurrences: int = 1


@dataclass(frozen=True)
class OrderNote:
    """A note to add to an open order, with the count of occurrences it reports."""

    order_key: str
    note_key: str
    text: str
    occurrences: int
    title: str = ""


@dataclass(frozen=True)
class OrderClose:
    """A status or Office 365 order to close, with the note that says why."""

    order_key: str
    order_number: int | None
    text: str
    title: str = ""


@dataclass
class OrderPlan:
    """What one tenant's cycle writes: opens, notes and closes; and what it skipped."""

    opens: list[NewOrder] = field(default_factory=list)
    notes: list[OrderNote] = field(default_factory=list)
    closes: list[OrderClose] = field(default_factory=list)
    skipped_events: int = 0

    @property
    def empty(self) -> bool:
        """Whether nothing is to be written."""
        return not (self.opens or self.notes or self.closes)


def is_fresh(event: SecurityEvent, rule: OrderRule, now: dt.datetime) -> bool:
    """Whether an event is young enough to open an order under its rule."""
    return now - event.time <= dt.timedelta(days=rule.lifetime_days)


def event_rule(choices: SyncChoices, event: SecurityEvent) -> OrderRule | None:
    """The rule of an event's severity when it is on, else None."""
    rule = choices.events.get(event.severity)
    return rule if rule is not None and rule.enabled else None


def wanted_events(
    events: Iterable[SecurityEvent], choices: SyncChoices, now: dt.datetime
) -> list[SecurityEvent]:
    """The events that may open or note an order: their rule is on, they are fresh."""
    found = []
    for event in events:
        rule = event_rule(choices, event)
        if rule is not None and is_fresh(event, rule, now):
            found.append(event)
    return found


def needs_office365(
    tracked: Sequence[TrackedOrder],
    events: Iterable[SecurityEvent],
    choices: SyncChoices,
    now: dt.datetime,
) -> bool:
    """Whether the cycle must read the tenant's Office 365 problems: an open Office
    365 order may have cleared, or a new Office 365 event may open or note one."""
    if any(origin_of(order.kind) == OFFICE365 for order in tracked):
        return True
    return any(event.problem_id for event in wanted_events(events, choices, now))


def repeats_to_check(
    tracked: Sequence[TrackedOrder],
    events: Iterable[SecurityEvent],
    choices: SyncChoices,
    now: dt.datetime,
) -> list[TrackedOrder]:
    """Open event orders that new events repeat: the cycle asks Tigerpaw whether a
    person closed them, since a closed one means a new order instead of a note."""
    by_cause = {(o.device_id, o.kind): o for o in tracked if o.state != CLOSING}
    wanted: dict[str, TrackedOrder] = {}
    for event in wanted_events(events, choices, now):
        order = by_cause.get((event.device_id, event_kind(event)))
        if order is not None and order.order_number is not None:
            wanted[order.key] = order
    return list(wanted.values())


def plan_orders(
    context: OrderContext,
    devices: Sequence[Device],
    events: Sequence[SecurityEvent],
    tracked: Sequence[TrackedOrder],
    choices: SyncChoices,
    now: dt.datetime,
    *,
    office365: Sequence[Office365Problem] | None = None,
    new_key: Callable[[], str] = new_order_key,
) -> OrderPlan:
    """The orders to open, note and close for one tenant (see the module's rules).

    ``devices`` is every device the console lists now (a status order of a device
    not among them closes); ``events`` are the new events since the last cycle;
    ``tracked`` the orders the agent holds open for this tenant; ``office365`` the
    Office 365 problems listed now, or None when they were not read (then no Office
    365 order closes).
    """
    plan = OrderPlan()
    by_cause = {(o.device_id, o.kind): o for o in tracked}
    current = None if office365 is None else {p.id: p for p in office365}
    opening: dict[tuple[str, str], list[SecurityEvent]] = {}
    repeats: dict[str, list[SecurityEvent]] = {}

    wanted = wanted_events(sorted(events, key=lambda e: e.time), choices, now)
    plan.skipped_events = len(events) - len(wanted)
    for event in wanted:
        if event.problem_id and current is not None and event.problem_id not in current:
            # It cleared before this cycle read it: nothing is left to act on.
            plan.skipped_events += 1
            continue
        cause = (event.device_id, event_kind(event))
        order = by_cause.get(cause)
        if order is not None and order.state != CLOSING:
            repeats.setdefault(order.key, []).append(event)
        elif order is None:
            opening.setdefault(cause, []).append(event)
        # An order being closed keeps its cause until the close is sent.

    for (device_id, kind), seen in opening.items():
        rule = event_rule(choices, seen[0])
        assert rule is not None
        plan.opens.append(
            NewOrder(
                key=new_key(),
                device_id=device_id,
                kind=kind,
                title=_event_title(context, seen[0], current),
                body=_event_body(context, seen, current),
                rule=rule,
                occurrences=len(seen),
            )
        )

    orders_by_key = {o.key: o for o in tracked}
    for key, seen in repeats.items():
        total = orders_by_key[key].occurrences + len(seen)
        plan.notes.append(
            OrderNote(
                order_key=key,
                note_key=f"{key}:event:{seen[-1].id}",
                text=repeat_note(seen, total),
                occurrences=total,
                title=_event_title(context, seen[-1], current),
            )
        )

    _plan_statuses(plan, context, devices, by_cause, choices, new_key)
    if current is not None:
        _plan_office365_closes(plan, context, by_cause, current)
    return plan


def _event_title(
    context: OrderContext,
    event: SecurityEvent,
    current: dict[str, Office365Problem] | None,
) -> str:
    """The title of an event's order: cause on device, or the Office 365 problem."""
    if event.problem_id:
        problem = (current or {}).get(event.problem_id)
        return office365_title(context, event, problem)
    return title(event_cause(event), event.device_name)


def _event_body(
    context: OrderContext,
    seen: Sequence[SecurityEvent],
    current: dict[str, Office365Problem] | None,
) -> str:
    """The body of an order opened by ``seen`` (events of one cause)."""
    if seen[0].problem_id:
        problem = (current or {}).get(seen[0].problem_id)
        return office365_body(context, seen, problem)
    return event_body(context, seen)


def _plan_office365_closes(
    plan: OrderPlan,
    context: OrderContext,
    by_cause: dict[tuple[str, str], TrackedOrder],
    current: dict[str, Office365Problem],
) -> None:
    """Close the Office 365 orders whose problem Business Hub no longer lists."""
    for (_, kind), order in by_cause.items():
        if origin_of(kind) != OFFICE365 or order.state == CLOSING:
            continue
        problem_id = kind.partition(":")[2]
        if problem_id in current:
            continue
        plan.closes.append(
            OrderClose(
                order_key=order.key,
                order_number=order.order_number,
                text=office365_cleared_note(context, problem_id),
                title=f"Office 365 problem {problem_id} at {context.tenant_name}",
            )
        )


def _plan_statuses(
    plan: OrderPlan,
    context: OrderContext,
    devices: Sequence[Device],
    by_cause: dict[tuple[str, str], TrackedOrder],
    choices: SyncChoices,
    new_key: Callable[[], str],
) -> None:
    """Open orders for new device problems; close those whose problem cleared."""
    listed = {device.id: device for device in devices}
    for device in devices:
        level = status_level(device)
        for problem in sorted(device.problems):
            rule = status_rule(choices, level, problem)
            if rule is None or not rule.enabled:
                continue
            if (device.id, status_kind(problem)) in by_cause:
                continue
            plan.opens.append(
                NewOrder(
                    key=new_key(),
                    device_id=device.id,
                    kind=status_kind(problem),
                    title=title(problem_text(problem), device.name),
                    body=status_body(context, device, problem),
                    rule=rule,
                )
            )

    for (device_id, kind), order in by_cause.items():
        if origin_of(kind) != STATUS or order.state == CLOSING:
            continue
        problem = kind.partition(":")[2]
        now_listed = listed.get(device_id)
        if now_listed is not None and problem in now_listed.problems:
            continue
        name = now_listed.name if now_listed is not None else ""
        plan.closes.append(
            OrderClose(
                order_key=order.key,
                order_number=order.order_number,
                text=cleared_note(context, problem, now_listed),
                title=title(problem_text(problem), name),
            )
        )
