"""What an integration needs in Tigerpaw, found or created before each cycle.

Idempotent: the custom fields (the key field on service orders, the tenant field on
accounts) are looked up first and created, through the outbox, only when missing; the
rep, statuses, priorities, types and boards the choices name are looked up and a
missing one is reported as a setup problem (Tigerpaw's API offers no way to create
statuses or types; people pick them from the lists the page shows).

What a cycle found is kept per integration (:class:`SetupCache`) and used by the
next cycles instead of reading the same master tables again, until the
integration's settings or choices change, someone presses Sync now, a write is
refused (a field or an entry may have gone), or an hour has passed. A setup with a
problem or a missing field is never kept: it is looked at again every cycle, so a
fix made in Tigerpaw is seen at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.store.choices import SEVERITY_LABELS, OrderRule, SyncChoices
from agent.sync.order_texts import status_rule_name
from agent.tigerpaw.client import TigerpawClient
from agent.tigerpaw.models import (
    ACCOUNTS,
    SERVICE_ORDERS,
    CustomFieldCategory,
    MasterTableEntry,
    Rep,
)

logger = logging.getLogger(__name__)

#: The custom field category (folder) the agent keeps its fields in.
FIELD_CATEGORY = "Kaspersky Integration"
#: The service order field that holds each order's key.
KEY_FIELD_LABEL = "Kaspersky Key"
#: The account field that names the mapped virtual server or company.
TENANT_FIELD_LABEL = "Kaspersky Tenant"
#: The note topic the agent prefers for its notes, if Tigerpaw has it.
NOTE_TOPIC = "General"
#: Seconds a setup found in Tigerpaw is used again at most (a safety net for
#: entries renamed there without any write being refused).
SETUP_MAX_AGE = 3600.0


@dataclass(frozen=True)
class TigerpawSetup:
    """What the agent found in Tigerpaw: its fields and the entries its orders use.

    ``problems`` lists what stops service orders (a rep or status that is not
    there); billing goes on regardless. ``missing_fields`` lists fields a dry run
    would create.
    """

    key_field: tuple[str, str] = (FIELD_CATEGORY, KEY_FIELD_LABEL)
    tenant_field: tuple[str, str] = (FIELD_CATEGORY, TENANT_FIELD_LABEL)
    technician: int | None = None
    new_status: str | None = None
    closed_status: str = ""
    note_topic: str = NOTE_TOPIC
    boards: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    missing_fields: tuple[str, ...] = ()

    def board_number(self, board: str) -> int | None:
        """The number of a dispatch board named (or numbered) ``board``."""
        text = board.strip()
        if not text:
            return None
        if text.isdigit():
            return int(text)
        return self.boards.get(text.casefold())


@dataclass(frozen=True)
class _Kept:
    """A setup kept for one integration, with what it was found for and when."""

    fingerprint: Any
    orders: bool
    setup: TigerpawSetup
    found_at: float


class SetupCache:
    """The last good setup of each integration, shared by its cycles.

    ``fingerprint`` is whatever the setup depends on (the integration's settings
    and choices), compared with ``==``; a setup found with ``orders`` also serves a
    cycle without them.
    """

    def __init__(
        self,
        max_age: float = SETUP_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep setups for ``max_age`` seconds of ``clock`` at most."""
        self.max_age = max_age
        self.clock = clock
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()

    def get(
        self, integration_id: str, fingerprint: Any, orders: bool
    ) -> TigerpawSetup | None:
        """The kept setup, if it was found for the same fingerprint, recently, and
        covers ``orders``."""
        with self._lock:
            kept = self._kept.get(integration_id)
        if kept is None:
            return None
        fresh = self.clock() - kept.found_at < self.max_age
        if not fresh or kept.fingerprint != fingerprint or orders > kept.orders:
            return None
        return kept.setup

    def put(
        self, integration_id: str, fingerprint: Any, orders: bool, setup: TigerpawSetup
    ) -> None:
        """Keep a setup for the next cycles (one with problems is not kept)."""
        if setup.problems or setup.missing_fields:
            self.forget(integration_id)
            return
        with self._lock:
            kept = self._kept.get(integration_id)
            if kept is not None and kept.orders and not orders:
                # A setup without the order look-ups must not replace a full one.
                if kept.fingerprint == fingerprint:
                    return
            self._kept[integration_id] = _Kept(fingerprint, orders, setup, self.clock())

    def forget(self, integration_id: str | None = None) -> None:
        """Look the integration's setup (or every one) up again next cycle."""
        with self._lock:
            if integration_id is None:
                self._kept.clear()
            else:
                self._kept.pop(integration_id, None)


def has_field(
    categories: Sequence[CustomFieldCategory], category: str, label: str
) -> bool:
    """Whether ``category/label`` is among the categories (any letter case)."""
    wanted = category.casefold()
    return any(
        found.name.casefold() == wanted and found.field(label) is not None
        for found in categories
    )


#: Creates a missing field through the outbox: (entity, category, label).
EnsureField = Callable[[str, str, str], None]


def bootstrap(
    client: TigerpawClient,
    choices: SyncChoices,
    *,
    ensure_field: EnsureField | None,
    orders: bool = True,
) -> TigerpawSetup:
    """Find (or, with ``ensure_field``, create) what the integration needs.

    Without ``ensure_field`` (a dry run) nothing is written: missing fields are
    listed in ``missing_fields``. With ``orders`` off, only the account field is
    looked at.
    """
    wanted = [(ACCOUNTS, FIELD_CATEGORY, TENANT_FIELD_LABEL)]
    if orders:
        wanted.append((SERVICE_ORDERS, FIELD_CATEGORY, KEY_FIELD_LABEL))
    missing = []
    for entity, category, label in wanted:
        if has_field(client.custom_field_categories(entity), category, label):
            continue
        if ensure_field is None:
            missing.append(f"{entity} field {category}/{label}")
        else:
            ensure_field(entity, category, label)

    # With every rule off, orders already open still close: that needs the closed
    # status looked up.
    if not orders or not (_rules(choices) or choices.closed_status):
        return TigerpawSetup(missing_fields=tuple(missing))
    return _order_setup(client, choices, tuple(missing))


def _rules(choices: SyncChoices) -> list[tuple[str, OrderRule]]:
    """The rules that are on, each with the name the page shows it under."""
    rules = [
        (f"{SEVERITY_LABELS.get(name, name)} events", rule)
        for name, rule in choices.events.items()
        if rule.enabled
    ]
    rules += [
        (status_rule_name(name), rule)
        for name, rule in choices.device_statuses.items()
        if rule.enabled
    ]
    return rules


def _order_setup(
    client: TigerpawClient, choices: SyncChoices, missing: tuple[str, ...]
) -> TigerpawSetup:
    """Look up the rep and the master-table entries the rules name."""
    problems: list[str] = []
    blank = choices.missing()
    if blank:
        problems.append(
            "Choose the service order rep, the new status and the closed status on "
            f"the Service orders tab (missing: {', '.join(blank)})"
        )

    technician = _rep_number(client.reps(active_only=True), choices.rep, problems)
    statuses = client.service_order_statuses()
    new_status = _entry(statuses, choices.new_status, "new service order status")
    closed_status = _entry(statuses, choices.closed_status, "closed status")
    for name, chosen in (
        ("new service order status", choices.new_status),
        ("closed service order status", choices.closed_status),
    ):
        if chosen and _entry(statuses, chosen, name) is None:
            problems.append(_not_there(name, chosen, statuses))

    priorities = client.priorities()
    types = client.service_order_types()
    boards = client.dispatch_boards()
    for rule_name, rule in _rules(choices):
        for what, chosen, table in (
            ("priority", rule.priority, priorities),
            ("type", rule.order_type, types),
        ):
            if chosen and _entry(table, chosen, what) is None:
                problems.append(_not_there(f"{what} for {rule_name}", chosen, table))
        board = rule.board.strip()
        if board and _board(boards, board) is None:
            problems.append(_not_there(f"board for {rule_name}", board, boards))

    topics = client.note_topics()
    topic = _entry(topics, NOTE_TOPIC, "note topic") or next(
        (t.value for t in topics if t.is_default), topics[0].value if topics else ""
    )
    return TigerpawSetup(
        technician=technician,
        new_status=new_status,
        closed_status=closed_status or "",
        note_topic=topic or NOTE_TOPIC,
        boards={
            entry.value.casefold(): entry.id for entry in boards if entry.id is not None
        },
        problems=tuple(problems),
        missing_fields=missing,
    )


def _entry(table: Sequence[MasterTableEntry], chosen: str, what: str) -> str | None:
    """The table's spelling of ``chosen`` (any letter case), or None."""
    wanted = chosen.strip().casefold()
    if not wanted:
        return None
    found = next((e.value for e in table if e.value.casefold() == wanted), None)
    if found is None:
        logger.debug("Tigerpaw has no %s %r", what, chosen)
    return found


def _board(boards: Sequence[MasterTableEntry], chosen: str) -> int | None:
    """The number of a board given by name or number."""
    if chosen.isdigit():
        number = int(chosen)
        return number if any(b.id == number for b in boards) else None
    wanted = chosen.casefold()
    return next((b.id for b in boards if b.value.casefold() == wanted), None)


def _rep_number(reps: Sequence[Rep], chosen: str, problems: list[str]) -> int | None:
    """The number of the rep chosen by name or number, or a problem saying so."""
    text = chosen.strip()
    if not text:
        return None
    if text.isdigit():
        found = next((r for r in reps if r.number == int(text)), None)
    else:
        found = next((r for r in reps if r.name.casefold() == text.casefold()), None)
    if found is None:
        problems.append(
            f"The service order rep '{text}' is not an active rep in Tigerpaw: choose "
            "another on the Service orders tab"
        )
        return None
    return found.number


def _not_there(what: str, chosen: str, table: Sequence[Any]) -> str:
    """A problem saying a chosen entry is gone, with what there is instead."""
    values = ", ".join(str(getattr(e, "value", e)) for e in table[:8])
    return (
        f"The {what} '{chosen}' is not in Tigerpaw's master table (it has {values}): "
        "choose one of those on the Service orders tab"
    )
