"""Each kind of queued write, sent to Tigerpaw so that sending it twice does no harm.

- Before an order is created or a note added, the outbox row is marked "attempt
  started" (committed). A first attempt sends at once; a later one (the earlier may
  have reached Tigerpaw before a crash or a timeout) first looks the order up by its
  key (the custom field, then the Reference it was created with), or the order's
  notes for the same text, so nothing is made twice.
- A close of an order that is already closed only stops tracking it.
- A charge quantity is set, never added.

Each send marks its write done in the store (with the history entry) in the same
transaction as the tracked order's change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.errors import RecordLocked, RecordNotFound, RequestRejected
from agent.store import NewHistory, OutboxItem, Store
from agent.sync import writes
from agent.sync.bootstrap import has_field
from agent.sync.service_orders import is_closed
from agent.tigerpaw.client import TigerpawClient
from agent.tigerpaw.models import ACCOUNTS, SERVICE_ORDERS

logger = logging.getLogger(__name__)


class Deferred(Exception):
    """A write waits for another one (a note for the order it goes on)."""


class WriteSender:
    """Sends one write of any kind for one integration, and marks it done."""

    def __init__(self, store: Store, client: TigerpawClient, integration_id: str):
        """Send through ``client``; record in ``store``."""
        self.store = store
        self.client = client
        self.integration_id = integration_id
        self._handlers: dict[str, Callable[[OutboxItem], None]] = {
            writes.CHARGE: self._charge,
            writes.ORDER_OPEN: self._open,
            writes.ORDER_NOTE: self._note,
            writes.ORDER_CLOSE: self._close,
            writes.ACCOUNT_FIELD: self._account_field,
            writes.ENSURE_FIELD: self._ensure_field,
        }

    def send(self, item: OutboxItem) -> None:
        """Send the write and mark it done; a failure raises (typed errors)."""
        handler = self._handlers.get(item.kind)
        if handler is None:
            raise RequestRejected(
                f"This version of the agent cannot send a '{item.kind}' write: "
                "update the agent",
                system="Tigerpaw",
            )
        handler(item)

    def _history(
        self, item: OutboxItem, target: str, action: str, before=None, after=None
    ) -> NewHistory:
        """A history entry for a write of this integration."""
        account = item.payload.get("account")
        return NewHistory(
            integration_id=self.integration_id,
            tenant_id=item.tenant_id,
            account_number=int(account) if account is not None else None,
            target=target,
            action=action,
            before=before,
            after=after,
            outbox_key=item.key,
        )

    def _charge(self, item: OutboxItem) -> None:
        """Set an item's quantity on an agreement (created if missing)."""
        p = item.payload
        change = self.client.set_charge_quantity(
            int(p["agreement"]),
            p["item_id"],
            int(p["quantity"]),
            account_number=p["account"],
        )
        history = None
        if change.action != "unchanged":
            history = self._history(
                item,
                f"agreement {change.agreement_number} charge {change.item_id}",
                f"charge {change.action}",
                before={"quantity": change.before},
                after={"quantity": change.after},
            )
        self.store.mark_sent(item.key, change.detail_id, history=history)
        logger.info(
            "Set %s (%s) on agreement %d of %s: %s -> %d",
            p["label"],
            change.item_id,
            change.agreement_number,
            p["account_name"],
            "none" if change.before is None else change.before,
            change.after,
        )

    def _open(self, item: OutboxItem) -> None:
        """Open a service order, unless one with its key exists already."""
        p = item.payload
        key = p["order_key"]
        category, label = p["key_field"]
        tracked = self.store.find_order_by_key(key)
        if tracked is None:
            logger.info("Not opening %s: the agent no longer tracks it", p["title"])
            self.store.mark_sent(item.key)
            return

        number, keyed = tracked.order_number, False
        if number is None and self.store.start_attempt(item.key):
            number, keyed = self._find_order(key, category, label)
        created = number is None
        if number is None:
            number = self.client.create_service_order(
                int(p["account"]),
                p["title"],
                work_requested=p["body"],
                reference=key,
                status=p.get("status"),
                priority=p.get("priority"),
                order_type=p.get("order_type"),
                dispatch_board=p.get("board"),
                technician=p.get("technician"),
            )
            # Saved at once: the key field below may fail, the number must not be lost.
            self.store.order_opened(key, number)
        if not keyed:
            self.client.set_service_order_custom_fields(
                number, {(category, label): key}
            )

        with self.store.transaction():
            self.store.order_opened(key, number)
            self.store.mark_sent(
                item.key,
                number,
                history=self._history(
                    item, f"service order {number}", "created", after=p["title"]
                ),
            )
        if created:
            logger.info(
                "Created service order %d for account %s: %s",
                number,
                p["account_name"],
                p["title"],
            )
        else:
            logger.info(
                "Found service order %d for account %s by its key (sent before a "
                "restart): %s",
                number,
                p["account_name"],
                p["title"],
            )

    def _find_order(
        self, key: str, category: str, label: str
    ) -> tuple[int | None, bool]:
        """An order holding ``key``: (number, whether the key field holds it)."""
        found = self.client.find_service_orders_by_custom_field(category, label, key)
        order = next(iter(found), None)
        if order is not None:
            return order.number, True
        order = next(iter(self.client.find_service_orders_by_reference(key)), None)
        return (order.number if order else None), False

    def _tracked_number(self, item: OutboxItem) -> int | None:
        """The number of the order a note or close goes on; None if untracked."""
        tracked = self.store.find_order_by_key(item.payload["order_key"])
        if tracked is None:
            return None
        if tracked.order_number is None:
            raise Deferred("Waiting for the service order to be created first")
        return tracked.order_number

    def _add_note_once(
        self, item: OutboxItem, number: int, text: str, topic: str
    ) -> None:
        """Add a note unless an earlier attempt of the write may have added it and
        the order holds the same text."""
        if self.store.start_attempt(item.key):
            wanted = text.strip()
            notes = self.client.service_order_notes(number)
            if any(note.text.strip() == wanted for note in notes):
                return
        self.client.add_service_order_note(number, text, topic=topic or "General")

    def _note(self, item: OutboxItem) -> None:
        """Add a repeat's note to an open order."""
        p = item.payload
        number = self._tracked_number(item)
        if number is None:
            self.store.mark_sent(item.key)
            return

        try:
            self._add_note_once(item, number, p["text"], p.get("topic", ""))
        except RecordNotFound:
            self._gone(item, number)
            return
        self.store.mark_sent(
            item.key,
            number,
            history=self._history(
                item, f"service order {number}", "note added", after=p["text"]
            ),
        )
        logger.info(
            "Added a note to service order %d for account %s: %s",
            number,
            p["account_name"],
            p["title"],
        )

    def _close(self, item: OutboxItem) -> None:
        """Close a status order with its note; one closed already is only forgotten."""
        p = item.payload
        number = self._tracked_number(item)
        if number is None:
            self.store.mark_sent(item.key)
            return

        try:
            order = self.client.get_service_order(number)
        except RecordNotFound:
            self._gone(item, number)
            return
        if is_closed(order, p["status"]):
            with self.store.transaction():
                self.store.forget_order(p["order_key"])
                self.store.mark_sent(item.key, number)
            logger.info(
                "Service order %d for account %s was closed in Tigerpaw already: %s",
                number,
                p["account_name"],
                p["title"],
            )
            return
        if order.is_locked:
            who = order.locked_by_name or f"rep {order.locked_by}"
            raise RecordLocked(
                f"Service order {number} is open on {who}'s screen in Tigerpaw: the "
                "agent closes it once it is left",
                system="Tigerpaw",
            )

        self._add_note_once(item, number, p["text"], p.get("topic", ""))
        self.client.update_service_order(number, status=p["status"])
        with self.store.transaction():
            self.store.forget_order(p["order_key"])
            self.store.mark_sent(
                item.key,
                number,
                history=self._history(
                    item,
                    f"service order {number}",
                    "closed",
                    before=order.status,
                    after=p["status"],
                ),
            )
        logger.info(
            "Closed service order %d for account %s: %s",
            number,
            p["account_name"],
            p["title"],
        )

    def _gone(self, item: OutboxItem, number: int) -> None:
        """The order was deleted in Tigerpaw: stop tracking it; nothing to send."""
        with self.store.transaction():
            self.store.forget_order(item.payload["order_key"])
            self.store.mark_sent(item.key, number)
        logger.warning(
            "Service order %d for account %s no longer exists in Tigerpaw; the agent "
            "stops tracking it",
            number,
            item.payload["account_name"],
        )

    def _account_field(self, item: OutboxItem) -> None:
        """Name the mapped tenant in the account's tenant field."""
        p = item.payload
        category, label = p["field"]
        self.client.set_account_custom_fields(
            int(p["account"]), {(category, label): p["value"]}
        )
        self.store.mark_sent(
            item.key,
            p["account"],
            history=self._history(
                item, f"account {p['account']} field {label}", "set", after=p["value"]
            ),
        )
        logger.info(
            "Set %s/%s of account %s to %s",
            category,
            label,
            p["account_name"],
            p["value"],
        )

    def _ensure_field(self, item: OutboxItem) -> None:
        """Create a custom field the agent needs (found if someone made it since)."""
        p = item.payload
        entity, category, label = p["entity"], p["category"], p["label"]
        if entity == SERVICE_ORDERS:
            made = self.client.ensure_service_order_key_field(category, label)
            field_id: int | None = made.id
        else:
            field_id = self._ensure_account_field(category, label)
        self.store.mark_sent(
            item.key,
            field_id,
            history=self._history(
                item, f"{entity} custom field {category}/{label}", "created"
            ),
        )
        logger.info(
            "The %s custom field %s/%s the agent needs is in Tigerpaw",
            entity,
            category,
            label,
        )

    def _ensure_account_field(self, category: str, label: str) -> int | None:
        """The account text field ``category/label``, created if missing."""
        categories = self.client.custom_field_categories(ACCOUNTS)
        if not has_field(categories, category, label):
            if category.casefold() not in {c.name.casefold() for c in categories}:
                _tolerate_exists(
                    lambda: self.client.create_custom_field_category(ACCOUNTS, category)
                )
            _tolerate_exists(
                lambda: self.client.create_text_custom_field(
                    ACCOUNTS,
                    category,
                    label,
                    description="Kept by the integration agent; do not edit.",
                )
            )
        for found in self.client.custom_field_categories(ACCOUNTS):
            if found.name.casefold() == category.casefold():
                made = found.field(label)
                return made.id if made else None
        return None


def _tolerate_exists(create: Callable[[], object]) -> None:
    """Run a create; "it exists already" (409) is what we wanted anyway."""
    try:
        create()
    except RequestRejected as err:
        if err.status != 409:
            raise
