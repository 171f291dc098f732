"""Tigerpaw REST: service orders, their notes and custom fields, and the lock.

An order someone holds open in the Tigerpaw window (``POST /_sandbox/events``
``{"lock": [n]}``) refuses updates, notes and custom field writes with HTTP 423 and
``Success: false``; reads still work. Priority, Status and ServiceOrderType must be
master-table values; a closed status (Complete, Closed) stamps ``DateTimeClosed``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from agent.sandbox.tigerpaw_rest_base import (
    Call,
    Getter,
    RestError,
    RouteTable,
    ci,
    to_int,
)
from agent.sandbox.tigerpaw_rest_tables import (
    custom_field_getter,
    custom_values,
    write_custom_values,
)
from agent.sandbox.tigerpaw_state import (
    SERVICE_ORDERS,
    Note,
    ServiceOrder,
    TigerpawWorld,
    iso,
)

logger = logging.getLogger(__name__)

routes = RouteTable()

#: The service order fields the sandbox models: name -> (kind, longest text).
FIELDS: dict[str, tuple[str, int]] = {
    "AccountNumber": ("int", 0),
    "ContactNumber": ("int", 0),
    "TechnicianAssigned": ("rep", 0),
    "TakenBy": ("rep", 0),
    "DispatchBoardNumber": ("board", 0),
    "Severity": ("severity", 0),
    "Priority": ("priorities", 0),
    "Status": ("statuses", 0),
    "ServiceOrderType": ("types", 0),
    "BriefDescription": ("text", 100),
    "WorkRequested": ("text", 8000),
    "WorkPerformed": ("text", 8000),
    "InternalComments": ("text", 8000),
    "Reference": ("text", 50),
    "RequestedBy": ("text", 50),
    "ContractNumber": ("int", 0),
    "ExternalAccountId": ("text", 100),
    "ManagedServiceProviderAlertId": ("text", 100),
    "ManagedServiceProviderAlertUrl": ("text", 500),
    "DisplayOnCustomerPortal": ("bool", 0),
    "DateTimeRequested": ("time", 0),
    "DateTimeOpened": ("time", 0),
    "DateTimeClosed": ("time", 0),
}
_BY_LOWER = {name.casefold(): name for name in FIELDS}


def _moment(value: Any, name: str) -> str | None:
    """An ISO time from a string, ``{DateTime}`` or ``{Date, Time}``."""
    if value in (None, ""):
        return None
    if isinstance(value, dict):
        joined = ci(value, "DateTime")
        if joined in (None, "") and ci(value, "Date"):
            date_part = str(ci(value, "Date"))[:10]
            time_part = str(ci(value, "Time") or "00:00:00")
            time_part = time_part.split("T")[-1] if "T" in time_part else time_part
            joined = f"{date_part}T{time_part}"
        value = joined
        if value in (None, ""):
            return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError as err:
        raise RestError(f"{name} must be an ISO 8601 date and time.") from err
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))


def _field(world: TigerpawWorld, name: str, value: Any) -> Any:
    """One field's value as stored, or a 400 error saying what is wrong."""
    kind, longest = FIELDS[name]
    if value is None:
        return None
    if kind == "text":
        text = str(value)
        if len(text) > longest:
            raise RestError(f"{name} holds at most {longest} characters.")
        return text
    if kind == "bool":
        if not isinstance(value, bool):
            raise RestError(f"{name} must be true or false.")
        return value
    if kind == "time":
        return _moment(value, name)
    if kind in ("priorities", "statuses", "types"):
        entry = world.entry(kind, str(value))
        if entry is None:
            values = ", ".join(e.value for e in world.tables[kind])
            raise RestError(f"{name} '{value}' is not in the master table ({values}).")
        return entry.value

    number = to_int(value, name)
    if kind == "rep":
        rep = world.rep(number)
        if rep is None or not rep.active:
            raise RestError(f"{name} {number} is not an active rep.")
    if kind == "board" and world.entry_by_id("dispatchboards", number) is None:
        raise RestError(f"There is no dispatch board {number}.")
    if kind == "severity" and world.entry_by_id("severities", number) is None:
        raise RestError(f"There is no severity {number}.")
    return number


def _read_fields(world: TigerpawWorld, body: dict[str, Any]) -> dict[str, Any]:
    """The modelled fields of a request body, checked; others are ignored."""
    values = {}
    for key, value in body.items():
        name = _BY_LOWER.get(str(key).casefold())
        if name is not None:
            values[name] = _field(world, name, value)
    if "AccountNumber" in values and world.account(values["AccountNumber"]) is None:
        raise RestError(f"Account {values['AccountNumber']} does not exist.")
    return values


def _closed(world: TigerpawWorld, status: str) -> bool:
    entry = world.entry("statuses", status)
    return bool(entry and entry.extra.get("Closed"))


def summary_json(world: TigerpawWorld, order: ServiceOrder) -> dict[str, Any]:
    """A ServiceOrderSummary."""
    data = {name: order.data.get(name) for name in FIELDS}
    account = world.account(order.account_number)
    tech = world.rep(data["TechnicianAssigned"] or 0)
    taken = world.rep(data["TakenBy"] or 0)
    severity = world.entry_by_id("severities", data["Severity"] or 0)
    lock = None
    if order.locked_by is not None:
        locker = world.rep(order.locked_by)
        lock = {
            "LockingRepNumber": order.locked_by,
            "LockingRepName": locker.name if locker else None,
        }
    return {
        "ServiceOrderNumber": order.number,
        "ServiceOrder": {**data, "DateCreated": iso(order.created)},
        "AccountName": account.name if account else None,
        "PrimaryTechnicianName": tech.name if tech else None,
        "TakenByName": taken.name if taken else None,
        "SeverityDescription": severity.value if severity else None,
        "Notes": len(order.notes),
        "ServiceOrderLock": lock,
    }


def note_json(world: TigerpawWorld, note: Note) -> dict[str, Any]:
    """A service order note."""
    rep = world.rep(note.rep_number)
    return {
        "NoteNumber": note.id,
        "Topic": note.topic,
        "Note": note.text,
        "DateCreated": iso(note.created),
        "StartTime": note.start_time,
        "RepNumber": note.rep_number,
        "RepName": rep.name if rep else None,
    }


@routes("POST", r"/api/serviceorders", "Service orders: create")
def create_order(call: Call) -> dict[str, Any]:
    """Open a service order."""
    world = call.world
    values = _read_fields(world, call.body_object())
    if values.get("AccountNumber") is None:
        raise RestError("AccountNumber is required.")
    if not (values.get("BriefDescription") or "").strip():
        raise RestError("BriefDescription is required.")

    kind = values.get("ServiceOrderType") or world.default_entry("types").value
    values["ServiceOrderType"] = kind
    type_entry = world.entry("types", kind)
    type_priority = type_entry.extra["Priority"] if type_entry else None
    values["Priority"] = values.get("Priority") or type_priority
    values["Status"] = values.get("Status") or world.default_entry("statuses").value
    values["TakenBy"] = values.get("TakenBy") or call.rep.number
    values["DateTimeOpened"] = values.get("DateTimeOpened") or iso(call.now)
    if _closed(world, values["Status"]):
        values["DateTimeClosed"] = values.get("DateTimeClosed") or iso(call.now)

    order = ServiceOrder(20000 + world.next_id("order"), values, call.now)
    world.orders.append(order)
    logger.debug(
        "Service order %d opened on account %d", order.number, order.account_number
    )
    return {"ServiceOrderSummary": summary_json(world, order)}


@routes("PUT", r"/api/serviceorders/(\d+)", "Service orders: update")
def update_order(call: Call) -> dict[str, Any]:
    """Change a service order; a locked one refuses."""
    world = call.world
    order = world.order(call.number())
    world.check_not_locked(order)
    values = _read_fields(world, call.body_object())
    if "BriefDescription" in values and not (values["BriefDescription"] or "").strip():
        raise RestError("BriefDescription cannot be blank.")

    was_closed = _closed(world, order.data.get("Status") or "")
    order.data.update({k: v for k, v in values.items() if v is not None})
    now_closed = _closed(world, order.data["Status"])
    if now_closed and not was_closed:
        order.data["DateTimeClosed"] = values.get("DateTimeClosed") or iso(call.now)
    if was_closed and not now_closed:
        order.data["DateTimeClosed"] = None
    return {"ServiceOrderSummary": summary_json(world, order)}


@routes("GET", r"/api/serviceorders/(\d+)", "Service orders: get")
def get_order(call: Call) -> dict[str, Any]:
    """One service order."""
    order = call.world.order(call.number())
    return {"ServiceOrderSummary": summary_json(call.world, order)}


@routes("GET", r"/api/serviceorders/(\d+)/details", "Service orders: get")
def order_details(call: Call) -> dict[str, Any]:
    """One service order with its notes and custom fields."""
    world = call.world
    order = world.order(call.number())
    detail = summary_json(world, order)
    detail["NoteLines"] = [note_json(world, n) for n in order.notes]
    detail["CustomFields"] = custom_values(world, SERVICE_ORDERS, order.custom)
    return {"ServiceOrderDetail": detail}


def _order_getters(world: TigerpawWorld) -> dict[str, Getter | None]:
    def data(name: str) -> Getter:
        return lambda order, _criterion: [order.data.get(name)]

    unmodelled = (
        "invoicenumber itemid agreementnumber customerpurchaseorder externalproduct "
        "externalticket profile resolution symptom"
    )
    getters: dict[str, Getter | None] = dict.fromkeys(unmodelled.split())
    getters.update(
        {
            "serviceordernumber": lambda order, _c: [order.number],
            "reference": data("Reference"),
            "accountnumber": data("AccountNumber"),
            "status": data("Status"),
            "type": data("ServiceOrderType"),
            "customfield": custom_field_getter(world, SERVICE_ORDERS),
        }
    )
    return getters


routes.searches(
    r"/api/serviceorders/search",
    "Service orders: get",
    "ServiceOrders",
    records=lambda world: world.orders,
    getters=_order_getters,
    to_json=summary_json,
)


@routes("GET", r"/api/serviceorders/(\d+)/notes", "Service orders: get")
def get_notes(call: Call) -> dict[str, Any]:
    """The notes of a service order."""
    order = call.world.order(call.number())
    return {"Notes": [note_json(call.world, n) for n in order.notes]}


@routes("POST", r"/api/serviceorders/(\d+)/notes", "Service orders: update")
def add_note(call: Call) -> dict[str, Any]:
    """Add a note; a locked order refuses."""
    world = call.world
    order = world.order(call.number())
    world.check_not_locked(order)
    body = call.body_object()
    text = str(ci(body, "Note") or "").strip()
    if not text:
        raise RestError("Note is required.")

    topic_text = str(ci(body, "Topic") or "General")
    topic = world.entry("notetopics", topic_text)
    if topic is None:
        raise RestError(f"Topic '{topic_text}' is not a service order note topic.")
    rep_number = ci(body, "RepNumber")
    rep_number = (
        call.rep.number if rep_number is None else to_int(rep_number, "RepNumber")
    )
    if world.rep(rep_number) is None:
        raise RestError(f"RepNumber {rep_number} is not a rep.")
    created = _moment(ci(body, "DateCreated"), "DateCreated")
    start = ci(body, "StartTime")

    note = Note(
        id=world.next_id("note"),
        topic=topic.value,
        text=text,
        rep_number=rep_number,
        created=dt.datetime.fromisoformat(created) if created else call.now,
        start_time=None if start is None else str(start),
    )
    order.notes.append(note)
    return {"Note": note_json(world, note)}


@routes("GET", r"/api/serviceorders/(\d+)/customfields", "Service orders: get")
def get_order_fields(call: Call) -> dict[str, Any]:
    """The custom fields of a service order."""
    order = call.world.order(call.number())
    return {"CustomFields": custom_values(call.world, SERVICE_ORDERS, order.custom)}


@routes("PUT", r"/api/serviceorders/(\d+)/customfields", "Service orders: update")
def put_order_fields(call: Call) -> dict[str, Any]:
    """Set custom field values of a service order; a locked order refuses."""
    order = call.world.order(call.number())
    call.world.check_not_locked(order)
    write_custom_values(call.world, SERVICE_ORDERS, order.custom, call.body())
    return {"CustomFields": custom_values(call.world, SERVICE_ORDERS, order.custom)}
