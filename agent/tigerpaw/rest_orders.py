"""Tigerpaw REST service orders: create, read, change, notes, custom fields, search.

An order someone holds open in the Tigerpaw window refuses changes with HTTP 423,
raised as :class:`agent.errors.RecordLocked` (transient: try again later).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agent.errors import ProtocolError
from agent.tigerpaw import rest_parse as parse
from agent.tigerpaw.models import Criterion, CustomFieldValue, Note, ServiceOrder
from agent.tigerpaw.rest import RestApi, rows_of
from agent.tigerpaw.rest_catalog import FieldKey, search_body, values_body
from agent.tigerpaw.wire import SYSTEM

logger = logging.getLogger(__name__)

ORDERS_GET = "Service orders: get"
ORDERS_CREATE = "Service orders: create"
ORDERS_UPDATE = "Service orders: update"

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
    logger.info(
        "Created service order %d for account %d", order.number, int(account_number)
    )
    return order.number


def get(api: RestApi, number: int) -> ServiceOrder:
    """One service order; RecordNotFound when there is none."""
    payload = api.call(
        "GET",
        f"/api/serviceorders/{int(number)}",
        right=ORDERS_GET,
        record=f"Service order {number}",
    )
    return _summary(payload)


def update(api: RestApi, number: int, fields: Mapping[str, Any]) -> ServiceOrder:
    """Change fields of a service order (a PUT: safe to repeat)."""
    body = order_body(fields)
    payload = api.call(
        "PUT",
        f"/api/serviceorders/{int(number)}",
        body=body,
        right=ORDERS_UPDATE,
        record=f"Service order {number}",
    )
    order = _summary(payload)
    changed = [
        f"{name} {value!r}" if name in SHOWN else name
        for name, value in sorted(fields.items())
        if value is not None
    ]
    logger.info(
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
        f"/api/serviceorders/{int(number)}/notes",
        body={"Topic": topic, "Note": text},
        right=ORDERS_UPDATE,
        record=f"Service order {number}",
        retry=False,
    )
    found = parse.get(payload, "Note")
    if not isinstance(found, dict):
        raise ProtocolError("Tigerpaw answered without the note", system=SYSTEM)
    added = parse.note(found)
    logger.info("Added note %d to service order %d", added.number, int(number))
    return added


def notes(api: RestApi, number: int) -> list[Note]:
    """The notes of a service order."""
    payload = api.call(
        "GET",
        f"/api/serviceorders/{int(number)}/notes",
        right=ORDERS_GET,
        record=f"Service order {number}",
    )
    return [parse.note(row) for row in rows_of(payload, "Notes")]


def custom_fields(api: RestApi, number: int) -> list[CustomFieldValue]:
    """The custom fields of a service order, with their values."""
    payload = api.call(
        "GET",
        f"/api/serviceorders/{int(number)}/customfields",
        right=ORDERS_GET,
        record=f"Service order {number}",
    )
    return [parse.field_value(row) for row in rows_of(payload, "CustomFields")]


def set_custom_fields(
    api: RestApi, number: int, values: Mapping[FieldKey, str | None]
) -> list[CustomFieldValue]:
    """Set custom field values of a service order (all or none)."""
    payload = api.call(
        "PUT",
        f"/api/serviceorders/{int(number)}/customfields",
        body=values_body(values),
        right=ORDERS_UPDATE,
        record=f"Service order {number}",
    )
    logger.info("Set %d custom field(s) of service order %d", len(values), int(number))
    return [parse.field_value(row) for row in rows_of(payload, "CustomFields")]


def search(api: RestApi, criteria: Sequence[Criterion]) -> Iterator[ServiceOrder]:
    """Service orders meeting the criteria, page by page."""
    rows = api.pages(
        "POST",
        "/api/serviceorders/search",
        "ServiceOrders",
        body=search_body(criteria),
        right=ORDERS_GET,
    )
    return (parse.service_order(row) for row in rows)
