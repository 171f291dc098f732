"""Tigerpaw REST: accounts, recurring agreements (charges read-only) and the price book.

Agreement writes beyond the ASMX additional charges (``POST /api/agreements``,
``PUT /api/agreements/{n}``) are the sandbox's model of what the "Recurring
agreements: create/update" rights guard; the public reference lists no such calls.
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
    page,
    to_int,
)
from agent.sandbox.tigerpaw_rest_tables import (
    custom_field_getter,
    custom_values,
    write_custom_values,
)
from agent.sandbox.tigerpaw_state import (
    ACCOUNTS,
    Account,
    Agreement,
    Charge,
    ExternalProductLink,
    PriceBookItem,
    TigerpawWorld,
    iso,
)

logger = logging.getLogger(__name__)

routes = RouteTable()


# Accounts.


def account_json(world: TigerpawWorld, account: Account) -> dict[str, Any]:
    """An AccountSummary."""
    rep = world.rep(account.rep_number)
    return {
        "AccountNumber": account.number,
        "Account": {
            "Name": account.name,
            "AccountId": account.account_id,
            "Address1": account.address1,
            "City": account.city,
            "State": account.state,
            "PostalCode": account.postal_code,
            "Country": account.country,
            "AccountType": account.account_type,
            "Status": account.status,
            "RepNumber": account.rep_number,
            "PrimaryPhone": account.phone,
            "EmailAddress": account.email,
            "DateCreated": iso(account.created),
        },
        "PrimaryContactName": account.contact_name,
        "RepName": rep.name if rep else None,
    }


def _account_getters(world: TigerpawWorld) -> dict[str, Getter | None]:
    def plain(pick: Any) -> Getter:
        return lambda account, _criterion: [pick(account)]

    return {
        "accountname": plain(lambda a: a.name),
        "accountnumber": plain(lambda a: a.number),
        "accountid": plain(lambda a: a.account_id),
        "email": plain(lambda a: a.email),
        "phonenumber": plain(lambda a: a.phone),
        "accounttype": plain(lambda a: a.account_type),
        "accountstatus": plain(lambda a: a.status),
        "externalid": lambda a, _c: [k.external_id for k in a.links],
        "externalproduct": lambda a, _c: [k.product for k in a.links],
        "agreement": lambda a, _c: [g.number for g in world.agreements_of(a.number)],
        "customfield": custom_field_getter(world, ACCOUNTS),
        "city": plain(lambda a: a.city),
        "state": plain(lambda a: a.state),
        "postalcode": plain(lambda a: a.postal_code),
    }


def _account(call: Call) -> Account:
    account = call.world.account(call.number())
    if account is None:
        raise RestError(f"Account {call.args[0]} does not exist.", 404)
    return account


routes.searches(
    r"/api/accounts/search",
    "Accounts: get",
    "Accounts",
    records=lambda world: world.accounts,
    getters=_account_getters,
    to_json=account_json,
)


@routes("GET", r"/api/accounts/(\d+)", "Accounts: get")
def get_account(call: Call) -> dict[str, Any]:
    """One account."""
    return {"AccountSummary": account_json(call.world, _account(call))}


@routes("GET", r"/api/accounts/(\d+)/customfields", "Accounts: get")
def get_account_fields(call: Call) -> dict[str, Any]:
    """The custom fields of an account."""
    account = _account(call)
    return {"CustomFields": custom_values(call.world, ACCOUNTS, account.custom)}


@routes("PUT", r"/api/accounts/(\d+)/customfields", "Accounts: update")
def put_account_fields(call: Call) -> dict[str, Any]:
    """Set custom field values of an account."""
    account = _account(call)
    write_custom_values(call.world, ACCOUNTS, account.custom, call.body())
    return {"CustomFields": custom_values(call.world, ACCOUNTS, account.custom)}


def _link_json(link: ExternalProductLink) -> dict[str, Any]:
    return {
        "ExternalProductId": link.link_id,
        "ExternalProduct": link.product,
        "ExternalId": link.external_id,
        "ExternalSystemId": link.external_system_id,
        "Comment": link.comment,
    }


@routes("GET", r"/api/accounts/(\d+)/service/externalproducts", "Accounts: get")
def get_links(call: Call) -> dict[str, Any]:
    """The account's external product cross-references."""
    return {"ExternalProducts": [_link_json(k) for k in _account(call).links]}


@routes("POST", r"/api/accounts/(\d+)/service/externalproducts", "Accounts: update")
def add_link(call: Call) -> dict[str, Any]:
    """Cross-reference the account to an external product."""
    account, body = _account(call), call.body_object()
    product = str(ci(body, "ExternalProduct") or "").strip()
    external_id = str(ci(body, "ExternalId") or "").strip()
    entry = call.world.entry("externalproducts", product)
    if entry is None:
        raise RestError(
            f"There is no external product '{product}' in Master Tables > Account > "
            "External Products."
        )
    if not external_id:
        raise RestError("ExternalId is required.")
    if account.link_for(entry.value) is not None:
        raise RestError(
            f"Account {account.number} is already cross-referenced to '{entry.value}'.",
            409,
        )

    link = ExternalProductLink(
        call.world.next_id("link"),
        entry.value,
        external_id,
        str(ci(body, "ExternalSystemId") or ""),
        str(ci(body, "Comment") or ""),
    )
    account.links.append(link)
    return {"ExternalProduct": _link_json(link)}


@routes(
    "DELETE",
    r"/api/accounts/(\d+)/service/externalproducts(?:/(\d+))?",
    "Accounts: update",
)
def delete_link(call: Call) -> dict[str, Any]:
    """Remove a cross-reference, named in the path or as ``{ExternalProductId}``."""
    account = _account(call)
    wanted = call.args[1] or ci(call.body(), "ExternalProductId")
    link_id = to_int(wanted, "ExternalProductId")
    link = next((k for k in account.links if k.link_id == link_id), None)
    if link is None:
        raise RestError(
            f"Account {account.number} has no external product {link_id}.", 404
        )

    account.links.remove(link)
    return {"Message": f"External product {link_id} removed."}


# Agreements.


def charge_json(charge: Charge) -> dict[str, Any]:
    """An additional charge line."""
    return {
        "DetailId": charge.detail_id,
        "SpecialItemId": charge.item_id,
        "ItemDescription": charge.description,
        "Quantity": charge.quantity,
        "Price": charge.price,
        "PriceLevel": charge.price_level,
        "PriceLevelDescription": "Retail",
        "Source": charge.source,
        "SourceDescription": "API" if charge.source else "Tigerpaw",
        "PrintWhenQuantityZero": charge.print_when_zero,
        "DeleteAfterInvoicing": charge.delete_after_invoicing,
        "DateAdded": iso(charge.added),
        "UseFlatPrice": charge.use_flat_price,
    }


def agreement_json(world: TigerpawWorld, agreement: Agreement) -> dict[str, Any]:
    """An AgreementSummary."""
    account = world.account(agreement.account_number)
    total = agreement.base_price + sum(c.quantity * c.price for c in agreement.charges)
    return {
        "AgreementNumber": agreement.number,
        "AccountName": account.name if account else None,
        "PrimaryPhone": account.phone if account else None,
        "Agreement": {
            "AccountNumber": agreement.account_number,
            "Type": agreement.type,
            "StartDate": iso(agreement.start),
            "EndDate": iso(agreement.end),
            "AutomatedBilling": agreement.automated_billing,
            "BillingPeriod": agreement.billing_period,
            "BillingPeriodDescription": "Monthly",
            "TotalPrice": round(total, 2),
            "DateCreated": iso(agreement.created),
        },
        "AdditionalCharges": len(agreement.charges),
        "InternalComments": agreement.internal_comments,
    }


def _agreement(call: Call) -> Agreement:
    agreement = call.world.agreement(call.number())
    if agreement is None:
        raise RestError(f"Agreement {call.args[0]} does not exist.", 404)
    return agreement


def _agreement_getters(world: TigerpawWorld) -> dict[str, Getter | None]:
    def links(agreement: Agreement, _criterion: Any) -> list[str]:
        account = world.account(agreement.account_number)
        return [k.product for k in account.links] if account else []

    return {
        "agreementnumber": lambda g, _c: [g.number],
        "accountnumber": lambda g, _c: [g.account_number],
        "agreementtype": lambda g, _c: [g.type],
        "externalproduct": links,
        "startdate": lambda g, _c: [iso(g.start)],
        "enddate": lambda g, _c: [iso(g.end)],
        "contractnumber": None,
    }


@routes(
    "GET",
    r"/api/agreements/account/(\d+)(?:/(true|false))?",
    "Recurring agreements: get",
)
def account_agreements(call: Call) -> dict[str, Any]:
    """An account's agreements (``/true``: only those running now)."""
    account = _account(call)
    found = call.world.agreements_of(account.number)
    if call.flag(1):
        found = [g for g in found if g.active_at(call.now)]
    rows, meta = page(call, found)
    return {"Agreements": [agreement_json(call.world, g) for g in rows], **meta}


routes.searches(
    r"/api/agreements/search",
    "Recurring agreements: get",
    "Agreements",
    records=lambda world: world.agreements,
    getters=_agreement_getters,
    to_json=agreement_json,
)


@routes("GET", r"/api/agreements/(\d+)", "Recurring agreements: get")
def get_agreement(call: Call) -> dict[str, Any]:
    """One agreement."""
    return {"AgreementSummary": agreement_json(call.world, _agreement(call))}


@routes("GET", r"/api/agreements/(\d+)/details", "Recurring agreements: get")
def agreement_details(call: Call) -> dict[str, Any]:
    """One agreement with its additional charges."""
    agreement = _agreement(call)
    detail = agreement_json(call.world, agreement)
    detail["AdditionalChargeLines"] = [charge_json(c) for c in agreement.charges]
    return {"AgreementDetail": detail}


@routes("GET", r"/api/agreements/(\d+)/additionalcharges", "Recurring agreements: get")
def get_charges(call: Call) -> dict[str, Any]:
    """The additional charges of an agreement."""
    agreement = _agreement(call)
    return {"AdditionalCharges": [charge_json(c) for c in agreement.charges]}


@routes(
    "GET", r"/api/agreements/(\d+)/additionalcharges/(\d+)", "Recurring agreements: get"
)
def get_charge(call: Call) -> dict[str, Any]:
    """One additional charge."""
    agreement = _agreement(call)
    charge = agreement.charge(call.number(1))
    if charge is None:
        raise RestError(
            f"Agreement {agreement.number} has no additional charge {call.args[1]}.",
            404,
        )
    return {"AdditionalCharge": charge_json(charge)}


def _date(value: Any, what: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError as err:
        raise RestError(f"{what} must be an ISO 8601 date, not {value!r}.") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@routes("POST", r"/api/agreements", "Recurring agreements: create")
def create_agreement(call: Call) -> dict[str, Any]:
    """Create a recurring agreement (sandbox model)."""
    body = call.body_object()
    number = to_int(ci(body, "AccountNumber"), "AccountNumber")
    if call.world.account(number) is None:
        raise RestError(f"Account {number} does not exist.")
    kind = str(ci(body, "Type") or "").strip()
    if not kind:
        raise RestError("Type is required.")

    start = _date(ci(body, "StartDate"), "StartDate") or call.now
    agreement = Agreement(
        number=5000 + call.world.next_id("agreement"),
        account_number=number,
        type=kind,
        start=start,
        created=call.now,
        base_price=float(ci(body, "TotalPrice") or 0),
        end=_date(ci(body, "EndDate"), "EndDate"),
    )
    call.world.agreements.append(agreement)
    return {"AgreementSummary": agreement_json(call.world, agreement)}


@routes("PUT", r"/api/agreements/(\d+)", "Recurring agreements: update")
def update_agreement(call: Call) -> dict[str, Any]:
    """Change an agreement's type, end date or comments (sandbox model)."""
    agreement, body = _agreement(call), call.body_object()
    if ci(body, "Type") is not None:
        agreement.type = str(ci(body, "Type")).strip() or agreement.type
    if ci(body, "EndDate") is not None:
        agreement.end = _date(ci(body, "EndDate"), "EndDate")
    if ci(body, "InternalComments") is not None:
        agreement.internal_comments = str(ci(body, "InternalComments"))
    return {"AgreementSummary": agreement_json(call.world, agreement)}


# Price book.


def item_json(item: PriceBookItem) -> dict[str, Any]:
    """A PriceBookItemSummary."""
    return {
        "ItemId": item.item_id,
        "PriceBookItemNumber": item.number,
        "Item": {
            "PartNumber": item.item_id,
            "ItemDescription": item.description,
            "Type": item.type,
            "Category": item.category,
            "Manufacturer": item.manufacturer,
            "Price": item.price,
            "Cost": round(item.cost, 2),
            "Status": "Inactive" if item.inactive else "Active",
            "Inactive": item.inactive,
        },
    }


ITEM_GETTERS: dict[str, Getter | None] = {
    "itemid": lambda i, _c: [i.item_id],
    "itemdescription": lambda i, _c: [i.description],
    "itemtype": lambda i, _c: [i.type],
    "category": lambda i, _c: [i.category],
    "manufacturer": lambda i, _c: [i.manufacturer],
    "pricebookitemnumber": lambda i, _c: [i.number],
    "customfield": None,
}


@routes("GET", r"/api/pricebook/items/(\d+)", "Price book items: get")
def get_item(call: Call) -> dict[str, Any]:
    """One price book item."""
    item = call.world.item_by_number(call.number())
    if item is None:
        raise RestError(f"Price book item {call.args[0]} does not exist.", 404)
    return {"PriceBookItemSummary": item_json(item)}


routes.searches(
    r"/api/pricebook/items/search",
    "Price book items: get",
    "PriceBookItems",
    records=lambda world: world.items,
    getters=lambda _world: ITEM_GETTERS,
    to_json=lambda _world, item: item_json(item),
)
