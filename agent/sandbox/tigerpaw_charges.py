"""The Params and Result XML of tsiWS ``SubmitAgreementAdditionalCharges``.

The real schema is not public; this is the sandbox's model (README, "Tigerpaw")::

    <AdditionalCharges>
      <AgreementNumber>5001</AgreementNumber>
      <Charge>                       one or more
        <Action>Create</Action>      Create | Update | Delete; default Update when
                                     DetailId is given, else Create
        <DetailId>12</DetailId>      the line to update or delete
        <ItemId>KL-KESB-WS</ItemId>  price book item id; needed to create
        <Quantity>25</Quantity>      set, never added; needed to create
        <Description>..</Description> optional, default the item's description
        <Price>4.50</Price>          optional, default the item's price
      </Charge>
    </AdditionalCharges>

A request either applies every line or none: the Result says per line what happened
(Created, Updated, Deleted) or what is wrong (Error), with the DetailId. An agreement
holds at most one line per price book item, so creating a second is an error naming
the existing DetailId. XML that breaks the model is a :class:`ChargesFault`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from lxml import etree

from agent.sandbox.tigerpaw_state import Charge, SoapUser, TigerpawWorld

logger = logging.getLogger(__name__)

ACTIONS = ("Create", "Update", "Delete")
CHILDREN = ("Action", "DetailId", "ItemId", "Quantity", "Description", "Price")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class ChargesFault(Exception):
    """The request cannot be taken at all; the service answers with a SOAP fault."""


@dataclass
class ChargeLine:
    """One ``<Charge>`` of the Params, checked for form."""

    index: int
    action: str
    detail_id: int | None
    item_id: str | None
    quantity: int | None
    description: str | None
    price: float | None
    status: str = ""
    message: str = ""


def _text(parent: etree._Element, name: str) -> str | None:
    found = parent.find(name)
    if found is None:
        return None
    return (found.text or "").strip()


def _whole(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as err:
        raise ChargesFault(f"{what} '{value}' is not a whole number.") from err


def _line(index: int, element: etree._Element) -> ChargeLine:
    where = f"Params: Charge {index}"
    for child in element:
        if not isinstance(child.tag, str) or child.tag not in CHILDREN:
            raise ChargesFault(
                f"{where} has an unknown element <{child.tag}>; "
                f"use {', '.join(CHILDREN)}."
            )
    detail_id = _whole(_text(element, "DetailId"), f"{where}: DetailId")
    action_text = _text(element, "Action") or ("Update" if detail_id else "Create")
    action = next((a for a in ACTIONS if a.lower() == action_text.lower()), None)
    if action is None:
        raise ChargesFault(
            f"{where}: Action '{action_text}' is not Create, Update or Delete."
        )
    quantity = _whole(_text(element, "Quantity"), f"{where}: Quantity")
    if quantity is not None and quantity < 0:
        raise ChargesFault(f"{where}: Quantity {quantity} is below zero.")
    price_text = _text(element, "Price")
    try:
        price = None if price_text in (None, "") else float(price_text)
    except ValueError as err:
        raise ChargesFault(f"{where}: Price '{price_text}' is not a number.") from err
    description = _text(element, "Description")
    if description is not None and len(description) > 255:
        raise ChargesFault(f"{where}: Description holds at most 255 characters.")

    line = ChargeLine(
        index,
        action,
        detail_id,
        _text(element, "ItemId") or None,
        quantity,
        description or None,
        price,
    )
    if action == "Create" and (line.item_id is None or quantity is None):
        raise ChargesFault(f"{where}: Create needs ItemId and Quantity.")
    if action == "Create" and detail_id is not None:
        raise ChargesFault(f"{where}: Create takes no DetailId (Tigerpaw assigns it).")
    if action != "Create" and detail_id is None:
        raise ChargesFault(f"{where}: {action} needs the DetailId of the line.")
    return line


def parse_params(text: str | None) -> tuple[int, list[ChargeLine]]:
    """The agreement number and the charge lines of a Params string."""
    text = (text or "").strip()
    if not text:
        raise ChargesFault("Params is empty: send the additional charges as XML.")
    try:
        root = etree.fromstring(text.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as err:
        raise ChargesFault(f"Params is not well-formed XML: {err}") from err
    if root.tag != "AdditionalCharges":
        raise ChargesFault(
            f"Params must have the root element <AdditionalCharges>, not <{root.tag}>."
        )
    number = _whole(_text(root, "AgreementNumber"), "Params: AgreementNumber")
    if number is None:
        raise ChargesFault("Params has no <AgreementNumber>.")
    lines = [_line(i, e) for i, e in enumerate(root.findall("Charge"), start=1)]
    if not lines:
        raise ChargesFault("Params holds no <Charge> element.")
    ids = [line.detail_id for line in lines if line.detail_id is not None]
    if len(ids) != len(set(ids)):
        raise ChargesFault("Params names the same DetailId in more than one Charge.")
    return number, lines


def _check_lines(world: TigerpawWorld, agreement_number: int, lines: list[ChargeLine]):
    agreement = world.agreement(agreement_number)
    assert agreement is not None
    creating: dict[str, int] = {}
    for line in lines:
        charge = agreement.charge(line.detail_id) if line.detail_id else None
        if line.action == "Create":
            item = world.item(line.item_id or "")
            existing = next(
                (c for c in agreement.charges if item and c.item_id == item.item_id),
                None,
            )
            if item is None:
                line.message = f"Price book item '{line.item_id}' does not exist."
            elif item.inactive:
                line.message = f"Price book item '{item.item_id}' is inactive."
            elif existing is not None:
                line.message = (
                    f"Agreement {agreement.number} already has an additional charge "
                    f"for '{item.item_id}' (DetailId {existing.detail_id}); update "
                    "that line by its DetailId."
                )
                line.detail_id = existing.detail_id
            elif item.item_id in creating:
                line.message = f"Charge {creating[item.item_id]} creates it already."
            else:
                creating[item.item_id] = line.index
                line.item_id = item.item_id
        elif charge is None:
            line.message = (
                f"Agreement {agreement.number} has no additional charge with "
                f"DetailId {line.detail_id}."
            )
        elif line.item_id and world.item(line.item_id) is not world.item(
            charge.item_id
        ):
            line.message = (
                f"DetailId {charge.detail_id} is for '{charge.item_id}', "
                f"not '{line.item_id}'."
            )
        if line.message:
            line.status = "Error"


def _apply(world: TigerpawWorld, agreement_number: int, lines, now: dt.datetime):
    agreement = world.agreement(agreement_number)
    assert agreement is not None
    for line in lines:
        if line.action == "Create":
            item = world.item(line.item_id or "")
            assert item is not None and line.quantity is not None
            created = Charge(
                world.next_id("detail"),
                item.item_id,
                line.description or item.description,
                line.quantity,
                item.price if line.price is None else line.price,
                now,
                source=1,
            )
            agreement.charges.append(created)
            line.detail_id, line.status = created.detail_id, "Created"
            continue
        charge = agreement.charge(line.detail_id or 0)
        assert charge is not None
        line.item_id = charge.item_id
        if line.action == "Delete":
            agreement.charges.remove(charge)
            line.status = "Deleted"
            continue
        if line.quantity is not None:
            charge.quantity = line.quantity
        if line.description is not None:
            charge.description = line.description
        if line.price is not None:
            charge.price = line.price
        line.quantity, line.status = charge.quantity, "Updated"


def submit(
    world: TigerpawWorld, user: SoapUser, params: str | None, now: dt.datetime
) -> str:
    """Apply a Params string for ``user``; the Result XML as a string."""
    number, lines = parse_params(params)
    agreement = world.agreement(number)
    if agreement is None:
        raise ChargesFault(f"Agreement {number} does not exist.")
    if not agreement.active_at(now):
        ended = agreement.end.date().isoformat() if agreement.end else "?"
        raise ChargesFault(
            f"Agreement {number} ended on {ended}; put additional charges on a "
            "running agreement."
        )
    account = world.account(agreement.account_number)
    assert account is not None
    if account.link_for(user.external_product) is None:
        raise ChargesFault(
            f"Account {account.number} ({account.name}) is not cross-referenced to "
            f"the external product '{user.external_product}' of tsiWS user "
            f"'{user.name}'. In Tigerpaw, open the account and assign that external "
            "product to it (Assign External Products to an Account)."
        )

    _check_lines(world, number, lines)
    errors = sum(1 for line in lines if line.status == "Error")
    if errors:
        message = f"No charge was changed: {errors} of {len(lines)} lines are wrong."
    else:
        _apply(world, number, lines, now)
        message = f"{len(lines)} additional charge lines processed."
        logger.debug("Agreement %d: %s", number, message)
    return result_xml(number, lines, not errors, message)


def result_xml(
    number: int, lines: list[ChargeLine], success: bool, message: str
) -> str:
    """The Result string."""
    root = etree.Element("AdditionalChargesResult")
    etree.SubElement(root, "Success").text = "true" if success else "false"
    etree.SubElement(root, "Message").text = message
    etree.SubElement(root, "AgreementNumber").text = str(number)
    for line in lines:
        element = etree.SubElement(root, "Charge")
        status = line.status or "NotProcessed"
        for name, value in (
            ("Index", line.index),
            ("Action", line.action),
            ("Status", status),
            ("DetailId", line.detail_id),
            ("ItemId", line.item_id),
            ("Quantity", line.quantity),
            ("Message", line.message),
        ):
            etree.SubElement(element, name).text = "" if value is None else str(value)
    return etree.tostring(root, encoding="unicode")
