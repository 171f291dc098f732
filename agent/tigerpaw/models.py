"""The records the Tigerpaw client returns: frozen, typed, free of wire details.

The sync and the setup page read these; only :mod:`agent.tigerpaw.rest_parse` and
:mod:`agent.tigerpaw.asmx` know how Tigerpaw spells them on the wire.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: The entities that carry custom fields, as Tigerpaw's paths name them.
ACCOUNTS = "accounts"
SERVICE_ORDERS = "serviceorders"


@dataclass(frozen=True)
class Account:
    """A Tigerpaw account (a client of the MSP).

    ``cross_referenced`` and ``external_id`` come from the ASMX account list: whether
    the account has the SOAP user's external product, and the id it has there.
    """

    number: int
    name: str
    status: str | None = None
    account_id: str | None = None
    account_type: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    phone: str | None = None
    email: str | None = None
    rep_number: int | None = None
    primary_contact: str | None = None
    cross_referenced: bool | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Agreement:
    """A recurring agreement of an account."""

    number: int
    account_number: int
    type: str
    start: dt.datetime | None
    end: dt.datetime | None
    total_price: float | None = None
    billing_period: str | None = None
    automated_billing: bool | None = None
    charge_count: int | None = None

    def active_at(self, moment: dt.datetime) -> bool:
        """Whether the agreement runs at ``moment`` (an aware datetime)."""
        started = self.start is None or self.start <= moment
        return started and (self.end is None or self.end > moment)


@dataclass(frozen=True)
class AdditionalCharge:
    """An additional charge line of an agreement (one per price book item)."""

    detail_id: int
    item_id: str
    description: str
    quantity: int
    price: float | None = None
    source: int | None = None
    added: dt.datetime | None = None


@dataclass(frozen=True)
class ChargeChange:
    """What setting a charge's quantity did.

    ``action`` is created, updated or unchanged; ``before`` is None for a new line.
    """

    agreement_number: int
    item_id: str
    detail_id: int
    before: int | None
    after: int
    action: str


@dataclass(frozen=True)
class PriceBookItem:
    """A price book item; ``item_id`` is what additional charges refer to."""

    number: int
    item_id: str
    description: str
    type: str | None = None
    category: str | None = None
    price: float | None = None
    inactive: bool = False
    manufacturer: str | None = None


@dataclass(frozen=True)
class ServiceOrder:
    """A service order, with who holds it locked if someone does."""

    number: int
    account_number: int
    brief_description: str
    status: str | None = None
    priority: str | None = None
    order_type: str | None = None
    reference: str | None = None
    dispatch_board: int | None = None
    technician: int | None = None
    taken_by: int | None = None
    severity: int | None = None
    work_requested: str | None = None
    internal_comments: str | None = None
    opened: dt.datetime | None = None
    closed: dt.datetime | None = None
    account_name: str | None = None
    note_count: int | None = None
    locked_by: int | None = None
    locked_by_name: str | None = None

    @property
    def is_locked(self) -> bool:
        """Whether someone holds the order open in the Tigerpaw window."""
        return self.locked_by is not None


@dataclass(frozen=True)
class Note:
    """A note on a service order."""

    number: int
    topic: str
    text: str
    rep_number: int | None = None
    created: dt.datetime | None = None


@dataclass(frozen=True)
class MasterTableEntry:
    """A row of a master table (status, priority, type, board, topic, ...).

    ``priority`` is a service order type's own priority; ``response_hours`` a
    priority's response time.
    """

    value: str
    id: int | None = None
    rank: int | None = None
    is_default: bool = False
    is_system: bool = False
    priority: str | None = None
    response_hours: float | None = None


@dataclass(frozen=True)
class Rep:
    """An account rep (technicians, dispatchers, the integration's own rep)."""

    number: int
    name: str
    email: str | None = None
    active: bool = True


@dataclass(frozen=True)
class CustomFieldDefinition:
    """A custom field in a category."""

    id: int
    category: str
    label: str
    field_type: str | None = None
    max_length: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class CustomFieldCategory:
    """A custom field category (folder) with its fields."""

    name: str
    fields: tuple[CustomFieldDefinition, ...] = ()
    available_in_gui: bool = True
    system: bool = False

    def field(self, label: str) -> CustomFieldDefinition | None:
        """The field with that label, compared as Tigerpaw does (any case)."""
        wanted = label.strip().casefold()
        return next((f for f in self.fields if f.label.casefold() == wanted), None)


@dataclass(frozen=True)
class CustomFieldValue:
    """A custom field of a record with the record's value (None when empty)."""

    field_id: int
    category: str
    label: str
    value: str | None


@dataclass(frozen=True)
class Criterion:
    """One condition of an advanced search.

    Criteria with the same ``search_type`` are ORed, different ones ANDed.
    ``match_type``: StartsWith, EndsWith, Contains, Equal, GreaterThan(Equal),
    LessThan(Equal). CustomField searches also name the category and field.
    """

    search_type: str
    criteria: str
    match_type: str = "Equal"
    category_name: str | None = None
    custom_field_name: str | None = None


@dataclass(frozen=True)
class ConnectionCheck:
    """What a successful check of both Tigerpaw APIs found."""

    rep_name: str | None
    database_version: str | None
    account_count: int
    not_cross_referenced: tuple[Account, ...]
