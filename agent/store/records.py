"""The records the store takes and gives back: plain frozen dataclasses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

PLATFORM = "Tigerpaw"
DEFAULT_INTEGRATION_NAME = "Integration with Tigerpaw"
KSC, KBH = "ksc", "kbh"
SOURCES = (KSC, KBH)

#: What a tenant is called on the page, per source.
TENANT_LABELS = {KSC: "virtual server", KBH: "company"}

#: Outbox states: waiting, done, waiting after a failure, given up.
PENDING, SENT, FAILED, ABANDONED = "pending", "sent", "failed", "abandoned"

#: Service order states while the agent tracks an order.
OPENING, OPEN, CLOSING = "opening", "open", "closing"


@dataclass(frozen=True, kw_only=True)
class IntegrationSettings:
    """What a person sets for an integration; passwords and keys live elsewhere."""

    source: str
    name: str = DEFAULT_INTEGRATION_NAME
    platform: str = PLATFORM
    ksc_address: str = ""
    ksc_user: str = ""
    ksc_certificate_path: str = ""
    ksc_fingerprint: str = ""
    proxy_address: str = ""
    proxy_user: str = ""
    kbh_email: str = ""
    tigerpaw_url: str = ""
    tigerpaw_asmx_url: str = ""
    tigerpaw_soap_user: str = ""
    tigerpaw_public_key: str = ""


#: The column names of the editable integration fields, in schema order.
SETTINGS_FIELDS = tuple(f.name for f in fields(IntegrationSettings))


@dataclass(frozen=True, kw_only=True)
class Integration(IntegrationSettings):
    """A stored integration: its settings, its ID (a UUID) and when it changed."""

    id: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def settings(self) -> IntegrationSettings:
        """The editable part alone, ready for ``dataclasses.replace``."""
        return IntegrationSettings(**{n: getattr(self, n) for n in SETTINGS_FIELDS})


@dataclass(frozen=True)
class Administrator:
    """A Business Hub user bound to an integration."""

    email: str
    alias: str = ""


@dataclass(frozen=True)
class NewTenant:
    """A tenant as a source lists it: a KSC virtual server or a KBH company."""

    source_id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class AccountMapping:
    """A tenant's Tigerpaw account, agreement and switches."""

    tenant_id: int
    account_number: int
    account_name: str
    agreement_number: int | None
    agreement_name: str
    billing: bool
    service_orders: bool
    billing_approved: bool
    mapped_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class Tenant:
    """A tenant held by one integration, with its mapping when it has one."""

    id: int
    integration_id: str
    source: str
    source_id: str
    name: str
    added_at: dt.datetime
    last_sync_at: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    mapping: AccountMapping | None = None

    @property
    def label(self) -> str:
        """What the page calls this tenant: "virtual server" or "company"."""
        return TENANT_LABELS[self.source]


@dataclass(frozen=True, kw_only=True)
class OutboxItem:
    """One write to Tigerpaw, saved before it is sent."""

    key: str
    integration_id: str
    tenant_id: int | None
    kind: str
    payload: Any
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    tigerpaw_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    done_at: dt.datetime | None


@dataclass(frozen=True, kw_only=True)
class NewHistory:
    """A change made in Tigerpaw, to be kept: what it was before and after."""

    integration_id: str
    target: str
    action: str
    account_number: int | None = None
    tenant_id: int | None = None
    before: Any = None
    after: Any = None
    outbox_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class HistoryEntry(NewHistory):
    """A kept change, with the names it had when it was made."""

    id: int
    at: dt.datetime
    integration_name: str = ""
    tenant_name: str = ""


@dataclass(frozen=True, kw_only=True)
class TrackedOrder:
    """A service order the agent opened and has not yet seen closed."""

    id: int
    tenant_id: int
    device_id: str
    kind: str
    key: str
    order_number: int | None
    state: str
    opened_at: dt.datetime
    updated_at: dt.datetime
    #: How many times its cause was seen while it stayed open (1 when opened).
    occurrences: int = 1
