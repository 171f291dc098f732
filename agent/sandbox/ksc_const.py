"""Every choice the KSC emulator makes where the KSC Open API spec is silent or unsure.

Values marked *documented* come from Kaspersky's KSC Open API pages; the rest are
*modelled*: plausible, kept here in one place, and listed in agent/sandbox/README.md
as not confirmed against a real Administration Server.
"""

from __future__ import annotations

# Addresses and credentials.

API_PREFIX = "/api/v1.0/"
LOGIN_PATH = API_PREFIX + "login"
DEFAULT_USER = "klapi-sandbox"
DEFAULT_PASSWORD = "Sandbox-KSC-1!"
#: The Windows domain of the sandbox account (modelled); "" is accepted too.
SANDBOX_DOMAIN = "SANDBOX"

# Lifetimes, in seconds.

#: Token sessions end after this idle time (modelled on go-ksc's "3 minutes").
SESSION_IDLE_SECONDS = 180.0
#: HostGroup.FindHosts caps lMaxLifeTime here (documented); 0 or absent gets the cap.
ACCESSOR_MAX_LIFETIME = 7200
#: LicenseKeys iterators: lTimeoutSec 0 means 15 minutes (documented); cap modelled.
ITERATOR_DEFAULT_LIFETIME = 900
ITERATOR_MAX_LIFETIME = 7200
#: EventProcessing iterators: lifetimeSec 0 or absent (modelled) and the cap.
EVENTS_DEFAULT_LIFETIME = 7200
EVENTS_MAX_LIFETIME = 7200

# PxgError codes: (module, code, mnemonic); the numbers are documented in
# "Some error definitions", which error goes with which case is modelled.

ERR_NO_ACCESS = ("KLSTD", 1184, "STDE_NOACCESS")
ERR_NOT_FOUND = ("KLSTD", 1186, "STDE_NOTFOUND")
ERR_BAD_FORMAT = ("KLSTD", 1192, "STDE_BADFORMAT")
ERR_NOT_PERMITTED = ("KLSTD", 1193, "STDE_NOTPERM")
ERR_NO_SUCH_CALL = ("KLCONN", 1194, "GCR_NO_SUCH_CALL")
ERR_LOGON_FAILED = ("KLWAT", 1453, "ERR_LOGON_IFAILED")

# Groups: every virtual server gets its own group ids (modelled numbering).

MAIN_MANAGED_GROUP = 0
GROUP_NAME = "Managed devices"


def vserver_groups(number: int) -> tuple[int, int, int]:
    """(super group, managed-devices group, unassigned group) of virtual server N."""
    base = 1000 + number * 10
    return base, base + 1, base + 2


def host_group(number: int, groups: list[str], group: str) -> int:
    """The id of a group of virtual server N that holds hosts: "" is the
    managed-devices group, another name a group below it (the n-th one made there
    is 100000 + 1000 N + n)."""
    if not group:
        return vserver_groups(number)[1]
    return 100_000 + 1000 * number + groups.index(group) + 1


# Host status (KLHST_WKS_STATUS bits are documented).

STATUS_VISIBLE = 0x1
STATUS_IN_GROUP = 0x2
STATUS_NAGENT = 0x4
STATUS_NAGENT_ALIVE = 0x8
STATUS_RTP_INSTALLED = 0x10

#: KLHST_WKS_STATUS_ID values (documented).
STATUS_ID = {"ok": 0, "critical": 1, "warning": 2}

#: KLHST_WKS_STATUS_MASK bit numbers (documented); which seed problem sets which
#: bit is modelled.
MASK_RTP_NOT_RUNNING = 1
MASK_AV_NOT_INSTALLED = 5
MASK_BASES_OUTDATED = 7
MASK_AGENT_INACTIVE_LONG = 8
MASK_TOO_MANY_UNCURED = 10
#: Search-only KLHST_WKS_STATUS_MASK_<n> fields exist for bits 0..8 (documented).
SEARCH_ONLY_MASK_BITS = range(0, 9)

#: KLHST_WKS_RTP_STATE (modelled): 0 unknown, 1 stopped, 4 running.
RTP_UNKNOWN, RTP_STOPPED, RTP_RUNNING = 0, 1, 4

#: KLHST_WKS_CTYPE bits (documented "Windows Network Host Type"): how a client tells
#: a workstation (CT_WORKSTATION without CT_SERVER), a server (CT_SERVER) and a
#: mobile device (CT_UNKNOWN, 0: no Windows network type) apart (modelled use).
CT_WORKSTATION = 0x1
CT_SERVER = 0x2
CT_NT = 0x1000
CT_SERVER_NT = 0x8000
COMPUTER_TYPE = {
    "workstation": CT_WORKSTATION | CT_NT,
    "server": CT_WORKSTATION | CT_SERVER | CT_NT | CT_SERVER_NT,
    "mobile": 0,
}

#: Internal product names and versions per device kind (modelled).
PRODUCTS = {
    "workstation": ("KES", "11.0.0.0", "12.5.0.477"),
    "server": ("WSEE", "11.0.0.0", "12.0.0.2243"),
    "mobile": ("KESMOB", "10.0.0.0", "11.112.4.4812"),
}
NAGENT_VERSION = "15.1.0.20748"

# License keys.

#: KLLIC_KEY_TYPE values (documented): 1 commercial, 3 trial, 6 subscription. The
#: seed's "suspended" and "cancelled" commercial keys are shown as subscriptions,
#: paused and hard-cancelled (modelled).
KEY_TYPE_COMMERCIAL = 1
KEY_TYPE_TRIAL = 3
KEY_TYPE_SUBSCRIPTION = 6
#: KLLIC_SUBSCRINFO_ENDDATETYPE and KLLIC_SUBSCRINFO_STATE values (documented). A
#: cancelled key is shown as a hard-cancelled subscription with a limited end date
#: (modelled: a commercial key has no cancelled state of its own).
SUBSCRIPTION_END_NONE, SUBSCRIPTION_END_LIMITED, SUBSCRIPTION_END_PAUSED = 0, 2, 3
SUBSCRIPTION_ACTIVE, SUBSCRIPTION_PAUSED = 0, 1
SUBSCRIPTION_SOFT_CANCELLED, SUBSCRIPTION_HARD_CANCELLED = 2, 3
LICENSE_PERIOD_DAYS = 365
#: KLLIC_PROD_SUITE_ID and KLLIC_MAJ_VER per KLLIC_APP_ID (modelled).
PRODUCT_SUITES = {1103: (1501, "11"), 1949: (1610, "11"), 2301: (1900, "1")}
#: KLLICSRV_PRODUCT per KLLIC_APP_ID, for hosts using a key (modelled).
KEY_PRODUCTS = {1103: "KES", 1949: "WSEE", 2301: "KSMO365"}

# Events.

#: GNRL_EA_SEVERITY per seed severity (documented scale, modelled mapping).
EVENT_SEVERITY = {"critical": 4, "functional_failure": 3, "warning": 2, "info": 1}
#: event_type_id per event type (modelled numbers).
EVENT_TYPE_IDS = {
    "GNRL_EV_VIRUS_FOUND": 1,
    "GNRL_EV_OBJECT_NOTCURED": 2,
    "GNRL_EV_ATTACK_DETECTED": 3,
    "KLPRCI_TaskState": 4,
    "GNRL_EV_LICENSE_EXPIRED": 5,
    "GNRL_EV_SUSPICIOUS_OBJECT_FOUND": 6,
    "GNRL_EV_OBJECT_QUARANTINED": 7,
    "GNRL_EV_OBJECT_CURED": 8,
}
#: The pFilter keys of CreateEventProcessing2 the emulator understands (documented
#: names); any other KLEVP_ key is refused so that a client learns of it.
EVENT_FILTER_LAST_DAYS = "KLEVP_EVENT_RISE_TIME_LAST_DAYS"
EVENT_FILTER_RFC2254 = "KLEVP_RFC2254_FILTER"
