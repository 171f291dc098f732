"""Setting the quantity of an agreement's additional charge: read, write, confirm.

Reads go through REST, writes through tsiWS. A quantity is set, never added: the
same quantity twice writes once, and a line that appears between our read and our
write (another agent, a person) is updated instead of created a second time.
"""

from __future__ import annotations

import logging

from agent.errors import ProtocolError
from agent.tigerpaw import rest_catalog as catalog
from agent.tigerpaw.asmx import AsmxApi
from agent.tigerpaw.asmx_charges import ChargeLine, ChargesRefused
from agent.tigerpaw.models import AdditionalCharge, ChargeChange
from agent.tigerpaw.rest import RestApi
from agent.tigerpaw.wire import SYSTEM

logger = logging.getLogger(__name__)


def charge_for(
    charges: list[AdditionalCharge], item_id: str
) -> AdditionalCharge | None:
    """The line of an item (compared as Tigerpaw does, in any case), if any."""
    wanted = item_id.strip().casefold()
    return next((c for c in charges if c.item_id.casefold() == wanted), None)


def set_quantity(
    rest: RestApi,
    asmx: AsmxApi,
    agreement_number: int,
    item_id: str,
    quantity: int,
    account_number: int | None = None,
) -> ChargeChange:
    """Make the item's line on the agreement hold ``quantity``; what was done."""
    if quantity < 0:
        raise ValueError("quantity cannot be below zero")
    existing = charge_for(catalog.agreement_charges(rest, agreement_number), item_id)
    if existing is not None and existing.quantity == quantity:
        logger.debug(
            "Agreement %d already bills %d of %s", agreement_number, quantity, item_id
        )
        return ChargeChange(
            agreement_number,
            existing.item_id,
            existing.detail_id,
            quantity,
            quantity,
            "unchanged",
        )

    if existing is not None:
        before: int | None = existing.quantity
        detail_id, action = existing.detail_id, "updated"
        _update(asmx, agreement_number, detail_id, quantity)
    else:
        before, detail_id, action = _create(
            rest, asmx, agreement_number, item_id, quantity
        )
    confirmed = catalog.get_charge(rest, agreement_number, detail_id)

    if confirmed.quantity != quantity:
        raise ProtocolError(
            f"Tigerpaw shows quantity {confirmed.quantity} for {item_id} on "
            f"agreement {agreement_number} after the agent set {quantity}",
            system=SYSTEM,
        )
    if account_number is None:
        account_number = catalog.get_agreement(rest, agreement_number).account_number
    logger.debug(
        "Set the quantity of %s on agreement %d of account %d to %d (was %s)",
        confirmed.item_id,
        agreement_number,
        account_number,
        quantity,
        "none" if before is None else before,
    )
    return ChargeChange(
        agreement_number, confirmed.item_id, detail_id, before, quantity, action
    )


def delete(asmx: AsmxApi, agreement_number: int, detail_id: int) -> None:
    """Remove an additional charge line from an agreement."""
    asmx.submit_charges(agreement_number, [ChargeLine("Delete", detail_id=detail_id)])
    logger.info(
        "Deleted additional charge %d from agreement %d", detail_id, agreement_number
    )


def _update(
    asmx: AsmxApi, agreement_number: int, detail_id: int, quantity: int
) -> None:
    """Set the quantity of an existing line."""
    line = ChargeLine("Update", detail_id=detail_id, quantity=quantity)
    asmx.submit_charges(agreement_number, [line])


def _create(
    rest: RestApi, asmx: AsmxApi, agreement_number: int, item_id: str, quantity: int
) -> tuple[int | None, int, str]:
    """Create the item's line; (before, detail id, action)."""
    line = ChargeLine("Create", item_id=item_id, quantity=quantity)
    try:
        results = asmx.submit_charges(agreement_number, [line])
    except ChargesRefused as err:
        taken = next((r for r in err.lines if "already" in r.message.lower()), None)
        if taken is None or taken.detail_id is None:
            raise
        # The line appeared between our read and our write: set that one.
        before = catalog.get_charge(rest, agreement_number, taken.detail_id).quantity
        _update(asmx, agreement_number, taken.detail_id, quantity)
        return before, taken.detail_id, "updated"

    created = results[0].detail_id if results else None
    if created is None:
        raise ProtocolError(
            f"tsiWS created the {item_id} charge on agreement {agreement_number} "
            "without saying its DetailId",
            system=SYSTEM,
        )
    return None, created, "created"
