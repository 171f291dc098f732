"""The writes the sync queues in the outbox: their kinds, keys, payloads and words.

A payload holds everything its write needs (numbers, texts, the field to keep the
key in), so the outbox can send it after a restart without planning again. Keys are
chosen so that planning the same thing twice queues it once: an order's key is made
when it is first planned and kept with the tracked order; a note is keyed by the last
event it reports; a close by its order.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from agent.store.records import Tenant
from agent.sync.bootstrap import TigerpawSetup
from agent.sync.licenses import PlannedCharge
from agent.sync.service_orders import NewOrder, OrderClose, OrderNote

logger = logging.getLogger(__name__)

CHARGE = "charge"
ORDER_OPEN = "order.open"
ORDER_NOTE = "order.note"
ORDER_CLOSE = "order.close"
ACCOUNT_FIELD = "account.field"
ENSURE_FIELD = "field.ensure"
KINDS = (CHARGE, ORDER_OPEN, ORDER_NOTE, ORDER_CLOSE, ACCOUNT_FIELD, ENSURE_FIELD)


@dataclass(frozen=True)
class Write:
    """A write to queue: its key, kind and payload."""

    key: str
    kind: str
    payload: dict[str, Any]

    def describe(self) -> str:
        """The write in words (for the log, a dry run and the page)."""
        return describe(self.kind, self.payload)


def _account(tenant: Tenant) -> tuple[int, str]:
    """The tenant's account number and name (the tenant must be mapped)."""
    mapping = tenant.mapping
    assert mapping is not None
    return mapping.account_number, mapping.account_name or str(mapping.account_number)


def charge_write(tenant: Tenant, line: PlannedCharge) -> Write:
    """Set the quantity of an item's charge on the tenant's agreement."""
    mapping = tenant.mapping
    assert mapping is not None and mapping.agreement_number is not None
    account, name = _account(tenant)
    agreement = mapping.agreement_number
    return Write(
        key=f"{charge_prefix(agreement, line.item_id)}{uuid.uuid4().hex[:12]}",
        kind=CHARGE,
        payload={
            "agreement": agreement,
            "item_id": line.item_id,
            "quantity": line.after,
            "before": line.before,
            "label": line.label,
            "account": account,
            "account_name": name,
        },
    )


def charge_prefix(agreement: int, item_id: str) -> str:
    """What the keys of every charge write to one agreement's item start with."""
    return f"charge:{agreement}:{item_id.strip().casefold()}:"


def open_write(tenant: Tenant, order: NewOrder, setup: TigerpawSetup) -> Write:
    """Open a service order on the tenant's account."""
    account, name = _account(tenant)
    return Write(
        key=f"order:{order.key}:open",
        kind=ORDER_OPEN,
        payload={
            "order_key": order.key,
            "account": account,
            "account_name": name,
            "title": order.title,
            "body": order.body,
            "status": setup.new_status,
            "priority": order.rule.priority or None,
            "order_type": order.rule.order_type or None,
            "board": setup.board_number(order.rule.board),
            "technician": setup.technician,
            "key_field": list(setup.key_field),
        },
    )


def _note_payload(
    tenant: Tenant, change: OrderNote | OrderClose, setup: TigerpawSetup
) -> dict[str, Any]:
    """What a note on a tracked order needs: the order, the text and its topic."""
    _, name = _account(tenant)
    return {
        "order_key": change.order_key,
        "text": change.text,
        "topic": setup.note_topic,
        "title": change.title,
        "account_name": name,
    }


def note_write(tenant: Tenant, note: OrderNote, setup: TigerpawSetup) -> Write:
    """Add a note (a repeat) to an open order."""
    return Write(
        key=f"order:{note.note_key}:note",
        kind=ORDER_NOTE,
        payload=_note_payload(tenant, note, setup),
    )


def close_write(tenant: Tenant, close: OrderClose, setup: TigerpawSetup) -> Write:
    """Close a status order with a note."""
    return Write(
        key=f"order:{close.order_key}:close",
        kind=ORDER_CLOSE,
        payload={
            **_note_payload(tenant, close, setup),
            "status": setup.closed_status,
        },
    )


def account_field_write(tenant: Tenant, setup: TigerpawSetup) -> Write:
    """Name the tenant in its account's tenant field (once per account and value)."""
    account, name = _account(tenant)
    value = f"{tenant.source}:{tenant.source_id}"
    return Write(
        key=f"account-field:{account}:{value}",
        kind=ACCOUNT_FIELD,
        payload={
            "account": account,
            "account_name": name,
            "field": list(setup.tenant_field),
            "value": value,
        },
    )


def ensure_field_write(entity: str, category: str, label: str) -> Write:
    """Create a custom field the agent needs (the key is new each time: the field
    is looked up first, so it is only queued while missing)."""
    return Write(
        key=f"field:{entity}:{category}/{label}:{uuid.uuid4().hex[:12]}",
        kind=ENSURE_FIELD,
        payload={"entity": entity, "category": category, "label": label},
    )


def lane(kind: str, payload: dict[str, Any]) -> str:
    """The lane of a write: writes of one lane are sent one after another, in the
    order they were queued (an order's open before its notes and close; the charges
    of one agreement; the fields of one account), while lanes go in parallel."""
    if "order_key" in payload:
        return f"order:{payload['order_key']}"
    if kind == CHARGE:
        return f"agreement:{payload['agreement']}"
    if kind == ACCOUNT_FIELD:
        return f"account:{payload['account']}"
    if kind == ENSURE_FIELD:
        return f"field:{payload['entity']}"
    # A kind this version does not know: one at a time, to be safe.
    return f"kind:{kind}"


def describe(kind: str, payload: dict[str, Any]) -> str:
    """A write in words, as the log and a dry run show it."""
    name = payload.get("account_name", "")
    if kind == CHARGE:
        before = payload.get("before")
        return (
            f"Set {payload['label']} ({payload['item_id']}) on agreement "
            f"{payload['agreement']} of {name}: "
            f"{'none' if before is None else before} -> {payload['quantity']}"
        )
    if kind == ORDER_OPEN:
        return f"Create a service order for account {name}: {payload['title']}"
    if kind == ORDER_NOTE:
        return f"Add a note to the service order of {name}: {payload['title']}"
    if kind == ORDER_CLOSE:
        return f"Close the service order of {name}: {payload['title']}"
    if kind == ACCOUNT_FIELD:
        category, label = payload["field"]
        return f"Set {category}/{label} of account {name} to {payload['value']}"
    if kind == ENSURE_FIELD:
        return (
            f"Create the {payload['entity']} custom field "
            f"{payload['category']}/{payload['label']}"
        )
    return f"{kind} {payload}"
