"""The Params and Result XML of tsiWS ``SubmitAgreementAdditionalCharges``.

Public material does not give this schema; the shape here is the sandbox's model
(agent/sandbox/README.md, "Tigerpaw"): ``<AdditionalCharges>`` with the agreement
number and ``<Charge>`` lines (Action, DetailId, ItemId, Quantity), answered by
``<AdditionalChargesResult>`` with Success, Message and a status per line. Only this
module knows it, so a real server's schema changes one file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lxml import etree

from agent.errors import ProtocolError, RequestRejected
from agent.tigerpaw.wire import SYSTEM

logger = logging.getLogger(__name__)

ACTIONS = ("Create", "Update", "Delete")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class ChargeLine:
    """One line to send: create an item's charge, or update or delete a DetailId."""

    action: str
    detail_id: int | None = None
    item_id: str | None = None
    quantity: int | None = None

    def __post_init__(self) -> None:
        """Refuse lines the service cannot take, before anything is sent."""
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}")
        if self.action == "Create" and (not self.item_id or self.quantity is None):
            raise ValueError("Create needs item_id and quantity")
        if self.action != "Create" and self.detail_id is None:
            raise ValueError(f"{self.action} needs detail_id")
        if self.quantity is not None and self.quantity < 0:
            raise ValueError("quantity cannot be below zero")


@dataclass(frozen=True)
class ChargeLineResult:
    """What the service did with one line: Created, Updated, Deleted or Error."""

    index: int
    action: str
    status: str
    detail_id: int | None
    item_id: str | None
    quantity: int | None
    message: str


def params_xml(agreement_number: int, lines: list[ChargeLine]) -> str:
    """The Params string for the lines."""
    root = etree.Element("AdditionalCharges")
    etree.SubElement(root, "AgreementNumber").text = str(int(agreement_number))
    for line in lines:
        element = etree.SubElement(root, "Charge")
        etree.SubElement(element, "Action").text = line.action
        if line.detail_id is not None:
            etree.SubElement(element, "DetailId").text = str(int(line.detail_id))
        if line.item_id:
            etree.SubElement(element, "ItemId").text = line.item_id
        if line.quantity is not None:
            etree.SubElement(element, "Quantity").text = str(int(line.quantity))
    return etree.tostring(root, encoding="unicode")


def _whole(text: str | None) -> int | None:
    """A whole number from XML text, or None."""
    try:
        return None if not text else int(text.strip())
    except ValueError:
        return None


def read_result(agreement_number: int, text: str) -> list[ChargeLineResult]:
    """The lines of a Result string; RequestRejected when nothing was applied."""
    try:
        root = etree.fromstring(text.strip().encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as err:
        raise ProtocolError(
            "tsiWS answered SubmitAgreementAdditionalCharges with a result the agent "
            "cannot read; this Tigerpaw version may use another format",
            system=SYSTEM,
        ) from err

    lines = [
        ChargeLineResult(
            index=_whole(item.findtext("Index")) or position,
            action=(item.findtext("Action") or "").strip(),
            status=(item.findtext("Status") or "").strip(),
            detail_id=_whole(item.findtext("DetailId")),
            item_id=(item.findtext("ItemId") or "").strip() or None,
            quantity=_whole(item.findtext("Quantity")),
            message=(item.findtext("Message") or "").strip(),
        )
        for position, item in enumerate(root.findall("Charge"), start=1)
    ]
    success = (root.findtext("Success") or "").strip().lower() == "true"
    if success:
        return lines

    wrong = "; ".join(
        f"line {line.index}: {line.message}" for line in lines if line.message
    )
    message = (root.findtext("Message") or "").strip()
    raise ChargesRefused(
        f"Tigerpaw changed no additional charge of agreement {agreement_number}: "
        f"{wrong or message or 'the request was refused'}",
        system=SYSTEM,
        field="agreement",
        lines=lines,
    )


class ChargesRefused(RequestRejected):
    """The service applied none of the lines; ``lines`` says what was wrong."""

    def __init__(self, message: str, *, lines: list[ChargeLineResult], **kwargs):
        super().__init__(message, **kwargs)
        self.lines = lines
