"""KSC's host, key, event and virtual-server attributes read into the agent's records.

Which attribute means what follows specs/ksc-open-api.md; where the spec leaves a
choice open, the choice is stated beside the table that makes it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from agent.sources import records
from agent.sources.ksc_wire import parse_datetime

logger = logging.getLogger(__name__)

# Hosts.

HOSTNAME = "KLHST_WKS_HOSTNAME"
HOST_FIELDS = (
    HOSTNAME,
    "KLHST_WKS_DN",
    "KLHST_WKS_CTYPE",
    "KLHST_WKS_OS_NAME",
    "KLHST_WKS_STATUS_ID",
    "KLHST_WKS_STATUS_MASK",
    "KLHST_WKS_LAST_VISIBLE",
    "KLHST_WKS_VIRUS_COUNT",
    "KLHST_WKS_UNCURED_COUNT",
)

#: KLHST_WKS_STATUS_ID (documented): 0 OK, 1 critical, 2 warning.
STATUS_IDS = {0: "ok", 1: "critical", 2: "warning"}

#: KLHST_WKS_STATUS_MASK bits (documented) and the problem each stands for. Bit 0
#: ("agent inactive") is a short absence and bit 3 ("too many viruses") counts
#: threats already handled, so neither opens a problem on its own.
MASK_PROBLEMS = {
    1: records.NOT_PROTECTED,  # real-time protection not running
    2: records.NOT_PROTECTED,  # anti-virus installed but not running
    5: records.NOT_PROTECTED,  # anti-virus not installed
    7: records.DATABASES_OUTDATED,  # anti-virus databases too old
    8: records.NOT_SEEN,  # Network Agent inactive for too long
    10: records.THREATS_NOT_CURED,  # too many uncured objects
}

#: KLHST_WKS_CTYPE bits (documented Windows network host type).
CT_WORKSTATION, CT_SERVER = 0x1, 0x2
#: Words in an OS name that mark a phone or tablet when CTYPE names no Windows type.
MOBILE_SYSTEMS = ("android", "ios", "ipados")

# License keys.

SERIAL = "KLLIC_SERIAL"
KEY_FIELDS = (
    SERIAL,
    "KLLIC_PROD_NAME",
    "KLLIC_KEY_TYPE",
    "KLLIC_LIC_COUNT",
    "KLLIC_LIMIT_DATE",
    "KLLIC_NHOSTS_ASCURRENT",
    "KLLIC_LICTYPE_IS_SUBSCRIPTION",
    "KLLIC_SUBSCRINFO_STATE",
    "KLLIC_SUBSCRINFO_ENDDATE",
    "KLLIC_SUBSCRINFO_ENDDATETYPE",
)
KEY_HOST = "KLLICSRV_HOSTNAME"

#: KLLIC_KEY_TYPE (documented): 1 commercial, 3 trial, 6 subscription. Any other type
#: is read as trial, so that nothing the agent cannot name is billed.
KEY_KINDS = {1: "commercial", 3: "trial", 6: "commercial"}
#: KLLIC_SUBSCRINFO_STATE (documented): 0 active, 1 paused, 2 soft-cancelled, 3
#: hard-cancelled. Both cancelled states are "cancelled": the customer ended the
#: subscription, so its devices are not billed even while it runs out its term.
SUBSCRIPTION_STATES = {0: "active", 1: "suspended", 2: "cancelled", 3: "cancelled"}
#: KLLIC_SUBSCRINFO_ENDDATETYPE 3 means paused (documented).
SUBSCRIPTION_PAUSED = 3

# Events.

EVENT_ID = "event_db_id"
EVENT_FIELDS = (
    EVENT_ID,
    "event_type",
    "event_type_display_name",
    "rise_time",
    "GNRL_EA_SEVERITY",
    "GNRL_EA_DESCRIPTION",
    "GNRL_EA_PARAM_5",
    "hostname",
    "hostdn",
)
#: GNRL_EA_SEVERITY (documented 0 invalid, 1 info, 2 warning, 3 error, 4 critical);
#: KSC's console calls "error" a functional failure.
SEVERITIES = {4: "critical", 3: "functional_failure", 2: "warning", 1: "info"}
#: Events whose GNRL_EA_PARAM_5 is the threat's name (documented for virus events).
THREAT_EVENTS = frozenset(
    {
        "GNRL_EV_VIRUS_FOUND",
        "GNRL_EV_OBJECT_CURED",
        "GNRL_EV_OBJECT_DELETED",
        "GNRL_EV_OBJECT_QUARANTINED",
        "GNRL_EV_OBJECT_NOTCURED",
        "GNRL_EV_SUSPICIOUS_OBJECT_FOUND",
        "GNRL_EV_ATTACK_DETECTED",
    }
)

# Values KSC sent that this agent does not know, each reported once.
_reported: set[tuple[str, str]] = set()


def _unknown(what: str, value: Any, default: str) -> str:
    """Report (once) a value from KSC this agent cannot name; use ``default``."""
    if (what, repr(value)) not in _reported:
        _reported.add((what, repr(value)))
        logger.warning(
            "KSC sent the %s %r, which this agent does not know; it reads it as %r",
            what,
            value,
            default,
        )
    return default


def _text(row: dict[str, Any], name: str) -> str:
    """An attribute that must be present and not blank."""
    value = row.get(name)
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise ValueError(f"{name} is missing or blank")
    return str(value)


def _number(row: dict[str, Any], name: str) -> int:
    """An integer attribute; absent is 0."""
    value = row.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is not a number: {value!r}")
    return value


# Virtual servers.


def parse_vserver(row: dict[str, Any]) -> records.Tenant | None:
    """A virtual server as a tenant (id KLVSRV_UID); None when it is disabled."""
    if row.get("KLVSRV_ENABLED") is False:
        return None
    return records.Tenant(
        source=records.KSC, id=_text(row, "KLVSRV_UID"), name=_text(row, "KLVSRV_DN")
    )


# Hosts.


def device_kind(ctype: Any, os_name: str) -> str:
    """Server, workstation or mobile from KLHST_WKS_CTYPE (and the OS for phones)."""
    if isinstance(ctype, int) and not isinstance(ctype, bool):
        if ctype & CT_SERVER:
            return records.SERVER
        if ctype & CT_WORKSTATION:
            return records.WORKSTATION
        system = os_name.casefold()
        if ctype == 0 and (not system or system.startswith(MOBILE_SYSTEMS)):
            return records.MOBILE
    return records.OTHER


def device_problems(mask: int, uncured: int) -> frozenset[str]:
    """The problems the bits of KLHST_WKS_STATUS_MASK (and uncured threats) name."""
    found = {word for bit, word in MASK_PROBLEMS.items() if mask & (1 << bit)}
    if uncured > 0:
        found.add(records.THREATS_NOT_CURED)
    return frozenset(found)


def parse_device(tenant_id: str, row: dict[str, Any]) -> records.Device:
    """One row of HostGroup.FindHosts as a device."""
    os_name = str(row.get("KLHST_WKS_OS_NAME") or "")
    status_id = row.get("KLHST_WKS_STATUS_ID")
    status = STATUS_IDS.get(status_id) if isinstance(status_id, int) else None
    uncured = _number(row, "KLHST_WKS_UNCURED_COUNT")
    return records.Device(
        tenant_id=tenant_id,
        id=_text(row, HOSTNAME),
        name=str(row.get("KLHST_WKS_DN") or ""),
        kind=device_kind(row.get("KLHST_WKS_CTYPE"), os_name),
        # A status we cannot read is worth a look, so it counts as a warning.
        status=status or _unknown("host status", status_id, "warning"),
        problems=device_problems(_number(row, "KLHST_WKS_STATUS_MASK"), uncured),
        last_seen=parse_datetime(row.get("KLHST_WKS_LAST_VISIBLE")),
        os_name=os_name,
        threats=uncured,
    )


# License keys.


def key_state(row: dict[str, Any], now: dt.datetime) -> str:
    """Active, expired, suspended or cancelled, from the limit date and the
    subscription (a state this agent cannot name reads as suspended: not billed)."""
    limit = parse_datetime(row.get("KLLIC_LIMIT_DATE"))
    if limit is not None and limit <= now:
        return "expired"
    if row.get("KLLIC_LICTYPE_IS_SUBSCRIPTION") is True:
        if row.get("KLLIC_SUBSCRINFO_ENDDATETYPE") == SUBSCRIPTION_PAUSED:
            return "suspended"
        state = row.get("KLLIC_SUBSCRINFO_STATE", 0)
        known = SUBSCRIPTION_STATES.get(state) if isinstance(state, int) else None
        return known or _unknown("subscription state", state, "suspended")
    return "active"


def parse_license(
    tenant_id: str,
    row: dict[str, Any],
    device_ids: tuple[str, ...],
    now: dt.datetime,
) -> records.LicenseUsage:
    """A license key with the hosts using it.

    KLLIC_NHOSTS_ASCURRENT counts hosts and, for Office 365 keys, protected
    mailboxes; a key no host uses gives its count as mailboxes.
    """
    key_type = row.get("KLLIC_KEY_TYPE")
    kind = KEY_KINDS.get(key_type) if isinstance(key_type, int) else None
    in_use = _number(row, "KLLIC_NHOSTS_ASCURRENT")
    expires = parse_datetime(row.get("KLLIC_LIMIT_DATE")) or parse_datetime(
        row.get("KLLIC_SUBSCRINFO_ENDDATE")
    )
    return records.LicenseUsage(
        tenant_id=tenant_id,
        license_id=_text(row, SERIAL),
        product=str(row.get("KLLIC_PROD_NAME") or ""),
        kind=kind or _unknown("license key type", key_type, "trial"),
        state=key_state(row, now),
        seats=_number(row, "KLLIC_LIC_COUNT"),
        expires=expires,
        device_ids=device_ids,
        mailboxes=in_use if not device_ids else 0,
    )


# Events.


def parse_event(tenant_id: str, row: dict[str, Any]) -> records.SecurityEvent:
    """One event of EventProcessing.GetRecordRange."""
    moment = parse_datetime(row.get("rise_time"))
    if moment is None:
        raise ValueError("an event has no rise_time")
    severity = row.get("GNRL_EA_SEVERITY")
    word = SEVERITIES.get(severity) if isinstance(severity, int) else None
    event_type = str(row.get("event_type") or "")
    threat = row.get("GNRL_EA_PARAM_5")
    return records.SecurityEvent(
        tenant_id=tenant_id,
        id=_text(row, EVENT_ID),
        time=moment,
        severity=word or _unknown("event severity", severity, "info"),
        type=event_type,
        device_id=str(row.get("hostname") or ""),
        device_name=str(row.get("hostdn") or ""),
        description=str(
            row.get("GNRL_EA_DESCRIPTION") or row.get("event_type_display_name") or ""
        ),
        threat=str(threat) if threat and event_type in THREAT_EVENTS else None,
    )
