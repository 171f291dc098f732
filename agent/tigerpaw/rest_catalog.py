"""Tigerpaw REST around accounts: agreements, charges, price book, tables, fields.

Additional charges are read here; they are written through tsiWS (asmx.py). The
calls every kind of record shares are made by :mod:`agent.tigerpaw.rest_records`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from agent.errors import RequestRejected
from agent.tigerpaw import rest_parse as parse
from agent.tigerpaw.models import (
    Account,
    AdditionalCharge,
    Agreement,
    Criterion,
    CustomFieldCategory,
    CustomFieldDefinition,
    CustomFieldValue,
    MasterTableEntry,
    PriceBookItem,
    Rep,
)
from agent.tigerpaw.rest import RestApi, rows_of
from agent.tigerpaw.rest_records import FieldKey, RecordKind

logger = logging.getLogger(__name__)

ACCOUNTS_GET = "Accounts: get"
ACCOUNTS_UPDATE = "Accounts: update"
AGREEMENTS_GET = "Recurring agreements: get"
PRICE_BOOK_GET = "Price book items: get"
TABLES_GET = "Master tables: get"
FIELDS_GET = "Custom folders and fields: get"
FIELDS_CREATE = "Custom folders and fields: create"
ENTITIES = ("accounts", "serviceorders")

ACCOUNT = RecordKind("/api/accounts", "Account", ACCOUNTS_GET, ACCOUNTS_UPDATE)
AGREEMENT = RecordKind("/api/agreements", "Agreement", AGREEMENTS_GET)
PRICE_BOOK_ITEM = RecordKind("/api/pricebook/items", "Price book item", PRICE_BOOK_GET)


def _entity(entity: str) -> str:
    """The entity path segment, checked."""
    if entity not in ENTITIES:
        raise ValueError(f"entity must be one of {ENTITIES}, not {entity!r}")
    return entity


# Accounts.


def search_accounts(api: RestApi, criteria: Sequence[Criterion]) -> Iterator[Account]:
    """Accounts meeting the criteria (all of them for none), page by page."""
    return (parse.account(row) for row in ACCOUNT.search(api, criteria, "Accounts"))


def get_account(api: RestApi, number: int) -> Account:
    """One account; RecordNotFound when there is none."""
    return parse.account(ACCOUNT.read(api, number, "AccountSummary"))


def account_custom_fields(api: RestApi, number: int) -> list[CustomFieldValue]:
    """The custom fields of an account, with their values."""
    return ACCOUNT.custom_fields(api, number)


def set_account_custom_fields(
    api: RestApi, number: int, values: Mapping[FieldKey, str | None]
) -> list[CustomFieldValue]:
    """Set custom field values of an account (None empties one); all or none."""
    return ACCOUNT.set_custom_fields(api, number, values)


# Agreements and their additional charges.


def account_agreements(
    api: RestApi, account_number: int, *, active_only: bool = False
) -> Iterator[Agreement]:
    """The recurring agreements of an account (only running ones if asked)."""
    suffix = "/true" if active_only else ""
    rows = api.pages(
        "GET",
        f"/api/agreements/account/{int(account_number)}{suffix}",
        "Agreements",
        right=AGREEMENTS_GET,
    )
    return (parse.agreement(row) for row in rows)


def get_agreement(api: RestApi, number: int) -> Agreement:
    """One recurring agreement."""
    return parse.agreement(AGREEMENT.read(api, number, "AgreementSummary"))


def agreement_charges(api: RestApi, number: int) -> list[AdditionalCharge]:
    """The additional charges of an agreement."""
    rows = AGREEMENT.rows(api, number, "/additionalcharges", "AdditionalCharges")
    return [parse.charge(row) for row in rows]


def get_charge(api: RestApi, number: int, detail_id: int) -> AdditionalCharge:
    """One additional charge of an agreement."""
    payload = api.call(
        "GET",
        AGREEMENT.url(number, f"/additionalcharges/{int(detail_id)}"),
        right=AGREEMENTS_GET,
        record=f"Additional charge {detail_id} of agreement {number}",
    )
    return parse.charge(parse.get(payload, "AdditionalCharge") or payload)


# Price book.


def search_price_book(
    api: RestApi, criteria: Sequence[Criterion]
) -> Iterator[PriceBookItem]:
    """Price book items meeting the criteria (all of them for none)."""
    rows = PRICE_BOOK_ITEM.search(api, criteria, "PriceBookItems")
    return (parse.price_book_item(row) for row in rows)


def get_price_book_item(api: RestApi, number: int) -> PriceBookItem:
    """One price book item by its number."""
    found = PRICE_BOOK_ITEM.read(api, number, "PriceBookItemSummary")
    return parse.price_book_item(found)


# Master tables.

#: name -> (path, list key, value key) of the master tables the agent reads.
TABLES = {
    "priorities": ("/api/mastertables/priorities", "Priorities", "Priority"),
    "statuses": ("/api/mastertables/serviceorders/statuses", "Statuses", "Status"),
    "types": ("/api/mastertables/serviceOrders/types", "Types", "Type"),
    "dispatch_boards": ("/api/mastertables/dispatchboards", "Entries", "Value"),
    "severities": ("/api/mastertables/severities", "Entries", "Value"),
    "note_topics": ("/api/mastertables/serviceOrder/noteTopics", "Entries", "Value"),
    "external_products": ("/api/mastertables/externalproducts", "Entries", "Value"),
}


def master_table(api: RestApi, name: str) -> list[MasterTableEntry]:
    """The rows of one master table of :data:`TABLES`."""
    path, key, value_key = TABLES[name]
    payload = api.call("GET", path, right=TABLES_GET)
    return [parse.entry(row, value_key) for row in rows_of(payload, key)]


def reps(api: RestApi, *, active_only: bool = True) -> list[Rep]:
    """The account reps."""
    suffix = "/true" if active_only else ""
    payload = api.call("GET", f"/api/mastertables/reps{suffix}", right=TABLES_GET)
    return [parse.rep(row) for row in rows_of(payload, "Reps")]


# Custom field categories and definitions.


def custom_field_categories(api: RestApi, entity: str) -> list[CustomFieldCategory]:
    """The custom field categories of accounts or service orders, with fields."""
    payload = api.call(
        "GET",
        f"/api/mastertables/customfields/{_entity(entity)}",
        right=FIELDS_GET,
    )
    return [parse.category(row) for row in rows_of(payload, "Categories")]


def create_category(api: RestApi, entity: str, name: str) -> None:
    """Create a custom field category (RequestRejected 409 if it exists)."""
    api.call(
        "POST",
        f"/api/mastertables/customfields/categories/{_entity(entity)}",
        body={"CategoryName": name, "AvailableInGui": True},
        right=FIELDS_CREATE,
        retry=False,
    )
    logger.debug("Created the %s custom field category '%s'", entity, name)


def create_text_field(
    api: RestApi,
    entity: str,
    category: str,
    label: str,
    *,
    max_length: int = 100,
    description: str = "",
) -> CustomFieldDefinition:
    """Create a text custom field in a category (RequestRejected 409 if it exists)."""
    payload = api.call(
        "POST",
        "/api/mastertables/customfields/definitions/text",
        body={
            "CategoryName": category,
            "CategoryType": _entity(entity),
            "CustomFieldLabel": label,
            "Description": description,
            "MaxLength": int(max_length),
        },
        right=FIELDS_CREATE,
        retry=False,
    )
    logger.debug("Created the %s custom field '%s/%s'", entity, category, label)
    return parse.definition(payload, category)


def ensure_text_field(
    api: RestApi,
    entity: str,
    category: str,
    label: str,
    *,
    max_length: int = 100,
    description: str = "",
) -> CustomFieldDefinition:
    """The text field ``category/label``, created (with its category) if missing."""
    categories = custom_field_categories(api, entity)
    existing = _find_field(categories, category, label)
    if existing is not None:
        return existing

    if category.casefold() not in {c.name.casefold() for c in categories}:
        _tolerate_duplicate(lambda: create_category(api, entity, category))
    try:
        made = create_text_field(
            api,
            entity,
            category,
            label,
            max_length=max_length,
            description=description,
        )
    except RequestRejected as err:
        # Another agent (or a person) made it between our look and our create.
        found = _find_field(custom_field_categories(api, entity), category, label)
        if err.status != 409 or found is None:
            raise
        return found
    logger.debug("Created the %s custom field %s/%s", entity, category, label)
    return made


def _find_field(
    categories: Iterable[CustomFieldCategory], category: str, label: str
) -> CustomFieldDefinition | None:
    """The field ``category/label`` among the categories, if there."""
    wanted = category.casefold()
    for found in categories:
        if found.name.casefold() == wanted:
            return found.field(label)
    return None


def _tolerate_duplicate(create: Any) -> None:
    """Run a create; a 409 (it exists already) is fine."""
    try:
        create()
    except RequestRejected as err:
        if err.status != 409:
            raise
