"""One tenant's part of a cycle: read the console and Tigerpaw, plan, queue.

Reading and planning may fail at any point without harm: nothing is queued until
the whole plan is known, and then every write, every newly tracked order and the
event cursor are saved in one store transaction. A crash before it leaves the
cursor where it was, so the same events are read again; a crash after it leaves the
writes in the outbox, to be sent by the next drain.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agent.errors import AgentError, RecordNotFound, SetupError
from agent.sources.records import (
    Device,
    EventPage,
    LicenseUsage,
    Office365Problem,
    SecurityEvent,
)
from agent.store import FAILED, PENDING, Store, SyncChoices, Tenant, TrackedOrder
from agent.sync import writes
from agent.sync.bootstrap import TigerpawSetup
from agent.sync.licenses import (
    LicenseCounter,
    PlannedCharge,
    UsageCounts,
    charge_targets,
    plan_charges,
)
from agent.sync.limits import ApiLimits
from agent.sync.service_orders import (
    OrderContext,
    OrderPlan,
    is_closed,
    needs_office365,
    plan_orders,
    repeats_to_check,
)
from agent.tigerpaw.client import TigerpawClient

logger = logging.getLogger(__name__)

EVENTS_STREAM = "events"
EVENT_PAGE = 200
#: At most this many pages of events per tenant and cycle; the rest waits a cycle.
MAX_EVENT_PAGES = 25


class Source(Protocol):
    """What the sync reads from a console (KSC or Business Hub)."""

    def devices(self, tenant_id: str) -> Iterable[Device]:
        """Every device of a tenant."""
        ...

    def license_usage(self, tenant_id: str) -> list[LicenseUsage]:
        """Each license of a tenant with the devices (or mailboxes) using it."""
        ...

    def events(self, tenant_id: str, cursor: str = "", limit: int = 100) -> EventPage:
        """Events after a cursor (from the first without one)."""
        ...


@runtime_checkable
class Office365Source(Protocol):
    """A console that lists Office 365 problems (Business Hub; KSC has none)."""

    def office365_problems(self, tenant_id: str) -> list[Office365Problem]:
        """The tenant's current Office 365 problems."""
        ...


@dataclass(frozen=True)
class SyncContext:
    """What every tenant of one cycle shares."""

    store: Store
    integration_id: str
    source: Source
    source_api: str
    source_label: str
    tigerpaw: TigerpawClient
    choices: SyncChoices
    setup: TigerpawSetup
    limits: ApiLimits
    clock: Callable[[], dt.datetime]
    licenses: bool
    orders: bool
    dry_run: bool
    bill_all: bool = False

    @property
    def tigerpaw_api(self) -> str:
        """The limits key of this integration's Tigerpaw."""
        return f"tigerpaw:{self.tigerpaw.api_url}"

    @property
    def rules_on(self) -> bool:
        """Whether any service order rule is on."""
        rules = [*self.choices.events.values(), *self.choices.device_statuses.values()]
        return any(rule.enabled for rule in rules)


@dataclass
class TenantOutcome:
    """What a cycle did for one tenant (and, for a dry run, would have written)."""

    tenant_id: int
    name: str
    account: str = ""
    ok: bool = True
    error: str | None = None
    skipped: str | None = None
    writes: list[writes.Write] = field(default_factory=list)
    charges: list[PlannedCharge] = field(default_factory=list)
    unmapped: list[tuple[str, str, int]] = field(default_factory=list)
    usage: UsageCounts | None = None
    waiting_approval: bool = False
    events_read: int = 0
    #: The tenant showed an error before this cycle (a skip then clears it).
    had_error: bool = False

    def fail(self, message: str) -> None:
        """Mark the tenant failed with a message for people."""
        self.ok = False
        self.error = message


def sync_tenant(context: SyncContext, tenant: Tenant) -> TenantOutcome:
    """Read, plan and (unless a dry run) queue one tenant's writes."""
    mapping = tenant.mapping
    outcome = TenantOutcome(tenant.id, tenant.name, had_error=bool(tenant.last_error))
    if mapping is None:
        outcome.skipped = "not mapped to a Tigerpaw account"
        return outcome
    outcome.account = mapping.account_name or str(mapping.account_number)
    billing = context.licenses and (mapping.billing or context.bill_all)
    # With every rule off, orders already open still close when their cause clears.
    orders = (
        context.orders
        and mapping.service_orders
        and (context.rules_on or bool(context.store.list_orders(tenant_id=tenant.id)))
    )
    if not billing and not orders:
        outcome.skipped = "nothing to do in this cycle"
        return outcome

    try:
        with context.limits.hold(context.source_api):
            devices = list(context.source.devices(tenant.source_id))

        planned: list[writes.Write] = []
        if billing:
            planned += _billing(context, tenant, devices, outcome)
        plan, cursor = None, None
        if orders and context.setup.problems:
            outcome.fail(context.setup.problems[0])
        elif orders:
            plan, cursor = _orders(context, tenant, devices, outcome)
            planned += _order_writes(context, tenant, plan)
        account_field = writes.account_field_write(tenant, context.setup)
        if context.store.get_outbox_item(account_field.key) is None:
            planned.append(account_field)
    except AgentError as err:
        # Said once per cycle in its summary, and once when the tenant keeps failing.
        outcome.fail(str(err))
        logger.debug("%s: %s", tenant.name, err)
        return outcome

    outcome.writes = planned
    if not context.dry_run:
        _commit(context, tenant, planned, plan, cursor)
    return outcome


def _billing(
    context: SyncContext, tenant: Tenant, devices: list[Device], outcome: TenantOutcome
) -> list[writes.Write]:
    """Count the tenant's licenses and plan the agreement's charges."""
    mapping = tenant.mapping
    assert mapping is not None
    if mapping.agreement_number is None and not mapping.billing:
        # A preview of a tenant that bills nothing yet: nothing to count against.
        return []
    if mapping.agreement_number is None:
        raise SetupError(
            f"Billing is on for {tenant.name} but no agreement is chosen: select "
            "the agreement on the Accounts tab",
            field="agreement",
        )

    with context.limits.hold(context.source_api):
        usages = context.source.license_usage(tenant.source_id)
    usage = LicenseCounter(context.clock()).count(
        usages, {device.id: device.kind for device in devices}
    )
    targets, outcome.unmapped = charge_targets(usage, context.choices)
    with context.limits.hold(context.tigerpaw_api):
        current = context.tigerpaw.agreement_charges(mapping.agreement_number)
    outcome.usage = usage
    outcome.charges = plan_charges(targets, current)

    if not mapping.billing_approved:
        # The first live run waits for a person to approve the preview on the page.
        outcome.waiting_approval = True
        return []
    return [
        writes.charge_write(tenant, line) for line in outcome.charges if line.changes
    ]


def _orders(
    context: SyncContext, tenant: Tenant, devices: list[Device], outcome: TenantOutcome
) -> tuple[OrderPlan, str]:
    """Read new events, learn which repeated orders a person closed, read the Office
    365 problems when an order may depend on them, and plan."""
    cursor = context.store.get_cursor(tenant.id, EVENTS_STREAM) or ""
    events: list[SecurityEvent] = []
    with context.limits.hold(context.source_api):
        for _ in range(MAX_EVENT_PAGES):
            page = context.source.events(tenant.source_id, cursor, EVENT_PAGE)
            events += page.events
            moved = page.cursor != cursor
            cursor = page.cursor or cursor
            # A short page is the end for now: asking again would cost the console
            # another read that finds nothing (newer events wait for the next cycle).
            if len(page.events) < EVENT_PAGE or not moved:
                break
    outcome.events_read = len(events)

    now = context.clock()
    tracked = context.store.list_orders(tenant_id=tenant.id)
    closed = _closed_by_people(
        context, repeats_to_check(tracked, events, context.choices, now)
    )
    tracked = [order for order in tracked if order.key not in closed]
    office365 = None
    source = context.source
    if isinstance(source, Office365Source) and needs_office365(
        tracked, events, context.choices, now
    ):
        with context.limits.hold(context.source_api):
            office365 = source.office365_problems(tenant.source_id)

    mapping = tenant.mapping
    assert mapping is not None
    order_context = OrderContext(
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        account_name=mapping.account_name,
        console=context.source_label,
    )
    plan = plan_orders(
        order_context,
        devices,
        events,
        tracked,
        context.choices,
        now,
        office365=office365,
    )
    return plan, cursor


def _closed_by_people(context: SyncContext, orders: list[TrackedOrder]) -> set[str]:
    """Keys of the orders a person closed (or deleted); they are no longer tracked,
    so the repeat opens a new order."""
    closed = set()
    for order in orders:
        assert order.order_number is not None
        try:
            with context.limits.hold(context.tigerpaw_api):
                found = context.tigerpaw.get_service_order(order.order_number)
            gone = is_closed(found, context.setup.closed_status)
        except RecordNotFound:
            gone = True
        if not gone:
            continue
        closed.add(order.key)
        if not context.dry_run:
            context.store.forget_order(order.key)
            logger.info(
                "Service order %d was closed in Tigerpaw; a new occurrence opens a "
                "new order",
                order.order_number,
            )
    return closed


def _order_writes(
    context: SyncContext, tenant: Tenant, plan: OrderPlan
) -> list[writes.Write]:
    """The outbox writes of an order plan."""
    setup = context.setup
    return (
        [writes.open_write(tenant, order, setup) for order in plan.opens]
        + [writes.note_write(tenant, note, setup) for note in plan.notes]
        + [writes.close_write(tenant, close, setup) for close in plan.closes]
    )


def _commit(
    context: SyncContext,
    tenant: Tenant,
    planned: list[writes.Write],
    plan: OrderPlan | None,
    cursor: str | None,
) -> None:
    """Queue the writes, track the orders and move the cursor, all or nothing."""
    store = context.store
    if not planned and cursor in (None, store.get_cursor(tenant.id, EVENTS_STREAM)):
        return

    with store.transaction():
        if plan is not None:
            for order in plan.opens:
                held = store.track_order(
                    tenant.id,
                    order.device_id,
                    order.kind,
                    order.key,
                    occurrences=order.occurrences,
                )
                if held.key != order.key:
                    # Another run (a sync-once beside the agent) tracked this cause
                    # first: its order stands, ours is not opened.
                    planned = [
                        w for w in planned if w.payload.get("order_key") != order.key
                    ]
            for note in plan.notes:
                store.set_occurrences(note.order_key, note.occurrences)
            for close in plan.closes:
                store.order_closing(close.order_key)
        for write in planned:
            if write.kind == writes.CHARGE and _charge_queued(context, write):
                continue
            store.enqueue(
                write.key,
                integration_id=context.integration_id,
                kind=write.kind,
                payload=write.payload,
                tenant_id=tenant.id,
            )
        if cursor is not None:
            store.set_cursor(tenant.id, EVENTS_STREAM, cursor)


def _charge_queued(context: SyncContext, write: writes.Write) -> bool:
    """Whether the same quantity is already queued for this item; an unsent older
    quantity is given up, so that a stale count never lands after a newer one."""
    prefix = writes.charge_prefix(write.payload["agreement"], write.payload["item_id"])
    waiting = [
        item
        for state in (PENDING, FAILED)
        for item in context.store.list_outbox(
            state=state, integration_id=context.integration_id, limit=10_000
        )
        if item.key.startswith(prefix)
    ]
    same = any(
        item.payload["quantity"] == write.payload["quantity"] for item in waiting
    )
    for item in waiting:
        if item.payload["quantity"] != write.payload["quantity"]:
            context.store.abandon(
                item.key,
                f"Replaced by a newer count ({write.payload['quantity']}) of the same "
                "charge",
            )
    return same
