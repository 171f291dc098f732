"""Tigerpaw REST service orders: create, read, change, notes, custom fields, search.

An order someone holds open in the Tigerpaw window refuses changes with HTTP 423,
raised as :class:`agent.errors.RecordLocked` (transient: try again later). Writes are
logged at DEBUG: the sync and the setup page log each at INFO, with the names of the
account and the order people know them by.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agent.errors import ProtocolError
from agent.tigerpaw import rest_parse as parse
from agent.tigerpaw.models import Criterion, CustomFieldValue, Note, ServiceOrder
from agent.tigerpaw.rest import RestApi
from agent.tigerpaw.rest_records import FieldKey, RecordKind
from agent.tigerpaw.wire import SYSTEM

logger = logging.getLogger(__name__)

ORDERS_GET = "Service orders: get"
ORDERS_CREATE = "Service orders: create"
ORDERS_UPDATE = "Service orders: update"
ORDER = RecordKind("/api/serviceorders", "Service order", ORDERS_GET, ORDERS_UPDATE)

#: Our names of service order fields -> Tigerpaw's.
FIELDS = {
    "brief_description": "BriefDescription",
    "status": "Status",
    "priority": "Priority",
    "order_type": "ServiceOrderType",
    "reference": "Reference",
    "dispatch_board": "DispatchBoardNumber",
    "technician": "TechnicianAssigned",
    "taken_by": "TakenBy",
    "severity": "Severity",
    "work_requested": "WorkRequested",
    "work_performed": "WorkPerformed",
    "internal_comments": "InternalComments",
    "requested_by": "RequestedBy",
    "contact_number": "ContactNumber",
}


#: Fields whose values a log line may show (master-table words, not free text).
SHOWN = ("status", "priority", "order_type", "dispatch_board")


def order_body(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The wire body of service order fields; None values are left out."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise TypeError(f"Unknown service order fields: {', '.join(unknown)}")
    return {FIELDS[k]: v for k, v in changes.items() if v is not None}


def _summary(payload: Any) -> ServiceOrder:
    """The service order of a reply."""
    found = parse.get(payload, "ServiceOrderSummary") or parse.get(
        payload, "ServiceOrderDetail"
    )
    if not isinstance(found, dict):
        raise ProtocolError(
            "Tigerpaw answered without the service order", system=SYSTEM
        )
    return parse.service_order(found)


def create(api: RestApi, account_number: int, fields: Mapping[str, Any]) -> int:
    """Open a service order on an account; its number.

    Sent once: a create that may have reached Tigerpaw is never repeated here.
    """
    body = {"AccountNumber": int(account_number), **order_body(fields)}
    payload = api.call(
        "POST", "/api/ServiceOrders", body=body, right=ORDERS_CREATE, retry=False
    )
    order = _summary(payload)
    logger.debug(
        "Created service order %d for account %d", order.number, int(account_number)
    )
    return order.number


def get(api: RestApi, number: int) -> ServiceOrder:
    """One service order; RecordNotFound when there is none."""
    payload = api.call(
        "GET", ORDER.url(number), right=ORDERS_GET, record=ORDER.label(number)
    )
    return _summary(payload)


def update(api: RestApi, number: int, fields: Mapping[str, Any]) -> ServiceOrder:
    """Change fields of a service order (a PUT: safe to repeat)."""
    body = order_body(fields)
    payload = api.call(
        "PUT",
        ORDER.url(number),
        body=body,
        right=ORDERS_UPDATE,
        record=ORDER.label(number),
    )
    order = _summary(payload)
    changed = [
        f"{name} {value!r}" if name in SHOWN else name
        for name, value in sorted(fields.items())
        if value is not None
    ]
    logger.debug(
        "Updated service order %d for account %d: %s",
        order.number,
        order.account_number,
        ", ".join(changed) or "nothing",
    )
    return order


def add_note(api: RestApi, number: int, text: str, *, topic: str = "General") -> Note:
    """Add a note to a service order (sent once, like every create)."""
    payload = api.call(
        "POST",
        ORDER.url(number, "/notes"),
        body={"Topic": topic, "Note": text},
        right=ORDERS_UPDATE,
        record=ORDER.label(number),
        retry=False,
    )
    found = parse.get(payload, "Note")
    if not isinstance(found, dict):
        raise ProtocolError("Tigerpaw answered without the note", system=SYSTEM)
    added = parse.note(found)
    logger.debug("Added note %d to service order %d", added.number, int(number))
    return added


def notes(api: RestApi, number: int) -> list[Note]:
    """The notes of a service order."""
    return [parse.note(row) for row in ORDER.rows(api, number, "/notes", "Notes")]


def custom_fields(api: RestApi, number: int) -> list[CustomFieldValue]:
    """The custom fields of a service order, with their values."""
    return ORDER.custom_fields(api, number)


def set_custom_fields(
    api: RestApi, number: int, values: Mapping[FieldKey, str | None]
) -> list[CustomFieldValue]:
    """Set custom field values of a service order (all or none)."""
    return ORDER.set_custom_fields(api, number, values)


def search(api: RestApi, criteria: Sequence[Criterion]) -> Iterator[ServiceOrder]:
    """Service orders meeting the criteria, page by page."""
    rows = ORDER.search(api, criteria, "ServiceOrders")
    return (parse.service_order(row) for row in rows)
