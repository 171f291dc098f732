"""Seeds the sandbox's Tigerpaw: accounts from company names, and everything around.

The same names and ``seed`` always give the same world: keys, passwords, account
details, which accounts have a second agreement. Only the times follow the clock.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from agent.sandbox import seed as fleet_seed
from agent.sandbox.tigerpaw_state import (
    ACCOUNTS,
    RIGHTS,
    SERVICE_ORDERS,
    Account,
    Agreement,
    Charge,
    ExternalProductLink,
    FieldCategory,
    FieldDefinition,
    MasterEntry,
    PriceBookItem,
    Rep,
    ServiceOrder,
    SoapUser,
    TigerpawWorld,
    iso,
    utcnow,
)

#: The external product the main tsiWS user is set up with (setup guide, step 2).
MAIN_PRODUCT = "Kaspersky Security Integration"
#: How many of the last accounts are not cross-referenced to :data:`MAIN_PRODUCT`.
NOT_CROSS_REFERENCED = 2

#: Price book items: (item id, description, type, category, price, inactive).
PRICE_BOOK = (
    ("KL-KESB-WS", f"{fleet_seed.ENDPOINT_PRODUCT} - Workstation", "S", "Security",
     4.50, False),
    ("KL-KESB-SRV", f"{fleet_seed.ENDPOINT_PRODUCT} - Server", "S", "Security",
     9.00, False),
    ("KL-KSWS", fleet_seed.SERVER_PRODUCT, "S", "Security", 12.00, False),
    ("KL-KSO365", f"{fleet_seed.OFFICE365_PRODUCT} - Mailbox", "S", "Security",
     1.75, False),
    ("KL-KAV-OLD", "Kaspersky Anti-Virus (retired)", "S", "Security", 3.00, True),
    ("MSP-MONITOR", "Managed security monitoring", "S", "Managed Services",
     150.00, False),
    ("MSP-BACKUP", "Managed backup per device", "S", "Managed Services", 6.00,
     False),
    ("LAB-REMOTE", "Remote support labor (hour)", "L", "Labor", 95.00, False),
    ("HW-MON24", "24 inch monitor", "M", "Hardware", 189.00, False),
)  # fmt: skip

STATUSES = (  # (value, closed)
    ("New", False),
    ("In Progress", False),
    ("Waiting on Customer", False),
    ("Scheduled", False),
    ("Complete", True),
    ("Closed", True),
)
PRIORITIES = (("1 - Critical", 1), ("2 - High", 4), ("3 - Normal", 8), ("4 - Low", 24))
ORDER_TYPES = (
    ("Security Alert", "2 - High"),
    ("Maintenance", "3 - Normal"),
    ("Break/Fix", "2 - High"),
    ("Installation", "3 - Normal"),
    ("Monitoring", "4 - Low"),
)
BOARDS = ("Service Desk", "Security Operations", "Field Service")
SEVERITIES = ("Critical", "High", "Medium", "Low")
NOTE_TOPICS = ("General", "Customer Update", "Internal", "Resolution", "Alert")
EXTERNAL_PRODUCTS = (MAIN_PRODUCT, "Webroot SecureAnywhere", "Datto RMM")
CITIES = (
    ("Tulsa", "OK", "741"),
    ("Wichita", "KS", "672"),
    ("Omaha", "NE", "681"),
    ("Dallas", "TX", "752"),
    ("Denver", "CO", "802"),
    ("Boise", "ID", "837"),
)
STREETS = ("Main St", "Oak Ave", "Commerce Dr", "Elm St", "Park Blvd", "Lake Rd")
PEOPLE = ("Alex Morgan", "Jamie Lee", "Chris Walker", "Taylor Reed", "Jordan Fox")


@dataclass(frozen=True)
class Credentials:
    """The seeded credentials that ``describe()`` hands out."""

    soap_user: str
    soap_password: str
    public_key: str
    private_key: str
    test_users: dict[str, dict[str, object]]


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _entries(values: tuple[str, ...], default: str | None = None) -> list[MasterEntry]:
    return [
        MasterEntry(i, value, system_entry=(i == 1), system_default=(value == default))
        for i, value in enumerate(values, start=1)
    ]


def _master_tables() -> dict[str, list[MasterEntry]]:
    statuses = [
        MasterEntry(
            i,
            value,
            system_entry=value in ("New", "Closed"),
            system_default=value == "New",
            extra={"Rank": i, "Closed": closed},
        )
        for i, (value, closed) in enumerate(STATUSES, start=1)
    ]
    priorities = [
        MasterEntry(
            i,
            value,
            system_default=value == "3 - Normal",
            extra={"Rank": i, "ResponseTime": hours},
        )
        for i, (value, hours) in enumerate(PRIORITIES, start=1)
    ]
    types = [
        MasterEntry(
            i, value, system_default=value == "Maintenance", extra={"Priority": prio}
        )
        for i, (value, prio) in enumerate(ORDER_TYPES, start=1)
    ]
    return {
        "statuses": statuses,
        "priorities": priorities,
        "types": types,
        "dispatchboards": _entries(BOARDS, "Service Desk"),
        "severities": _entries(SEVERITIES, "Medium"),
        "notetopics": _entries(NOTE_TOPICS, "General"),
        "externalproducts": _entries(EXTERNAL_PRODUCTS),
    }


def _reps(rng: random.Random) -> list[Rep]:
    no_create = frozenset(RIGHTS) - {"Service orders: create"}
    read_only = frozenset(r for r in RIGHTS if r.endswith(": get"))
    reps = [
        Rep(1, "Kaspersky Integration", "kaspersky@msp.example"),
        Rep(2, "Pat Dispatcher", "pat@msp.example"),
        Rep(3, "Sam Technician", "sam@msp.example"),
        Rep(4, "Robin Helpdesk", "robin@msp.example", rights=no_create),
        Rep(5, "Casey Auditor", "casey@msp.example", rights=read_only),
        Rep(6, "Former Employee", "former@msp.example", active=False),
    ]
    for rep in reps:
        if rep.number in (1, 4, 5, 6):
            rep.public_key, rep.private_key = _guid(rng), _guid(rng)
    return reps


def _soap_users(rng: random.Random) -> list[SoapUser]:
    def password() -> str:
        return f"Sandbox-{rng.getrandbits(40):010x}"

    return [
        SoapUser("kaspersky", password(), True, True, MAIN_PRODUCT),
        SoapUser("kaspersky-disabled", password(), False, True, MAIN_PRODUCT),
        SoapUser("kaspersky-nolist", password(), True, False, MAIN_PRODUCT),
    ]


def _custom_fields(world: TigerpawWorld) -> None:
    world.categories += [
        FieldCategory(ACCOUNTS, "General", system_entry=True),
        FieldCategory(ACCOUNTS, "Security"),
        FieldCategory(SERVICE_ORDERS, "Site Access"),
    ]
    for entity, category, label, kind, length in (
        (ACCOUNTS, "General", "Contract Notes", "text", 255),
        (ACCOUNTS, "General", "Onboarded", "truefalse", None),
        (ACCOUNTS, "Security", "Backup Vendor", "text", 50),
        (SERVICE_ORDERS, "Site Access", "Gate Code", "text", 20),
    ):
        world.definitions.append(
            FieldDefinition(
                world.next_id("field"),
                entity,
                category,
                label,
                kind,
                ordinal=len(world.definitions) + 1,
                max_length=length,
            )
        )


def _account(
    world: TigerpawWorld, rng: random.Random, name: str, now: dt.datetime
) -> Account:
    city, state, zip_prefix = rng.choice(CITIES)
    domain = "".join(ch for ch in name.lower() if ch.isalnum())[:20] + ".example"
    return Account(
        number=1000 + world.next_id("account"),
        account_id=_guid(rng),
        name=name,
        address1=f"{rng.randint(10, 9999)} {rng.choice(STREETS)}",
        city=city,
        state=state,
        postal_code=f"{zip_prefix}{rng.randint(10, 99)}",
        phone=f"(555) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        email=f"office@{domain}",
        contact_name=rng.choice(PEOPLE),
        rep_number=3,
        created=now - dt.timedelta(days=rng.randint(200, 2000)),
    )


def _agreement(
    world: TigerpawWorld, account: Account, kind: str, price: float, start: dt.datetime
) -> Agreement:
    agreement = Agreement(
        number=5000 + world.next_id("agreement"),
        account_number=account.number,
        type=kind,
        start=start,
        created=start,
        base_price=price,
    )
    world.agreements.append(agreement)
    return agreement


def _seed_orders(world: TigerpawWorld, now: dt.datetime) -> None:
    """A few orders people opened, so searches and numbers start from a real desk."""
    for account, brief, status, kind in zip(
        world.accounts[:3],
        ("Printer offline", "New laptop setup", "Slow file server"),
        ("In Progress", "Scheduled", "Closed"),
        ("Break/Fix", "Installation", "Maintenance"),
        strict=False,
    ):
        opened = now - dt.timedelta(days=3)
        world.orders.append(
            ServiceOrder(
                number=20000 + world.next_id("order"),
                created=opened,
                data={
                    "AccountNumber": account.number,
                    "BriefDescription": brief,
                    "Status": status,
                    "ServiceOrderType": kind,
                    "Priority": "3 - Normal",
                    "TakenBy": 2,
                    "TechnicianAssigned": 3,
                    "DispatchBoardNumber": 1,
                    "DateTimeOpened": iso(opened),
                    "DateTimeClosed": iso(now) if status == "Closed" else None,
                },
            )
        )


def build_world(
    account_names: list[str], seed: int = 0
) -> tuple[TigerpawWorld, Credentials]:
    """A seeded world, and the credentials to reach it."""
    rng = random.Random(f"tigerpaw-{seed}")
    now = utcnow()
    world = TigerpawWorld(tables=_master_tables(), reps=_reps(rng))
    world.soap_users = _soap_users(rng)
    _custom_fields(world)
    for number, (item_id, text, kind, category, price, inactive) in enumerate(
        PRICE_BOOK, start=2001
    ):
        manufacturer = "Kaspersky" if item_id.startswith("KL-") else "MSP"
        world.items.append(
            PriceBookItem(
                number,
                item_id,
                text,
                kind,
                category,
                price,
                price * 0.6,
                manufacturer,
                inactive,
            )
        )

    cross_referenced = len(account_names) - NOT_CROSS_REFERENCED
    for index, name in enumerate(account_names):
        account = _account(world, rng, name, now)
        world.accounts.append(account)
        if index < cross_referenced:
            account.links.append(
                ExternalProductLink(
                    world.next_id("link"), MAIN_PRODUCT, f"KL-{account.number}"
                )
            )
        start = now - dt.timedelta(days=rng.randint(60, 900))
        main = _agreement(world, account, "Managed Security", 250.0, start)
        if rng.random() < 0.5:
            main.charges.append(
                Charge(
                    world.next_id("detail"),
                    "MSP-MONITOR",
                    "Managed security monitoring",
                    1,
                    150.0,
                    start,
                )
            )
        if rng.random() < 0.35:
            _agreement(world, account, "Backup Services", 120.0, start)
        if index == 1:
            # One agreement that has ended, so choosing it can be refused.
            old = _agreement(world, account, "Legacy Antivirus", 80.0, start)
            old.start = start - dt.timedelta(days=800)
            old.end = start

    _seed_orders(world, now)
    main_rep, no_create, read_only, former = (world.reps[n - 1] for n in (1, 4, 5, 6))
    users = {user.name: user for user in world.soap_users}
    credentials = Credentials(
        soap_user="kaspersky",
        soap_password=users["kaspersky"].password,
        public_key=str(main_rep.public_key),
        private_key=str(main_rep.private_key),
        test_users={
            "soap_inactive": _soap_entry(users["kaspersky-disabled"], "Active off"),
            "soap_no_list_right": _soap_entry(
                users["kaspersky-nolist"], "'Allow user to list accounts' off"
            ),
            "rest_no_service_order_create": _rest_entry(no_create),
            "rest_read_only": _rest_entry(read_only),
            "rest_inactive_rep": _rest_entry(former, "the rep is inactive"),
        },
    )
    return world, credentials


def _soap_entry(user: SoapUser, why: str) -> dict[str, object]:
    return {"soap_user": user.name, "soap_password": user.password, "note": why}


def _rest_entry(rep: Rep, why: str | None = None) -> dict[str, object]:
    missing = [right for right in RIGHTS if right not in rep.rights]
    return {
        "public_key": rep.public_key,
        "private_key": rep.private_key,
        "rep": rep.name,
        "missing_rights": missing,
        "note": why or f"lacks {', '.join(missing)}",
    }
