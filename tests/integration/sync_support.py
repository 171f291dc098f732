"""A sandbox, a store and an integration set up as the page does it, for sync tests.

Expected results are computed from the sandbox's own seed (``billable_usage``, the
devices' problems, the events), never from what the sync wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from agent.config import Settings
from agent.sandbox import seed
from agent.sandbox.runner import Sandbox
from agent.secrets import SecretStore, secret_name
from agent.sources.kbh import KNOWN_SERVERS, ServerTable
from agent.sources.records import PROBLEM_DESCRIPTIONS
from agent.store import (
    IntegrationSettings,
    NewTenant,
    OrderRule,
    Store,
    SyncChoices,
)
from agent.sync.bootstrap import FIELD_CATEGORY, KEY_FIELD_LABEL
from agent.sync.once import run_sync_once
from agent.sync.outbox import RetryPolicy
from agent.tigerpaw.client import TigerpawClient

SETTINGS = Settings(kes_cloud_server="production")
#: Short waits, so a test's next cycle retries what failed in the one before.
FAST = RetryPolicy(base=0.05, cap=0.2, locked=0.05, needs_person=0.2, wait_inline=1)
KEY_FIELD = f"{FIELD_CATEGORY}/{KEY_FIELD_LABEL}"

ENDPOINT, SERVER, O365 = (
    seed.ENDPOINT_PRODUCT,
    seed.SERVER_PRODUCT,
    seed.OFFICE365_PRODUCT,
)
ON = OrderRule(enabled=True, priority="2 - High", order_type="Security Alert")
CHOICES = SyncChoices(
    rep="Sam Technician",
    new_status="New",
    closed_status="Closed",
    events={
        "critical": dataclasses.replace(ON, board="Security Operations"),
        "functional_failure": OrderRule(),
        "warning": OrderRule(),
    },
    device_statuses={
        problem: OrderRule(
            enabled=True, priority="3 - Normal", order_type="Maintenance"
        )
        for problem in PROBLEM_DESCRIPTIONS
    },
    price_book_items={
        f"{ENDPOINT}/workstation": "KL-KESB-WS",
        f"{ENDPOINT}/server": "KL-KESB-SRV",
        SERVER: "KL-KSWS",
        O365: "KL-KSO365",
    },
    bill_by_category=True,
)


def expected_item(product: str, kind: str) -> str | None:
    """The price book item CHOICES bill a seed (product, device kind) under."""
    return {
        (ENDPOINT, "workstation"): "KL-KESB-WS",
        (ENDPOINT, "server"): "KL-KESB-SRV",
        (SERVER, "workstation"): "KL-KSWS",
        (SERVER, "server"): "KL-KSWS",
        (O365, "mailbox"): "KL-KSO365",
    }.get((product, kind))


class SyncWorld:
    """The sandbox, a store with one Business Hub integration mapped to Tigerpaw."""

    def __init__(
        self, folder: Path, *, tenants: int = 5, devices: int = 10, source: str = "kbh"
    ) -> None:
        """Start the sandbox and open an empty store and secret store."""
        self.folder = folder
        self.source = source
        self.sandbox = Sandbox(folder / "data", tenants=tenants, devices=devices)
        self.description = self.sandbox.start()
        self.table = ServerTable(KNOWN_SERVERS)
        self.table.register(
            {
                env: (kbh["url"], kbh["cert"])
                for env, kbh in self.description["kbh"].items()
            }
        )
        self.store = Store.open_in(folder / "data")
        self.secrets = SecretStore(folder / "data")
        self.integration_id = ""
        self.accounts: dict[str, int] = {}

    @property
    def fleet(self) -> seed.Fleet:
        """The companies the integration reads: the production Business Hub's, or
        the KSC server's virtual servers."""
        if self.source == "ksc":
            assert self.sandbox.ksc is not None
            return self.sandbox.ksc.fleet
        return self.sandbox.kbh["production"].fleet

    @property
    def tigerpaw_url(self) -> str:
        """The Tigerpaw emulator's address."""
        return self.description["tigerpaw"]["url"]

    def close(self) -> None:
        """Stop the sandbox and close the store."""
        self.store.close()
        self.sandbox.stop()

    # Setup, as the page will do it.

    def set_up(
        self, *, approve: bool = True, choices: SyncChoices = CHOICES
    ) -> list[int]:
        """Create the integration, add every company, map each to its account and
        Managed Security agreement with billing on; returns the tenant ids."""
        tigerpaw = self.description["tigerpaw"]
        kbh = self.description["kbh"]["production"]
        ksc = self.description["ksc"]
        console: dict[str, str] = (
            {
                "ksc_address": ksc["url"],
                "ksc_user": ksc["user"],
                "ksc_certificate_path": ksc["cert"],
            }
            if self.source == "ksc"
            else {"kbh_email": kbh["email"]}
        )
        integration = self.store.create_integration(
            IntegrationSettings(
                source=self.source,
                name="Integration with Tigerpaw",
                tigerpaw_url=tigerpaw["url"],
                tigerpaw_soap_user=tigerpaw["soap_user"],
                tigerpaw_public_key=tigerpaw["public_key"],
                **console,
            )
        )
        self.integration_id = integration.id
        password = ("ksc_password", ksc["password"])
        if self.source == "kbh":
            password = ("kbh_password", kbh["password"])
        for field, value in (
            password,
            ("tigerpaw_soap_password", tigerpaw["soap_password"]),
            ("tigerpaw_private_key", tigerpaw["private_key"]),
        ):
            self.secrets.set(secret_name(integration.id, field), value)
        self.store.set_sync_choices(integration.id, choices)

        tenants = self.store.add_tenants(
            integration.id, [NewTenant(t.uid, t.name) for t in self.fleet.tenants]
        )
        world = self.sandbox.tigerpaw.world
        for tenant in tenants:
            account = next(a for a in world.accounts if a.name == tenant.name)
            agreement = next(
                g
                for g in world.agreements
                if g.account_number == account.number and g.type == "Managed Security"
            )
            self.accounts[tenant.name] = account.number
            self.store.map_account(
                tenant.id, account.number, account.name, agreement.number,
                agreement.type, billing=True, service_orders=True,
            )  # fmt: skip
            if approve:
                self.store.update_mapping(tenant.id, billing_approved=True)
        return [tenant.id for tenant in tenants]

    # Running.

    def sync(self, *, dry_run: bool = False, settle: float = 2.0) -> tuple[int, str]:
        """``sync-once`` in this process: its exit code and what it printed."""
        out = io.StringIO()
        code = run_sync_once(
            self.store,
            self.secrets,
            SETTINGS,
            dry_run=dry_run,
            out=out,
            kbh_table=self.table,
            policy=FAST,
            settle=settle,
        )
        return code, out.getvalue()

    # Looking at the emulators.

    def state(self) -> dict[str, Any]:
        """Tigerpaw's ``/_sandbox/state``."""
        return requests.get(f"{self.tigerpaw_url}/_sandbox/state", timeout=10).json()

    def tigerpaw_events(self, payload: dict[str, Any]) -> None:
        """Play a person at the Tigerpaw desk."""
        reply = requests.post(
            f"{self.tigerpaw_url}/_sandbox/events", json=payload, timeout=10
        )
        reply.raise_for_status()

    def tigerpaw_faults(self, **faults: Any) -> None:
        """Inject faults into Tigerpaw (``reset=True`` clears them)."""
        reply = requests.post(
            f"{self.tigerpaw_url}/_sandbox/faults", json=faults, timeout=10
        )
        reply.raise_for_status()

    def kbh_events(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Raise events or change device problems in the console the integration
        reads (the production Business Hub, or KSC)."""
        console = self.description["kbh"]["production"]
        if self.source == "ksc":
            console = self.description["ksc"]
        reply = requests.post(
            f"{console['url']}/_sandbox/events",
            json=payload,
            timeout=10,
            verify=console["cert"],
        )
        reply.raise_for_status()
        return reply.json()

    def our_orders(self) -> list[dict[str, Any]]:
        """The service orders that carry the agent's key."""
        return [
            o
            for o in self.state()["service_orders"]
            if o["custom_fields"].get(KEY_FIELD)
        ]

    def charges(self) -> dict[int, dict[str, int]]:
        """Account number to {item id: quantity} of its Managed Security agreement."""
        found: dict[int, dict[str, int]] = {}
        for agreement in self.state()["agreements"]:
            if agreement["type"] == "Managed Security":
                found[agreement["account"]] = {
                    c["item_id"]: c["quantity"] for c in agreement["charges"]
                }
        return found

    # What should be there.

    def expected_charges(self) -> dict[int, dict[str, int]]:
        """Per account, the quantity per Kaspersky item from the seed's rules."""
        expected: dict[int, dict[str, int]] = {}
        for tenant in self.fleet.tenants:
            quantities: Counter[str] = Counter()
            for (product, kind), count in tenant.billable_usage().items():
                item = expected_item(product, kind)
                if item is not None:
                    quantities[item] += count
            expected[self.accounts[tenant.name]] = {
                item: n for item, n in quantities.items() if n
            }
        return expected

    def expected_orders(
        self,
        now: dt.datetime | None = None,
        lifetime: dt.timedelta = dt.timedelta(days=1),
    ) -> Counter[tuple[int, str]]:
        """(account, title) of every open problem: each device problem, and each
        (device, event type) with a critical event younger than the lifetime."""
        now = now or dt.datetime.now(dt.UTC)
        expected: Counter[tuple[int, str]] = Counter()
        for tenant in self.fleet.tenants:
            account = self.accounts[tenant.name]
            for device in tenant.devices:
                for problem in device.problems:
                    expected[
                        (account, f"{PROBLEM_DESCRIPTIONS[problem]} on {device.name}")
                    ] = 1
            for event in tenant.events:
                if event.severity == "critical" and now - event.time <= lifetime:
                    expected[
                        (account, f"{event.description} on {event.device_name}")
                    ] = 1
        return expected


def kaspersky_charges(charges: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    """Only the Kaspersky items of each account's charges, zero lines left out."""
    return {
        account: {i: q for i, q in items.items() if i.startswith("KL-") and q}
        for account, items in charges.items()
    }


def open_titles(orders: list[dict[str, Any]]) -> Counter[tuple[int, str]]:
    """(account, title) of the open orders, counted."""
    return Counter((o["account"], o["brief"]) for o in orders if not o["closed"])


def wait_until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it gives something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"Not reached within {timeout} s")


def tigerpaw_client(world: SyncWorld, **options: Any) -> TigerpawClient:
    """A Tigerpaw client on the world's emulator (``options`` as TigerpawClient's:
    timeout, attempts)."""
    tigerpaw = world.description["tigerpaw"]
    return TigerpawClient(
        tigerpaw["url"],
        tigerpaw["soap_user"],
        tigerpaw["soap_password"],
        tigerpaw["public_key"],
        tigerpaw["private_key"],
        **options,
    )
