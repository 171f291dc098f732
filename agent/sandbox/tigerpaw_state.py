"""The Tigerpaw world of the sandbox: accounts, agreements, service orders and more.

Both faces of the emulator (the tsiWS ASMX service and the REST API) read and change
one :class:`TigerpawWorld`; :mod:`agent.sandbox.tigerpaw_seed` fills it. The caller
holds the emulator's lock around every use. Numbers (accounts, agreements, service
orders, additional-charge detail ids, notes) only ever grow.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: Every security right of the setup guide, in the words the 403 messages use.
RIGHTS = (
    "Accounts: get",
    "Accounts: update",
    "Recurring agreements: get",
    "Recurring agreements: create",
    "Recurring agreements: update",
    "Master tables: get",
    "Master tables: create",
    "Master tables: update",
    "Price book items: get",
    "Service orders: get",
    "Service orders: create",
    "Service orders: update",
    "Custom folders and fields: get",
    "Custom folders and fields: create",
    "Custom folders and fields: update",
)

#: Entities that carry custom fields, as the URL paths name them.
ACCOUNTS, SERVICE_ORDERS = "accounts", "serviceorders"
FIELD_TYPES = ("text", "number", "date", "time", "currency", "truefalse", "dropdown")


def utcnow() -> dt.datetime:
    """Now, in UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime | None) -> str | None:
    """An ISO 8601 UTC time as the replies carry it, or ``None``."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WorldError(Exception):
    """A request breaks a rule of the world; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Rep:
    """An account rep; reps with keys can call the REST API with their rights."""

    number: int
    name: str
    email: str
    active: bool = True
    rights: frozenset[str] = frozenset(RIGHTS)
    public_key: str | None = None
    private_key: str | None = None


@dataclass
class SoapUser:
    """A user of tsiWS Users.exe, who calls the ASMX service."""

    name: str
    password: str
    active: bool
    can_list_accounts: bool
    external_product: str


@dataclass
class ExternalProductLink:
    """An account's cross-reference to an external product."""

    link_id: int
    product: str
    external_id: str
    external_system_id: str = ""
    comment: str = ""


@dataclass
class Account:
    """A Tigerpaw account (one of the MSP's clients)."""

    number: int
    account_id: str
    name: str
    address1: str
    city: str
    state: str
    postal_code: str
    phone: str
    email: str
    contact_name: str
    rep_number: int
    created: dt.datetime
    country: str = "United States"
    account_type: str = "Customer"
    status: str = "Active"
    custom: dict[int, str] = field(default_factory=dict)
    links: list[ExternalProductLink] = field(default_factory=list)

    def link_for(self, product: str) -> ExternalProductLink | None:
        """The cross-reference to ``product``, if the account has one."""
        wanted = product.casefold()
        return next((k for k in self.links if k.product.casefold() == wanted), None)


@dataclass
class Charge:
    """An additional charge line on a recurring agreement."""

    detail_id: int
    item_id: str
    description: str
    quantity: int
    price: float
    added: dt.datetime
    price_level: int = 1
    source: int = 0
    print_when_zero: bool = False
    delete_after_invoicing: bool = False
    use_flat_price: bool = False


@dataclass
class Agreement:
    """A recurring agreement of an account, with its additional charges."""

    number: int
    account_number: int
    type: str
    start: dt.datetime
    created: dt.datetime
    base_price: float
    end: dt.datetime | None = None
    billing_period: int = 1
    automated_billing: bool = True
    internal_comments: str = ""
    charges: list[Charge] = field(default_factory=list)

    def active_at(self, moment: dt.datetime) -> bool:
        """Whether the agreement runs at ``moment``."""
        return self.start <= moment and (self.end is None or self.end > moment)

    def charge(self, detail_id: int) -> Charge | None:
        """The additional charge with that detail id, if the agreement has it."""
        return next((c for c in self.charges if c.detail_id == detail_id), None)


@dataclass
class PriceBookItem:
    """A price book item that additional charges refer to by ``item_id``."""

    number: int
    item_id: str
    description: str
    type: str
    category: str
    price: float
    cost: float
    manufacturer: str
    inactive: bool = False


@dataclass
class MasterEntry:
    """A row of a master table; ``extra`` holds the table's own columns."""

    id: int
    value: str
    system_entry: bool = False
    system_default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FieldCategory:
    """A custom field category (folder) of accounts or service orders."""

    entity: str
    name: str
    available_in_gui: bool = True
    system_entry: bool = False


@dataclass
class FieldDefinition:
    """A custom field definition inside a category."""

    id: int
    entity: str
    category: str
    label: str
    field_type: str
    description: str = ""
    ordinal: int = 0
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    choices: list[str] = field(default_factory=list)


@dataclass
class Note:
    """A note on a service order."""

    id: int
    topic: str
    text: str
    rep_number: int
    created: dt.datetime
    start_time: str | None = None


@dataclass
class ServiceOrder:
    """A service order; ``data`` holds the wire fields the sandbox models."""

    number: int
    data: dict[str, Any]
    created: dt.datetime
    notes: list[Note] = field(default_factory=list)
    custom: dict[int, str] = field(default_factory=dict)
    locked_by: int | None = None
    locked_since: dt.datetime | None = None

    @property
    def account_number(self) -> int:
        """The account the order is for."""
        return int(self.data["AccountNumber"])


@dataclass
class TigerpawWorld:
    """Everything the emulated Tigerpaw holds."""

    accounts: list[Account] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    items: list[PriceBookItem] = field(default_factory=list)
    reps: list[Rep] = field(default_factory=list)
    soap_users: list[SoapUser] = field(default_factory=list)
    tables: dict[str, list[MasterEntry]] = field(default_factory=dict)
    categories: list[FieldCategory] = field(default_factory=list)
    definitions: list[FieldDefinition] = field(default_factory=list)
    orders: list[ServiceOrder] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def next_id(self, name: str) -> int:
        """The next number of a growing sequence (``order``, ``detail`` and so on)."""
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    # Lookups.

    def account(self, number: int) -> Account | None:
        """The account with that number."""
        return next((a for a in self.accounts if a.number == number), None)

    def agreement(self, number: int) -> Agreement | None:
        """The agreement with that number."""
        return next((a for a in self.agreements if a.number == number), None)

    def agreements_of(self, account_number: int) -> list[Agreement]:
        """The agreements of an account."""
        return [a for a in self.agreements if a.account_number == account_number]

    def item(self, item_id: str) -> PriceBookItem | None:
        """The price book item with that item id (part number), case-insensitively."""
        wanted = item_id.strip().casefold()
        return next((i for i in self.items if i.item_id.casefold() == wanted), None)

    def item_by_number(self, number: int) -> PriceBookItem | None:
        """The price book item with that number."""
        return next((i for i in self.items if i.number == number), None)

    def rep(self, number: int) -> Rep | None:
        """The rep with that number."""
        return next((r for r in self.reps if r.number == number), None)

    def rep_by_key(self, public_key: str) -> Rep | None:
        """The rep whose REST public key this is (GUIDs compare case-insensitively)."""
        wanted = public_key.strip().casefold()
        return next(
            (r for r in self.reps if (r.public_key or "").casefold() == wanted), None
        )

    def soap_user(self, name: str) -> SoapUser | None:
        """The tsiWS user with that name (names compare case-insensitively)."""
        wanted = name.casefold()
        return next((u for u in self.soap_users if u.name.casefold() == wanted), None)

    def order(self, number: int) -> ServiceOrder:
        """The service order with that number; a 404 error when there is none."""
        found = next((o for o in self.orders if o.number == number), None)
        if found is None:
            raise WorldError(f"Service order {number} does not exist.", 404)
        return found

    def entry(self, table: str, value: str) -> MasterEntry | None:
        """The row of a master table with that value, case-insensitively."""
        wanted = str(value).strip().casefold()
        rows = self.tables.get(table, [])
        return next((e for e in rows if e.value.casefold() == wanted), None)

    def entry_by_id(self, table: str, entry_id: int) -> MasterEntry | None:
        """The row of a master table with that id."""
        return next((e for e in self.tables.get(table, []) if e.id == entry_id), None)

    def default_entry(self, table: str) -> MasterEntry:
        """The system default row of a master table."""
        rows = self.tables[table]
        return next((e for e in rows if e.system_default), rows[0])

    def category(self, entity: str, name: str) -> FieldCategory | None:
        """The custom field category of ``entity`` with that name."""
        wanted = name.strip().casefold()
        return next(
            (
                c
                for c in self.categories
                if c.entity == entity and c.name.casefold() == wanted
            ),
            None,
        )

    def fields_of(self, entity: str) -> list[FieldDefinition]:
        """The custom field definitions of ``entity``, by category and position."""
        found = [d for d in self.definitions if d.entity == entity]
        return sorted(found, key=lambda d: (d.category.casefold(), d.ordinal, d.id))

    def find_field(
        self, entity: str, label: str, category: str | None = None
    ) -> list[FieldDefinition]:
        """The definitions of ``entity`` with that label (and category, if given)."""
        wanted = label.strip().casefold()
        found = [d for d in self.fields_of(entity) if d.label.casefold() == wanted]
        if category:
            found = [
                d for d in found if d.category.casefold() == category.strip().casefold()
            ]
        return found

    # Changes that people make in the Tigerpaw window (sandbox events).

    def lock_order(self, number: int, rep_number: int, now: dt.datetime) -> None:
        """Someone opened the order on their screen: the API may not change it."""
        order = self.order(number)
        order.locked_by = rep_number
        order.locked_since = now

    def unlock_order(self, number: int) -> None:
        """The person closed the order's window."""
        order = self.order(number)
        order.locked_by = None
        order.locked_since = None

    def close_order(self, number: int, rep_number: int, now: dt.datetime) -> None:
        """A person closes the order by hand, with a note saying so."""
        order = self.order(number)
        closed = next(e for e in self.tables["statuses"] if e.value == "Closed")
        order.data["Status"] = closed.value
        order.data["DateTimeClosed"] = iso(now)
        rep = self.rep(rep_number)
        order.notes.append(
            Note(
                id=self.next_id("note"),
                topic="General",
                text=f"Closed by {rep.name if rep else 'a technician'}.",
                rep_number=rep_number,
                created=now,
            )
        )
        self.unlock_order(number)

    def set_cross_reference(self, account_number: int, product: str, on: bool) -> None:
        """Cross-reference an account to an external product, or remove it."""
        account = self.account(account_number)
        if account is None:
            raise WorldError(f"Account {account_number} does not exist.", 404)
        link = account.link_for(product)
        if on and link is None:
            account.links.append(
                ExternalProductLink(
                    self.next_id("link"), product, f"KL-{account.number}"
                )
            )
        if not on and link is not None:
            account.links.remove(link)

    def check_not_locked(self, order: ServiceOrder) -> None:
        """Refuse to change an order someone holds open, as Tigerpaw does."""
        if order.locked_by is None:
            return
        rep = self.rep(order.locked_by)
        who = rep.name if rep else f"rep {order.locked_by}"
        raise WorldError(
            f"Service order {order.number} is locked: {who} has it open in Tigerpaw "
            f"since {iso(order.locked_since)}. Try again after it is closed there.",
            423,
        )
