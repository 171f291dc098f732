"""Events and device statuses to service orders: which to open, note and close.

The rules (nothing here does I/O; the cycle hands in what it read):

- One open order per (tenant, device, kind). The kind of an event order is
  ``event:<event type>``, of a status order ``status:<problem>``.
- An event opens an order when its severity's rule is on and it is younger than the
  rule's lifetime; older events open nothing (after an outage, for example).
- A device problem opens an order when its rule is on.
- A repeat, an event of a kind that already has an open order, adds one note per
  cycle to that order, saying how many times the cause has been seen.
- A status order closes itself (with a note) once its problem no longer applies to
  the device, or the device is gone. Event orders are left for a person; once a
  person closed one, the next occurrence opens a new order (the cycle learns of the
  close and stops tracking the old order before planning).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from agent.sources.records import PROBLEM_DESCRIPTIONS, Device, SecurityEvent
from agent.store.choices import SEVERITY_LABELS, OrderRule, SyncChoices
from agent.store.records import CLOSING, TrackedOrder
from agent.tigerpaw.models import ServiceOrder

logger = logging.getLogger(__name__)

EVENT, STATUS = "event", "status"
#: Tigerpaw's longest BriefDescription.
MAX_TITLE = 100
KEY_PREFIX = "KSI-"


def new_order_key() -> str:
    """A new key for an order: unique, short enough for Tigerpaw's Reference field."""
    return KEY_PREFIX + uuid.uuid4().hex[:20]


def event_kind(event: SecurityEvent) -> str:
    """The kind of the order an event opens."""
    return f"{EVENT}:{event.type or event.description}"


def status_kind(problem: str) -> str:
    """The kind of the order a device problem opens."""
    return f"{STATUS}:{problem}"


def origin_of(kind: str) -> str:
    """``event`` or ``status``: where an order's kind comes from."""
    return kind.partition(":")[0]


def problem_text(problem: str) -> str:
    """A device problem in the words the consoles use."""
    return PROBLEM_DESCRIPTIONS.get(problem, problem.replace("_", " ").capitalize())


def status_rule(choices: SyncChoices, problem: str) -> OrderRule | None:
    """The rule for a device problem: by its word, or by its description."""
    rules = {name.casefold(): rule for name, rule in choices.device_statuses.items()}
    return rules.get(problem.casefold()) or rules.get(problem_text(problem).casefold())


def event_cause(event: SecurityEvent) -> str:
    """What an event is about, without the device: KSC's descriptions name the
    device and threat ("Virus found on PC-002: Trojan..."), Business Hub's do not."""
    text = event.description.strip()
    marker = f" on {event.device_name}" if event.device_name else ""
    if marker and marker in text:
        text = text[: text.index(marker)].strip()
    return text or event.type or "Security event"


def title(cause: str, device_name: str) -> str:
    """A clear one-line title: "Virus found on PC-017"."""
    text = f"{cause.strip() or 'Security problem'} on {device_name or 'a device'}"
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 3] + "..."


def stamp(moment: dt.datetime | None) -> str:
    """A time as people read it in a note: UTC, to the minute."""
    if moment is None:
        return "unknown"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


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
    """A status order to close, with the note that says why."""

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


@dataclass(frozen=True)
class OrderContext:
    """Who the orders are for: the tenant, its account and the console's name."""

    tenant_id: int
    tenant_name: str
    account_name: str
    console: str


def is_fresh(event: SecurityEvent, rule: OrderRule, now: dt.datetime) -> bool:
    """Whether an event is young enough to open an order under its rule."""
    return now - event.time <= dt.timedelta(days=rule.lifetime_days)


def event_rule(choices: SyncChoices, event: SecurityEvent) -> OrderRule | None:
    """The rule of an event's severity when it is on, else None."""
    rule = choices.events.get(event.severity)
    return rule if rule is not None and rule.enabled else None


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
    for event in events:
        rule = event_rule(choices, event)
        if rule is None or not is_fresh(event, rule, now):
            continue
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
    new_key: Callable[[], str] = new_order_key,
) -> OrderPlan:
    """The orders to open, note and close for one tenant (see the module's rules).

    ``devices`` is every device the console lists now (a status order of a device
    not among them closes); ``events`` are the new events since the last cycle;
    ``tracked`` the orders the agent holds open for this tenant.
    """
    plan = OrderPlan()
    by_cause = {(o.device_id, o.kind): o for o in tracked}
    opening: dict[tuple[str, str], list[SecurityEvent]] = {}
    repeats: dict[str, list[SecurityEvent]] = {}

    for event in sorted(events, key=lambda e: e.time):
        rule = event_rule(choices, event)
        if rule is None or not is_fresh(event, rule, now):
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
        first = seen[0]
        rule = event_rule(choices, first)
        assert rule is not None
        plan.opens.append(
            NewOrder(
                key=new_key(),
                device_id=device_id,
                kind=kind,
                title=title(event_cause(first), first.device_name),
                body=event_body(context, seen),
                rule=rule,
                occurrences=len(seen),
            )
        )

    orders_by_key = {o.key: o for o in tracked}
    for key, seen in repeats.items():
        order = orders_by_key[key]
        total = order.occurrences + len(seen)
        plan.notes.append(
            OrderNote(
                order_key=key,
                note_key=f"{key}:event:{seen[-1].id}",
                text=repeat_note(seen, total),
                occurrences=total,
                title=title(event_cause(seen[-1]), seen[-1].device_name),
            )
        )

    _plan_statuses(plan, context, devices, by_cause, choices, new_key)
    return plan


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
        for problem in sorted(device.problems):
            rule = status_rule(choices, problem)
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


def event_body(context: OrderContext, events: Sequence[SecurityEvent]) -> str:
    """What a technician needs to act on an event order."""
    first, last = events[0], events[-1]
    severity = SEVERITY_LABELS.get(first.severity, first.severity)
    lines = [
        f"{event_cause(first)} on {first.device_name} ({context.tenant_name}).",
        "",
        f"Device: {first.device_name} (id {first.device_id})",
        f"Time: {stamp(first.time)}",
        f"Severity: {severity}",
        f"Event: {first.type or 'unnamed'}",
    ]
    if first.description.strip() != event_cause(first):
        lines.append(f"The console reported: {first.description.strip()}")
    if first.threat:
        lines.append(f"Threat: {first.threat}")
    if len(events) > 1:
        lines.append(
            f"Seen {len(events)} times, the last at {stamp(last.time)}"
            + (f" (threat {last.threat})" if last.threat else "")
        )
    lines += [
        f"Reported by {context.console}.",
        "",
        "A person closes this order once the device is safe; a new occurrence "
        "after that opens a new order.",
    ]
    return "\n".join(lines)


def status_body(context: OrderContext, device: Device, problem: str) -> str:
    """What a technician needs to act on a status order."""
    lines = [
        f"{problem_text(problem)} on {device.name} ({context.tenant_name}).",
        "",
        f"Device: {device.name} (id {device.id})",
        f"Status: {device.status.capitalize()}",
        f"Reason: {problem_text(problem)}",
        f"Last seen: {stamp(device.last_seen)}",
    ]
    if device.os_name:
        lines.append(f"Operating system: {device.os_name}")
    if device.threats:
        lines.append(f"Threats not cured: {device.threats}")
    others = sorted(problem_text(p) for p in device.problems if p != problem)
    if others:
        lines.append(f"Other problems: {', '.join(others)}")
    lines += [
        f"Reported by {context.console}.",
        "",
        "This order closes itself once the console no longer reports the reason.",
    ]
    return "\n".join(lines)


def repeat_note(events: Sequence[SecurityEvent], total: int) -> str:
    """The note a repeat adds: how many times, when, and what was seen."""
    last = events[-1]
    count = "once more" if len(events) == 1 else f"{len(events)} more times"
    text = (
        f"Seen {count}: {event_cause(last)} on {last.device_name} at {stamp(last.time)}"
    )
    if last.threat:
        text += f" (threat {last.threat})"
    return f"{text}. {total} occurrences since this order was opened."


def cleared_note(context: OrderContext, problem: str, device: Device | None) -> str:
    """The note a status order closes with."""
    if device is None:
        return (
            f"{context.console} no longer lists the device, so '"
            f"{problem_text(problem)}' no longer applies. Closed by the integration "
            "agent."
        )
    return (
        f"'{problem_text(problem)}' no longer applies to {device.name} "
        f"(status now {device.status}). Closed by the integration agent."
    )
