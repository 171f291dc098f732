"""What service orders say: titles, bodies and notes, in words a technician reads.

Causes are written in words (a console's event code appears only on a reference line
at the end of a body) and times in the agent's local time with the zone named, as
the people reading the orders live in that zone. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.sources.records import (
    PROBLEM_DESCRIPTIONS,
    Device,
    Office365Problem,
    SecurityEvent,
)
from agent.store.choices import SEVERITY_LABELS, STATUS_LEVEL_LABELS, split_status_key
from agent.wording import zone_label

#: Tigerpaw's longest BriefDescription.
MAX_TITLE = 100
#: Prefixes of Kaspersky's event codes, left out when a code is put into words.
_CODE_PREFIXES = ("GNRL_EV_", "KLPRCI_", "KLEVP_", "KLSRV_", "KLNAG_", "O365_")


@dataclass(frozen=True)
class OrderContext:
    """Who the orders are for: the tenant, its account and the console's name."""

    tenant_id: int
    tenant_name: str
    account_name: str
    console: str


def problem_text(problem: str) -> str:
    """A device problem in the words the consoles use."""
    return PROBLEM_DESCRIPTIONS.get(problem, problem.replace("_", " ").capitalize())


def status_rule_name(key: str) -> str:
    """A device status row as the page shows it, for messages about the row:
    "Warning status 'Databases are out of date'" for "warning:databases_outdated"."""
    level, name = split_status_key(key)
    section = STATUS_LEVEL_LABELS.get(level, "Device status")
    # A row may be keyed by a description in words already (saved by hand).
    words = PROBLEM_DESCRIPTIONS.get(name) or (
        name.strip() if " " in name.strip() else problem_text(name.strip())
    )
    return f"{section} '{words}'"


def code_words(code: str) -> str:
    """An event code in words, for an event that has no description of its own:
    "GNRL_EV_VIRUS_FOUND" is "Virus found", "KLPRCI_TaskState" "Task state"."""
    text = code.strip()
    for prefix in _CODE_PREFIXES:
        if text.upper().startswith(prefix):
            text = text[len(prefix) :]
            break
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text).replace("_", " ")
    return " ".join(text.split()).lower().capitalize()


def event_cause(event: SecurityEvent) -> str:
    """What an event is about, in words and without the device: KSC's descriptions
    name the device and threat ("Virus found on PC-002: Trojan..."), Business Hub's
    do not."""
    text = event.description.strip()
    marker = f" on {event.device_name}" if event.device_name else ""
    if marker and marker in text:
        text = text[: text.index(marker)].strip()
    return text or code_words(event.type) or "Security event"


def fit_title(text: str) -> str:
    """A title cut to Tigerpaw's length."""
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 3] + "..."


def title(cause: str, device_name: str) -> str:
    """A clear one-line title: "Virus found on PC-017"."""
    return fit_title(
        f"{cause.strip() or 'Security problem'} on {device_name or 'a device'}"
    )


def stamp(moment: dt.datetime | None, zone: dt.tzinfo | None = None) -> str:
    """A time as people read it: the agent's local time (or ``zone``) to the minute,
    with the zone named."""
    if moment is None:
        return "unknown"
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {zone_label(local)}"


def reference(events: Sequence[SecurityEvent], extra: str = "") -> str:
    """The last line of an event order's body: the console's codes, for support."""
    first, last = events[0], events[-1]
    ids = first.id if first.id == last.id else f"{first.id} to {last.id}"
    text = f"Reference: event code {first.type or 'none'}, event id {ids}"
    return f"{text}{extra}."


def seen_line(events: Sequence[SecurityEvent]) -> list[str]:
    """ "Seen N times, the last at ..." when a batch holds more than one event."""
    if len(events) < 2:
        return []
    last = events[-1]
    threat = f" (threat {last.threat})" if last.threat else ""
    return [f"Seen {len(events)} times, the last at {stamp(last.time)}{threat}"]


def event_body(context: OrderContext, events: Sequence[SecurityEvent]) -> str:
    """What a technician needs to act on an event order."""
    first = events[0]
    severity = SEVERITY_LABELS.get(first.severity, first.severity)
    lines = [
        f"{event_cause(first)} on {first.device_name} ({context.tenant_name}).",
        "",
        f"Device: {first.device_name} (id {first.device_id})",
        f"Time: {stamp(first.time)}",
        f"Severity: {severity}",
    ]
    if first.description.strip() not in ("", event_cause(first)):
        lines.append(f"The console reported: {first.description.strip()}")
    if first.threat:
        lines.append(f"Threat: {first.threat}")
    lines += seen_line(events)
    lines += [
        f"Reported by {context.console}.",
        "",
        "A person closes this order once the device is safe; a new occurrence "
        "after that opens a new order.",
        "",
        reference(events),
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


def _office365_headline(
    context: OrderContext, event: SecurityEvent, problem: Office365Problem | None
) -> str:
    """The cause and what it is about: a mailbox, or the company's subscription."""
    cause = event_cause(event)
    if problem is not None and problem.mailbox:
        return f"{cause}: {problem.mailbox}"
    return f"{cause} at {context.tenant_name}"


def office365_title(
    context: OrderContext, event: SecurityEvent, problem: Office365Problem | None
) -> str:
    """ "Office 365 mailbox not protected: a@b.example", or for the subscription
    "Office 365 subscription expired at Contoso Dental"."""
    return fit_title(_office365_headline(context, event, problem))


def office365_body(
    context: OrderContext,
    events: Sequence[SecurityEvent],
    problem: Office365Problem | None,
) -> str:
    """What a technician needs to act on an Office 365 license or mailbox order."""
    first = events[0]
    severity = SEVERITY_LABELS.get(first.severity, first.severity)
    company = f" ({context.tenant_name})" if problem and problem.mailbox else ""
    lines = [f"{_office365_headline(context, first, problem)}{company}.", ""]
    if problem is not None:
        lines.append(f"Problem: {problem.description or event_cause(first)}")
        if problem.mailbox:
            lines.append(f"Mailbox: {problem.mailbox}")
        if problem.since is not None:
            lines.append(f"Since: {stamp(problem.since)}")
    lines += [f"Time: {stamp(first.time)}", f"Severity: {severity}"]
    lines += seen_line(events)
    lines += [
        f"Reported by {context.console}.",
        "",
        f"This order closes itself once {context.console} no longer lists the problem.",
        "",
        reference(events, f", Office 365 problem {first.problem_id}"),
    ]
    return "\n".join(lines)


def repeat_note(events: Sequence[SecurityEvent], total: int) -> str:
    """The note a repeat adds: how many times, when, and what was seen."""
    last = events[-1]
    count = "once more" if len(events) == 1 else f"{len(events)} more times"
    where = f" on {last.device_name}" if last.device_name else ""
    text = f"Seen {count}: {event_cause(last)}{where} at {stamp(last.time)}"
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


def office365_cleared_note(context: OrderContext, problem_id: str) -> str:
    """The note an Office 365 order closes with."""
    return (
        f"The Office 365 problem cleared in {context.console}: it no longer lists "
        f"problem {problem_id} for {context.tenant_name}. Closed by the integration "
        "agent."
    )
