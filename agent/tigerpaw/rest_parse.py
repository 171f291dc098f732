"""Tigerpaw REST JSON turned into the records of :mod:`agent.tigerpaw.models`.

Keys are read case-insensitively (Tigerpaw's .NET serializer and its binder do not
care), missing optional fields become None, and a record without its number is a
:class:`ProtocolError`, never a half-filled record.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from agent.errors import ProtocolError
from agent.tigerpaw.models import (
    Account,
    AdditionalCharge,
    Agreement,
    CustomFieldCategory,
    CustomFieldDefinition,
    CustomFieldValue,
    MasterTableEntry,
    Note,
    PriceBookItem,
    Rep,
    ServiceOrder,
)
from agent.tigerpaw.wire import SYSTEM

logger = logging.getLogger(__name__)


def get(data: Any, key: str, default: Any = None) -> Any:
    """A value of a JSON object by key, matched case-insensitively."""
    if not isinstance(data, dict):
        return default
    if key in data:
        return data[key]
    wanted = key.casefold()
    for name, value in data.items():
        if str(name).casefold() == wanted:
            return value
    return default


def text(data: Any, key: str) -> str | None:
    """A text value, or None when absent or empty."""
    value = get(data, key)
    return None if value in (None, "") else str(value)


def number(data: Any, key: str) -> int | None:
    """A whole number, or None when absent or not a number."""
    value = get(data, key)
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def decimal(data: Any, key: str) -> float | None:
    """A decimal number, or None."""
    value = get(data, key)
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def flag(data: Any, key: str, default: bool = False) -> bool:
    """A true/false value (JSON booleans or the texts true/false)."""
    value = get(data, key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default


def moment(data: Any, key: str) -> dt.datetime | None:
    """An aware datetime from ISO 8601 text (no offset means UTC), or None."""
    value = get(data, key)
    if isinstance(value, dict):
        value = get(value, "DateTime") or get(value, "Date")
    if value in (None, ""):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        logger.debug("Unreadable Tigerpaw time %r in %s", value, key)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def required(data: Any, key: str, what: str) -> int:
    """A number the record cannot be without."""
    found = number(data, key)
    if found is None:
        raise ProtocolError(f"Tigerpaw answered a {what} without {key}", system=SYSTEM)
    return found


def account(summary: dict[str, Any]) -> Account:
    """An AccountSummary."""
    inner = get(summary, "Account") or {}
    return Account(
        number=required(summary, "AccountNumber", "account"),
        name=text(inner, "Name") or text(summary, "AccountName") or "",
        status=text(inner, "Status"),
        account_id=text(inner, "AccountId"),
        account_type=text(inner, "AccountType"),
        city=text(inner, "City"),
        state=text(inner, "State"),
        postal_code=text(inner, "PostalCode"),
        phone=text(inner, "PrimaryPhone"),
        email=text(inner, "EmailAddress"),
        rep_number=number(inner, "RepNumber"),
        primary_contact=text(summary, "PrimaryContactName"),
    )


def agreement(summary: dict[str, Any]) -> Agreement:
    """An AgreementSummary."""
    inner = get(summary, "Agreement") or {}
    return Agreement(
        number=required(summary, "AgreementNumber", "recurring agreement"),
        account_number=number(inner, "AccountNumber") or 0,
        type=text(inner, "Type") or "",
        start=moment(inner, "StartDate"),
        end=moment(inner, "EndDate"),
        total_price=decimal(inner, "TotalPrice"),
        billing_period=text(inner, "BillingPeriodDescription")
        or text(inner, "BillingPeriod"),
        automated_billing=flag(inner, "AutomatedBilling", True),
        charge_count=number(summary, "AdditionalCharges"),
    )


def charge(line: dict[str, Any]) -> AdditionalCharge:
    """An additional charge line."""
    return AdditionalCharge(
        detail_id=required(line, "DetailId", "additional charge"),
        item_id=text(line, "SpecialItemId") or text(line, "ItemId") or "",
        description=text(line, "ItemDescription") or "",
        quantity=number(line, "Quantity") or 0,
        price=decimal(line, "Price"),
        source=number(line, "Source"),
        added=moment(line, "DateAdded"),
    )


def price_book_item(summary: dict[str, Any]) -> PriceBookItem:
    """A PriceBookItemSummary."""
    inner = get(summary, "Item") or {}
    return PriceBookItem(
        number=required(summary, "PriceBookItemNumber", "price book item"),
        item_id=text(summary, "ItemId") or text(inner, "PartNumber") or "",
        description=text(inner, "ItemDescription") or "",
        type=text(inner, "Type"),
        category=text(inner, "Category"),
        price=decimal(inner, "Price"),
        inactive=flag(inner, "Inactive") or text(inner, "Status") == "Inactive",
        manufacturer=text(inner, "Manufacturer"),
    )


def service_order(summary: dict[str, Any]) -> ServiceOrder:
    """A ServiceOrderSummary (or ServiceOrderDetail)."""
    inner = get(summary, "ServiceOrder") or {}
    lock = get(summary, "ServiceOrderLock") or {}
    notes = get(summary, "Notes")
    return ServiceOrder(
        number=required(summary, "ServiceOrderNumber", "service order"),
        account_number=number(inner, "AccountNumber") or 0,
        brief_description=text(inner, "BriefDescription") or "",
        status=text(inner, "Status"),
        priority=text(inner, "Priority"),
        order_type=text(inner, "ServiceOrderType"),
        reference=text(inner, "Reference"),
        dispatch_board=number(inner, "DispatchBoardNumber"),
        technician=number(inner, "TechnicianAssigned"),
        taken_by=number(inner, "TakenBy"),
        severity=number(inner, "Severity"),
        work_requested=text(inner, "WorkRequested"),
        internal_comments=text(inner, "InternalComments"),
        opened=moment(inner, "DateTimeOpened"),
        closed=moment(inner, "DateTimeClosed"),
        account_name=text(summary, "AccountName"),
        note_count=notes if isinstance(notes, int) else None,
        locked_by=number(lock, "LockingRepNumber"),
        locked_by_name=text(lock, "LockingRepName"),
    )


def note(data: dict[str, Any]) -> Note:
    """A service order note."""
    return Note(
        number=required(data, "NoteNumber", "note"),
        topic=text(data, "Topic") or "",
        text=text(data, "Note") or "",
        rep_number=number(data, "RepNumber"),
        created=moment(data, "DateCreated"),
    )


def entry(row: dict[str, Any], value_key: str = "Value") -> MasterTableEntry:
    """A master table row: the named tables' own columns or generic ``Entries``."""
    value = text(row, value_key)
    if value is None:
        raise ProtocolError(
            f"Tigerpaw answered a master table row without {value_key}", system=SYSTEM
        )
    return MasterTableEntry(
        value=value,
        id=number(row, "Id"),
        rank=number(row, "Rank"),
        is_default=flag(row, "SystemDefault") or flag(row, "IsSystemDefault"),
        is_system=flag(row, "IsSystemEntry") or flag(row, "SystemEntry"),
        priority=text(row, "Priority") if value_key != "Priority" else None,
        response_hours=decimal(row, "ResponseTime"),
    )


def rep(row: dict[str, Any]) -> Rep:
    """An account rep."""
    return Rep(
        number=required(row, "RepNumber", "rep"),
        name=text(row, "RepName") or "",
        email=text(row, "EmailAddress"),
        active=flag(row, "Active", True),
    )


def category(row: dict[str, Any]) -> CustomFieldCategory:
    """A custom field category with its field definitions."""
    name = text(row, "CategoryName") or ""
    fields = tuple(
        definition(field, name)
        for field in get(row, "Fields") or []
        if isinstance(field, dict)
    )
    return CustomFieldCategory(
        name=name,
        fields=fields,
        available_in_gui=flag(row, "AvailableInGui", True),
        system=flag(row, "SystemEntry"),
    )


def definition(row: dict[str, Any], category_name: str) -> CustomFieldDefinition:
    """A custom field definition."""
    return CustomFieldDefinition(
        id=required(row, "CustomFieldDefinitionId", "custom field"),
        category=text(row, "CategoryName") or category_name,
        label=text(row, "CustomFieldLabel") or "",
        field_type=text(row, "FieldType"),
        max_length=number(row, "MaxLength"),
        description=text(row, "Description"),
    )


def field_value(row: dict[str, Any]) -> CustomFieldValue:
    """A record's custom field with its value."""
    return CustomFieldValue(
        field_id=required(row, "CustomFieldId", "custom field value"),
        category=text(row, "Category") or "",
        label=text(row, "Label") or "",
        value=text(row, "Value"),
    )
