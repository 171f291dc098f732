"""Tigerpaw REST: diagnostics, master tables and custom fields (definitions and values).

Custom field categories exist for accounts and, in the sandbox, for service orders
too (``/api/mastertables/customfields/serviceorders``), because the agent keeps its
key in a custom field on each order. The value helpers here serve
``/api/accounts/{n}/customfields`` and ``/api/serviceorders/{n}/customfields``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from agent.sandbox.tigerpaw_rest_base import Call, RestError, RouteTable, ci, to_int
from agent.sandbox.tigerpaw_state import (
    FIELD_TYPES,
    SERVICE_ORDERS,
    FieldCategory,
    FieldDefinition,
    MasterEntry,
    TigerpawWorld,
)

logger = logging.getLogger(__name__)

routes = RouteTable()

#: Master tables answered as generic ``Entries``, by path, with their table names.
GENERIC_TABLES = {
    "dispatchboards": "dispatchboards",
    "severities": "severities",
    "externalproducts": "externalproducts",
    "serviceorder/notetopics": "notetopics",
    "serviceorders/notetopics": "notetopics",
}
GENERIC_PATH = "(dispatchboards|severities|externalproducts|serviceorders?/notetopics)"
ENTITY_PATH = "(accounts|serviceorders)"


# Diagnostics.


@routes("GET", r"/api/diagnostics/validate/user")
def validate_user(call: Call) -> dict[str, Any]:
    """The keys are good (the signature check already passed)."""
    return {"Message": f"The user {call.rep.name} is valid.", "RepName": call.rep.name}


@routes("GET", r"/api/diagnostics/productinformation")
def product_information(call: Call) -> dict[str, Any]:
    """What Tigerpaw this is."""
    return {
        "HasValidLicense": True,
        "IsTigerpawOne": False,
        "DatabaseVersion": "18.2.1",
    }


# Master tables.


def _own_columns(
    rows: list[MasterEntry], value_key: str, *extras: str
) -> list[dict[str, Any]]:
    """The rows of a table with columns of its own: value, extras, SystemDefault."""
    return [
        {
            value_key: e.value,
            **{name: e.extra[name] for name in extras},
            "SystemDefault": e.system_default,
        }
        for e in rows
    ]


@routes("GET", r"/api/mastertables/priorities", "Master tables: get")
def priorities(call: Call) -> dict[str, Any]:
    """Service order priorities."""
    rows = call.world.tables["priorities"]
    return {"Priorities": _own_columns(rows, "Priority", "Rank", "ResponseTime")}


@routes(
    "GET",
    r"/api/mastertables/serviceorders/statuses(?:/(true|false))?",
    "Master tables: get",
)
def statuses(call: Call) -> dict[str, Any]:
    """Service order statuses (``/true`` leaves out system entries)."""
    rows = call.world.tables["statuses"]
    if call.flag(0):
        rows = [e for e in rows if not e.system_entry]
    return {"Statuses": _own_columns(rows, "Status", "Rank")}


@routes("GET", r"/api/mastertables/serviceorders/types", "Master tables: get")
def order_types(call: Call) -> dict[str, Any]:
    """Service order types."""
    rows = call.world.tables["types"]
    return {"Types": _own_columns(rows, "Type", "Priority")}


@routes("GET", r"/api/mastertables/reps(?:/(true|false))?", "Master tables: get")
def reps(call: Call) -> dict[str, Any]:
    """Account reps (``/true`` lists active ones only)."""
    found = [r for r in call.world.reps if r.active or not call.flag(0)]
    return {
        "Reps": [
            {
                "RepNumber": r.number,
                "RepName": r.name,
                "EmailAddress": r.email,
                "Active": r.active,
            }
            for r in found
        ]
    }


def _entry_json(entry: MasterEntry) -> dict[str, Any]:
    return {
        "Id": entry.id,
        "Value": entry.value,
        "IsSystemEntry": entry.system_entry,
        "IsSystemDefault": entry.system_default,
    }


@routes(
    "GET", rf"/api/mastertables/{GENERIC_PATH}(?:/(true|false))?", "Master tables: get"
)
def generic_table(call: Call) -> dict[str, Any]:
    """A generic master table (``/true`` leaves out system entries)."""
    rows = call.world.tables[GENERIC_TABLES[call.args[0].lower()]]
    if call.flag(1):
        rows = [e for e in rows if not e.system_entry]
    return {"Entries": [_entry_json(e) for e in rows]}


def _entry_value(call: Call) -> str:
    value = str(ci(call.body_object(), "Value") or "").strip()
    if not value:
        raise RestError("Send the entry as {Value: text}.")
    if len(value) > 50:
        raise RestError("A master table value holds at most 50 characters.")
    return value


@routes("POST", rf"/api/mastertables/{GENERIC_PATH}", "Master tables: create")
def create_entry(call: Call) -> dict[str, Any]:
    """Add a row to a generic master table."""
    table = GENERIC_TABLES[call.args[0].lower()]
    value = _entry_value(call)
    if call.world.entry(table, value) is not None:
        raise RestError(f"The {table} table already has '{value}'.", 409)

    rows = call.world.tables[table]
    entry = MasterEntry(max((e.id for e in rows), default=0) + 1, value)
    rows.append(entry)
    return {"Entry": _entry_json(entry)}


@routes("PUT", rf"/api/mastertables/{GENERIC_PATH}/(\d+)", "Master tables: update")
def update_entry(call: Call) -> dict[str, Any]:
    """Rename a row of a generic master table."""
    table = GENERIC_TABLES[call.args[0].lower()]
    entry = call.world.entry_by_id(table, int(call.args[1]))
    if entry is None:
        raise RestError(f"The {table} table has no entry {call.args[1]}.", 404)
    if entry.system_entry:
        raise RestError(f"'{entry.value}' is a system entry and cannot be changed.")

    entry.value = _entry_value(call)
    return {"Entry": _entry_json(entry)}


# Custom field definitions.


def _definition_json(d: FieldDefinition) -> dict[str, Any]:
    return {
        "CustomFieldDefinitionId": d.id,
        "CustomFieldLabel": d.label,
        "Description": d.description,
        "FieldType": d.field_type,
        "OrdinalPosition": d.ordinal,
        "MaxLength": d.max_length,
        "MinValue": d.min_value,
        "MaxValue": d.max_value,
        "DropDownConstraints": list(d.choices),
    }


@routes(
    "GET",
    rf"/api/mastertables/customfields/{ENTITY_PATH}(?:/(true|false))?",
    "Custom folders and fields: get",
)
def field_categories(call: Call) -> dict[str, Any]:
    """Custom field categories of accounts or service orders, with their fields."""
    entity = call.args[0].lower()
    found = [c for c in call.world.categories if c.entity == entity]
    if call.flag(1):
        found = [c for c in found if not c.system_entry]
    fields = call.world.fields_of(entity)
    return {
        "Categories": [
            {
                "CategoryName": c.name,
                "AvailableInGui": c.available_in_gui,
                "SystemEntry": c.system_entry,
                "Fields": [_definition_json(d) for d in fields if d.category == c.name],
            }
            for c in found
        ]
    }


def _category_name(body: dict[str, Any], key: str = "CategoryName") -> str:
    name = str(ci(body, key) or "").strip()
    if not name:
        raise RestError(f"{key} is required.")
    if len(name) > 50:
        raise RestError(f"{key} holds at most 50 characters.")
    return name


@routes(
    "POST",
    rf"/api/mastertables/customfields/categories/{ENTITY_PATH}",
    "Custom folders and fields: create",
)
def create_category(call: Call) -> dict[str, Any]:
    """Create a custom field category."""
    entity, body = call.args[0].lower(), call.body_object()
    name = _category_name(body)
    if call.world.category(entity, name) is not None:
        raise RestError(f"The {entity} custom field category '{name}' exists.", 409)

    category = FieldCategory(entity, name, bool(ci(body, "AvailableInGui", True)))
    call.world.categories.append(category)
    return {"CategoryName": category.name, "AvailableInGui": category.available_in_gui}


@routes(
    "PUT",
    rf"/api/mastertables/customfields/categories/{ENTITY_PATH}",
    "Custom folders and fields: update",
)
def update_category(call: Call) -> dict[str, Any]:
    """Rename a category or change whether the window shows it."""
    entity, body = call.args[0].lower(), call.body_object()
    name = _category_name(body)
    previous = str(ci(body, "PreviousCategoryName") or name).strip()
    category = call.world.category(entity, previous)
    if category is None:
        raise RestError(
            f"There is no {entity} custom field category '{previous}'.", 404
        )
    if name.casefold() != previous.casefold() and call.world.category(entity, name):
        raise RestError(f"The {entity} custom field category '{name}' exists.", 409)

    for definition in call.world.definitions:
        if definition.entity == entity and definition.category == category.name:
            definition.category = name
    category.name = name
    category.available_in_gui = bool(ci(body, "AvailableInGui", True))
    return {"CategoryName": category.name, "AvailableInGui": category.available_in_gui}


def _definition_category(world: TigerpawWorld, body: dict[str, Any]) -> FieldCategory:
    name = _category_name(body)
    entity = str(ci(body, "CategoryType") or "").strip().lower()
    found = [
        c
        for c in world.categories
        if c.name.casefold() == name.casefold() and entity in ("", c.entity)
    ]
    if not found:
        raise RestError(f"There is no custom field category '{name}'.", 404)
    if len(found) > 1:
        raise RestError(
            f"Accounts and service orders both have a category '{name}': "
            "add CategoryType 'accounts' or 'serviceorders'."
        )
    return found[0]


@routes(
    "POST",
    rf"/api/mastertables/customfields/definitions/({'|'.join(FIELD_TYPES)})",
    "Custom folders and fields: create",
)
def create_definition(call: Call) -> dict[str, Any]:
    """Create a custom field definition in a category."""
    body = call.body_object()
    category = _definition_category(call.world, body)
    label = _category_name(body, "CustomFieldLabel")
    if call.world.find_field(category.entity, label, category.name):
        raise RestError(
            f"Category '{category.name}' already has a field '{label}'.", 409
        )

    def optional_number(key: str) -> float | None:
        value = ci(body, key)
        return None if value in (None, "") else float(to_int(value, key))

    choices = ci(body, "DropDownConstraints") or []
    if not isinstance(choices, list):
        raise RestError("DropDownConstraints must be a list of texts.")
    max_length = optional_number("MaxLength")
    definition = FieldDefinition(
        id=call.world.next_id("field"),
        entity=category.entity,
        category=category.name,
        label=label,
        field_type=call.args[0].lower(),
        description=str(ci(body, "Description") or ""),
        ordinal=to_int(ci(body, "OrdinalPosition", 0) or 0, "OrdinalPosition"),
        max_length=int(max_length) if max_length else None,
        min_value=optional_number("MinValue"),
        max_value=optional_number("MaxValue"),
        choices=[str(c) for c in choices],
    )
    call.world.definitions.append(definition)
    logger.debug("Custom field %s/%s created", category.name, label)
    return {"CustomFieldDefinitionId": definition.id, **_definition_json(definition)}


# Custom field values, shared by accounts and service orders.


def custom_values(
    world: TigerpawWorld, entity: str, values: dict[int, str]
) -> list[dict[str, Any]]:
    """Every custom field of ``entity`` with the record's value."""
    return [
        {
            "Category": d.category,
            "CustomFieldId": d.id,
            "Label": d.label,
            "Description": d.description,
            "Value": values.get(d.id),
        }
        for d in world.fields_of(entity)
    ]


def _checked(definition: FieldDefinition, value: Any) -> str | None:
    """The value as stored, or a 400 error saying what the field takes."""
    if value is None or value == "":
        return None
    where = f"Custom field '{definition.category}/{definition.label}'"
    kind = definition.field_type
    text = str(value).strip()
    try:
        if kind == "truefalse":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower()
        if kind in ("number", "currency"):
            number = float(text)
            low, high = definition.min_value, definition.max_value
            if (low is not None and number < low) or (
                high is not None and number > high
            ):
                raise RestError(f"{where} takes values from {low} to {high}.")
            return text
        if kind == "date":
            return dt.date.fromisoformat(text[:10]).isoformat()
        if kind == "time":
            return dt.time.fromisoformat(text).isoformat()
    except ValueError as err:
        raise RestError(f"{where} takes a {kind} value, not {value!r}.") from err
    if kind == "dropdown" and text not in definition.choices:
        raise RestError(f"{where} takes one of: {', '.join(definition.choices)}.")
    if definition.max_length and len(text) > definition.max_length:
        raise RestError(f"{where} holds at most {definition.max_length} characters.")
    return text


def write_custom_values(
    world: TigerpawWorld, entity: str, values: dict[int, str], body: Any
) -> None:
    """Set custom field values from a PUT body; nothing changes if one is wrong."""
    items = ci(body, "CustomFields", body) if isinstance(body, dict) else body
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RestError("Send a list of {Category, CustomFieldId, Label, Value}.")

    changes: dict[int, str | None] = {}
    known = {d.id: d for d in world.fields_of(entity)}
    for item in items:
        field_id = ci(item, "CustomFieldId")
        if field_id not in (None, "", 0):
            definition = known.get(to_int(field_id, "CustomFieldId"))
            if definition is None:
                raise RestError(f"There is no {entity} custom field {field_id}.")
        else:
            label = str(ci(item, "Label") or "")
            found = world.find_field(entity, label, ci(item, "Category"))
            if len(found) != 1:
                raise RestError(
                    f"Name one {entity} custom field by CustomFieldId, or by Category "
                    f"and Label ('{label}' matches {len(found)})."
                )
            definition = found[0]
        changes[definition.id] = _checked(definition, ci(item, "Value"))

    for field_id, value in changes.items():
        if value is None:
            values.pop(field_id, None)
        else:
            values[field_id] = value


def custom_field_getter(world: TigerpawWorld, entity: str):
    """A search getter for ``CustomField`` criteria (CustomFieldName, CategoryName)."""

    def values_of(record: Any, criterion: dict[str, Any]) -> list[Any]:
        label = str(ci(criterion, "CustomFieldName") or "").strip()
        if not label:
            raise RestError("A CustomField search needs CustomFieldName.")
        found = world.find_field(entity, label, ci(criterion, "CategoryName"))
        if not found:
            noun = "service order" if entity == SERVICE_ORDERS else "account"
            raise RestError(f"There is no {noun} custom field '{label}'.")
        return [record.custom.get(d.id) for d in found]

    return values_of
