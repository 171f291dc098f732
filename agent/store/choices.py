"""Per-integration sync choices: service order settings and price book items.

They are kept as one JSON document per integration, checked on the way in and out, so
that a new choice needs no migration while a malformed one never reaches the sync.

Device status rows come in two sections, Warning status and Critical status, each
with a row per status description; a row is keyed ``"<level>:<description>"``
(``"warning:databases_outdated"``). Choices saved before the sections existed key a
row by its description alone: such a row reads as the same rule in both sections.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.errors import SetupError, StoreError
from agent.store.db import Database, to_db_time, utcnow
from agent.store.integrations import require_integration

logger = logging.getLogger(__name__)

#: Event severities that can open orders, as the sources name them, with page labels.
SEVERITY_LABELS = {
    "critical": "Critical",
    "functional_failure": "Functional failure",
    "warning": "Warning",
}
SEVERITIES = tuple(SEVERITY_LABELS)
DEFAULT_LIFETIME_DAYS = 1
MAX_LIFETIME_DAYS = 3650
#: Device status levels, as the sources name them, with their sections' names.
STATUS_WARNING, STATUS_CRITICAL = "warning", "critical"
STATUS_LEVEL_LABELS = {
    STATUS_WARNING: "Warning status",
    STATUS_CRITICAL: "Critical status",
}
STATUS_LEVELS = tuple(STATUS_LEVEL_LABELS)


def status_key(level: str, name: str) -> str:
    """How SyncChoices.device_statuses names the row of a description in a section."""
    return f"{level}:{name}"


def split_status_key(key: str) -> tuple[str, str]:
    """The section and description of a device status row's key; the section is ""
    for a key saved before the sections existed (it stands for both)."""
    level, colon, name = key.partition(":")
    if colon and level in STATUS_LEVEL_LABELS:
        return level, name
    return "", key


def rows_by_level(statuses: Mapping[str, OrderRule]) -> dict[str, OrderRule]:
    """Device status rows, each keyed by its section: a row saved under its
    description alone stands for the same rule in both sections, unless a row
    keyed with the section says otherwise."""
    found: dict[str, OrderRule] = {}
    named: dict[str, OrderRule] = {}
    for key, rule in statuses.items():
        level, name = split_status_key(key)
        if level:
            named[key] = rule
        else:
            found.update({status_key(each, name): rule for each in STATUS_LEVELS})

    found.update(named)
    return found


@dataclass(frozen=True, kw_only=True)
class OrderRule:
    """When and how one event severity or device status opens a service order."""

    enabled: bool = False
    priority: str = ""
    order_type: str = ""
    board: str = ""
    #: Events only: older events open no order (after an outage, for example).
    lifetime_days: int = DEFAULT_LIFETIME_DAYS


def _default_events() -> dict[str, OrderRule]:
    """One rule per severity, all off, as a new integration starts."""
    return {severity: OrderRule() for severity in SEVERITIES}


@dataclass(frozen=True, kw_only=True)
class SyncChoices:
    """Everything a person chooses about how an integration writes to Tigerpaw."""

    rep: str = ""
    new_status: str = ""
    closed_status: str = ""
    #: Severity (see SEVERITIES) to its rule; every severity is always present.
    events: dict[str, OrderRule] = field(default_factory=_default_events)
    #: "<level>:<description>" (a level of STATUS_LEVELS; a source's problem word, or
    #: a description in words) to its rule. A key without a level, as choices saved
    #: before the Warning and Critical sections have, is read as both levels' row.
    device_statuses: dict[str, OrderRule] = field(default_factory=dict)
    #: License type, or "license type/device class" when billing by category, to a
    #: Tigerpaw price book item; unlisted types are not billed.
    price_book_items: dict[str, str] = field(default_factory=dict)
    bill_by_category: bool = False

    def __post_init__(self) -> None:
        """Key every device status row by its section (see rows_by_level)."""
        if isinstance(self.device_statuses, Mapping):
            # Frozen: the one way to normalise a field while it is being built.
            object.__setattr__(
                self, "device_statuses", rows_by_level(self.device_statuses)
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the choices."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SyncChoices:
        """Check and read choices; SetupError names the first bad field."""
        if not isinstance(data, dict):
            raise SetupError(
                "The sync choices are not a set of fields", field="choices"
            )
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise SetupError(
                f"Unknown sync choice {sorted(unknown)[0]!r}: reload the page",
                field=sorted(unknown)[0],
            )

        events = _default_events()
        for severity, rule in _mapping(data.get("events", {}), "events").items():
            if severity not in SEVERITY_LABELS:
                raise SetupError(
                    f"Unknown event severity {severity!r}: choose one of "
                    f"{', '.join(SEVERITY_LABELS.values())}",
                    field="events",
                )
            events[severity] = _rule(rule, f"events.{severity}")
        statuses = {
            _status_key(name): _rule(rule, f"device_statuses.{name}")
            for name, rule in _mapping(data.get("device_statuses", {}), "").items()
        }
        items = {
            _key(name, "price_book_items"): _text(item, f"price_book_items.{name}")
            for name, item in _mapping(data.get("price_book_items", {}), "").items()
        }
        return cls(
            rep=_text(data.get("rep", ""), "rep"),
            new_status=_text(data.get("new_status", ""), "new_status"),
            closed_status=_text(data.get("closed_status", ""), "closed_status"),
            events=events,
            device_statuses=statuses,
            price_book_items={k: v for k, v in items.items() if v},
            bill_by_category=_flag(
                data.get("bill_by_category", False), "bill_by_category"
            ),
        )

    def status_rule(self, level: str, *names: str) -> OrderRule | None:
        """The row of a section (a level of STATUS_LEVELS) for the first of
        ``names`` that has one (a problem word, its description), in any case."""
        rows = {}
        for key, rule in self.device_statuses.items():
            section, name = split_status_key(key)
            if section == level:
                rows[name.strip().casefold()] = rule

        found = (rows.get(name.strip().casefold()) for name in names)
        return next((rule for rule in found if rule is not None), None)

    def missing(self) -> list[str]:
        """Required fields still blank while a rule would open orders."""
        rules = list(self.events.values()) + list(self.device_statuses.values())
        if not any(rule.enabled for rule in rules):
            return []
        required = {
            "rep": self.rep,
            "new_status": self.new_status,
            "closed_status": self.closed_status,
        }
        return [name for name, value in required.items() if not value]


def _mapping(value: Any, name: str) -> dict[str, Any]:
    """A JSON object, or SetupError."""
    if not isinstance(value, dict):
        raise SetupError(f"The sync choice {name or 'list'} is malformed", field=name)
    return value


def _key(value: Any, name: str) -> str:
    """A non-blank key of a choices table."""
    if not isinstance(value, str) or not value.strip():
        raise SetupError(f"A row of {name} has no name", field=name)
    return value.strip()


def _status_key(value: Any) -> str:
    """A device status row's key, its section kept and its description trimmed."""
    key = _key(value, "device_statuses")
    level, name = split_status_key(key)
    if not level:
        return key
    return status_key(level, _key(name, "device_statuses"))


def _text(value: Any, name: str) -> str:
    """A trimmed text field."""
    if not isinstance(value, str):
        raise SetupError(f"The sync choice {name} must be text", field=name)
    return value.strip()


def _flag(value: Any, name: str) -> bool:
    """An on/off field."""
    if not isinstance(value, bool):
        raise SetupError(f"The sync choice {name} must be on or off", field=name)
    return value


def _rule(value: Any, name: str) -> OrderRule:
    """One OrderRule from its dict."""
    if isinstance(value, OrderRule):
        value = asdict(value)
    data = _mapping(value, name)
    unknown = set(data) - set(OrderRule.__dataclass_fields__)
    if unknown:
        raise SetupError(
            f"Unknown setting {sorted(unknown)[0]!r} in {name}", field=name
        )

    lifetime = data.get("lifetime_days", DEFAULT_LIFETIME_DAYS)
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 1 <= lifetime <= MAX_LIFETIME_DAYS
    ):
        raise SetupError(
            f"Lifetime in {name} must be a whole number of days from 1 to "
            f"{MAX_LIFETIME_DAYS}",
            field=f"{name}.lifetime_days",
        )
    return OrderRule(
        enabled=_flag(data.get("enabled", False), f"{name}.enabled"),
        priority=_text(data.get("priority", ""), f"{name}.priority"),
        order_type=_text(data.get("order_type", ""), f"{name}.order_type"),
        board=_text(data.get("board", ""), f"{name}.board"),
        lifetime_days=lifetime,
    )


class ChoicesRepo:
    """Store methods for sync choices."""

    _db: Database

    def get_sync_choices(self, integration_id: str) -> SyncChoices:
        """The integration's choices; the defaults when none were saved."""
        with self._db.read() as conn:
            integration = require_integration(conn, integration_id)
            row = conn.execute(
                "SELECT choices FROM sync_choices WHERE integration_id = ?",
                (integration_id,),
            ).fetchone()
        if row is None:
            return SyncChoices()

        try:
            return SyncChoices.from_dict(json.loads(row["choices"]))
        except (ValueError, SetupError) as err:
            raise StoreError(
                f"The saved sync choices of {integration.name} cannot be read ({err}): "
                "open the integration's settings and save them again"
            ) from err

    def set_sync_choices(
        self,
        integration_id: str,
        choices: SyncChoices,
        *,
        now: dt.datetime | None = None,
    ) -> SyncChoices:
        """Check and save the integration's choices; SetupError names a bad field."""
        checked = SyncChoices.from_dict(choices.to_dict())
        document = json.dumps(checked.to_dict(), sort_keys=True)

        with self._db.write() as conn:
            integration = require_integration(conn, integration_id)
            conn.execute(
                "INSERT INTO sync_choices (integration_id, choices, updated_at) "
                "VALUES (?, ?, ?) ON CONFLICT (integration_id) DO UPDATE SET "
                "choices = excluded.choices, updated_at = excluded.updated_at",
                (integration_id, document, to_db_time(now or utcnow())),
            )

        logger.info("Saved the sync choices of %s", integration.name)
        return checked
