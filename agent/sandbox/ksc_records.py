"""How seed data looks through KSC's attributes: hosts, keys, events, virtual servers.

Each table maps an attribute name to a function of one record, so rows are built
only for the chunk a client reads and only with the fields it asked for.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from agent.sandbox import ksc_const as const
from agent.sandbox import seed
from agent.sandbox.ksc_values import Long


class HostRef(NamedTuple):
    """A device with the virtual server it belongs to."""

    tenant: seed.Tenant
    device: seed.Device


class KeyRef(NamedTuple):
    """A license key with the virtual server it belongs to."""

    tenant: seed.Tenant
    license: seed.License


class KeyHostRef(NamedTuple):
    """A device using a key."""

    tenant: seed.Tenant
    device: seed.Device
    license: seed.License


class EventRef(NamedTuple):
    """An event with the virtual server it was raised in."""

    tenant: seed.Tenant
    event: seed.Event


Getter = Callable[[Any], Any]


def build_row(table: dict[str, Getter], ref: Any, fields: Iterable[str]) -> dict:
    """The asked fields of one record; fields the table lacks are left out."""
    row = {}
    for name in fields:
        getter = table.get(name)
        if getter is not None:
            row[name] = getter(ref)
    return row


# Hosts.


def _split(device: seed.Device) -> bool:
    """Whether a not-protected device has no AV at all (else RTP is just stopped).

    The id decides, so the same device always falls on the same side.
    """
    return int(device.id.replace("-", "")[:8], 16) % 2 == 0


def status_mask(device: seed.Device) -> int:
    """KLHST_WKS_STATUS_MASK from the device's problems."""
    mask = 0
    if seed.NOT_PROTECTED in device.problems:
        bit = (
            const.MASK_AV_NOT_INSTALLED
            if _split(device)
            else const.MASK_RTP_NOT_RUNNING
        )
        mask |= 1 << bit
    if seed.DATABASES_OUTDATED in device.problems:
        mask |= 1 << const.MASK_BASES_OUTDATED
    if seed.THREATS_NOT_CURED in device.problems:
        mask |= 1 << const.MASK_TOO_MANY_UNCURED
    if seed.NOT_SEEN in device.problems:
        mask |= 1 << const.MASK_AGENT_INACTIVE_LONG
    return mask


def host_status(device: seed.Device) -> int:
    """KLHST_WKS_STATUS bits: visible, in a group, agent, agent alive, RTP."""
    status = const.STATUS_IN_GROUP
    seen = seed.NOT_SEEN not in device.problems
    if seen:
        status |= const.STATUS_VISIBLE
    if device.kind != seed.MOBILE:
        status |= const.STATUS_NAGENT
        if seen:
            status |= const.STATUS_NAGENT_ALIVE
    if not (seed.NOT_PROTECTED in device.problems and _split(device)):
        status |= const.STATUS_RTP_INSTALLED
    return status


def _rtp_state(device: seed.Device) -> int:
    """KLHST_WKS_RTP_STATE from the protection problem, if any."""
    if seed.NOT_PROTECTED not in device.problems:
        return const.RTP_RUNNING
    return const.RTP_UNKNOWN if _split(device) else const.RTP_STOPPED


def _ip_long(device: seed.Device) -> Long:
    """The device's IPv4 address as a number."""
    return Long(int(ipaddress.IPv4Address(device.ip)))


def _domain(tenant: seed.Tenant) -> str:
    """The tenant's Windows domain name, made from its company name."""
    return "".join(ch for ch in tenant.name.upper() if ch.isalnum())[:15]


def group_id(tenant: seed.Tenant, device: seed.Device) -> int:
    """KLHST_WKS_GROUPID: the administration group that holds the device."""
    return const.host_group(tenant.number, tenant.groups, device.group)


def _group_name(device: seed.Device | None) -> str:
    """The name of the administration group that holds the device."""
    return device.group if device is not None and device.group else const.GROUP_NAME


def _mask_bit(bit: int) -> Getter:
    """A getter of one search-only KLHST_WKS_STATUS_MASK_<n> bit."""
    return lambda ref: bool(status_mask(ref.device) & (1 << bit))


HOST_ATTRIBUTES: dict[str, Getter] = {
    "KLHST_WKS_HOSTNAME": lambda ref: ref.device.id,
    "KLHST_WKS_DN": lambda ref: ref.device.name,
    "KLHST_WKS_GROUPID": lambda ref: group_id(ref.tenant, ref.device),
    "KLHST_WKS_WINHOSTNAME": lambda ref: ref.device.name.upper(),
    "KLHST_WKS_WINDOMAIN": lambda ref: _domain(ref.tenant),
    "KLHST_WKS_DNSNAME": lambda ref: ref.device.name.lower(),
    "KLHST_WKS_DNSDOMAIN": lambda ref: _domain(ref.tenant).lower() + ".local",
    "KLHST_WKS_IP_LONG": _ip_long,
    "KLHST_WKS_LAST_VISIBLE": lambda ref: ref.device.last_seen,
    "KLHST_WKS_LAST_INFOUDATE": lambda ref: ref.device.last_seen,
    "KLHST_WKS_LAST_NAGENT_CONNECTED": lambda ref: ref.device.last_seen,
    "KLHST_WKS_LAST_UPDATE": lambda ref: ref.device.bases_time,
    "KLHST_WKS_LAST_FULLSCAN": lambda ref: ref.device.last_seen - dt.timedelta(days=2),
    "KLHST_WKS_VIRUS_COUNT": lambda ref: Long(ref.device.virus_count),
    "KLHST_WKS_UNCURED_COUNT": lambda ref: Long(ref.device.uncured_count),
    "KLHST_WKS_RTP_STATE": lambda ref: _rtp_state(ref.device),
    "KLHST_WKS_RTP_AV_VERSION": lambda ref: const.PRODUCTS[ref.device.kind][2],
    "KLHST_WKS_RTP_AV_BASES_TIME": lambda ref: ref.device.bases_time,
    "KLHST_WKS_NAG_VERSION": lambda ref: (
        "" if ref.device.kind == seed.MOBILE else const.NAGENT_VERSION
    ),
    "KLHST_WKS_OS_NAME": lambda ref: ref.device.os_name,
    "KLHST_WKS_CTYPE": lambda ref: const.COMPUTER_TYPE[ref.device.kind],
    "KLHST_WKS_STATUS": lambda ref: host_status(ref.device),
    "KLHST_WKS_STATUS_ID": lambda ref: const.STATUS_ID[ref.device.status],
    "KLHST_WKS_STATUS_MASK": lambda ref: status_mask(ref.device),
}
#: Attributes a filter may test but a client cannot ask to be returned.
HOST_SEARCH_ONLY: dict[str, Getter] = {
    "KLHST_WKS_GROUPID_GP": lambda ref: const.vserver_groups(ref.tenant.number)[1],
    **{
        f"KLHST_WKS_STATUS_MASK_{bit}": _mask_bit(bit)
        for bit in const.SEARCH_ONLY_MASK_BITS
    },
}
HOST_FILTERABLE = {**HOST_ATTRIBUTES, **HOST_SEARCH_ONLY}
DEFAULT_HOST_FIELDS = ("KLHST_WKS_HOSTNAME", "KLHST_WKS_DN")


# License keys.


def key_type(lic: seed.License) -> int:
    """KLLIC_KEY_TYPE: trial, commercial, or a (paused or cancelled) subscription."""
    if lic.kind == "trial":
        return const.KEY_TYPE_TRIAL
    if lic.state in (seed.SUSPENDED, seed.CANCELLED):
        return const.KEY_TYPE_SUBSCRIPTION
    return const.KEY_TYPE_COMMERCIAL


def _subscription(lic: seed.License) -> bool:
    """Whether the key shows as a subscription."""
    return key_type(lic) == const.KEY_TYPE_SUBSCRIPTION


def _end_type(lic: seed.License) -> int:
    """KLLIC_SUBSCRINFO_ENDDATETYPE: paused, limited (cancelled) or not a
    subscription."""
    if not _subscription(lic):
        return const.SUBSCRIPTION_END_NONE
    if lic.state == seed.CANCELLED:
        return const.SUBSCRIPTION_END_LIMITED
    return const.SUBSCRIPTION_END_PAUSED


def _subscription_state(lic: seed.License) -> int | None:
    """KLLIC_SUBSCRINFO_STATE: hard-cancelled or paused; None for other keys."""
    if not _subscription(lic):
        return None
    if lic.state == seed.CANCELLED:
        return const.SUBSCRIPTION_HARD_CANCELLED
    return const.SUBSCRIPTION_PAUSED


def hosts_using(ref: KeyRef) -> int:
    """KLLIC_NHOSTS_ASCURRENT: devices using the key, plus protected mailboxes."""
    return (
        len(ref.tenant.devices_using(ref.license.serial)) + ref.license.mailboxes_used
    )


def _key_info(ref: KeyRef) -> str:
    """KLLIC_LICINFO text."""
    lic = ref.license
    return f"{lic.product}, {lic.seats} nodes, {const.LICENSE_PERIOD_DAYS} days"


KEY_ATTRIBUTES: dict[str, Getter] = {
    "KLLIC_SERIAL": lambda ref: ref.license.serial,
    "KLLIC_APP_ID": lambda ref: ref.license.app_id,
    "KLLIC_PROD_SUITE_ID": lambda ref: const.PRODUCT_SUITES[ref.license.app_id][0],
    "KLLIC_PROD_NAME": lambda ref: ref.license.product,
    "KLLIC_KEY_TYPE": lambda ref: key_type(ref.license),
    "KLLIC_MAJ_VER": lambda ref: const.PRODUCT_SUITES[ref.license.app_id][1],
    "KLLIC_LIMIT_DATE": lambda ref: ref.license.expires,
    "KLLIC_CREATION_DATE": lambda ref: (
        ref.license.expires - dt.timedelta(days=const.LICENSE_PERIOD_DAYS)
    ),
    "KLLIC_LICENSE_PERIOD": lambda ref: const.LICENSE_PERIOD_DAYS,
    "KLLIC_LIC_COUNT": lambda ref: ref.license.seats,
    "KLLIC_LICINFO": _key_info,
    "KLLIC_SUPPORT_INFO": lambda ref: "",
    "KLLIC_CUSTOMER_INFO": lambda ref: ref.tenant.name,
    "KLLIC_NHOSTS_ASCURRENT": hosts_using,
    "KLLIC_NHOSTS_ASNEXT": lambda ref: 0,
    "KLLICSRV_KEY_INSTALLED": lambda ref: True,
    "KLLIC_LICTYPE_IS_SUBSCRIPTION": lambda ref: _subscription(ref.license),
    "KLLIC_SUBSCRINFO_ENDDATE": lambda ref: (
        ref.license.expires if _subscription(ref.license) else None
    ),
    "KLLIC_SUBSCRINFO_ENDDATETYPE": lambda ref: _end_type(ref.license),
    "KLLIC_SUBSCRINFO_STATE": lambda ref: _subscription_state(ref.license),
    "KLLIC_SUBSCRINFO_GRACETERM": lambda ref: 0,
}

KEY_HOST_ATTRIBUTES: dict[str, Getter] = {
    "KLLICSRV_HOSTNAME": lambda ref: ref.device.id,
    "KLLICSRV_HOSTDN": lambda ref: ref.device.name,
    "KLLICSRV_HOST_GRPID": lambda ref: str(group_id(ref.tenant, ref.device)),
    "KLLICSRV_HOST_GRPNAME": lambda ref: _group_name(ref.device),
    "KLLICSRV_HOST_CURRENT": lambda ref: True,
    "KLLICSRV_EXPIRATION_TIME": lambda ref: ref.license.expires,
    "KLLICSRV_INSTALL_TIME": lambda ref: (
        ref.license.expires - dt.timedelta(days=const.LICENSE_PERIOD_DAYS - 1)
    ),
    "KLLICSRV_PRODUCT": lambda ref: const.KEY_PRODUCTS[ref.license.app_id],
    "KLLICSRV_VERSION": lambda ref: const.PRODUCTS[ref.device.kind][1],
    "KLLIC_LIC_IS_PENDING_SUBSCRIPTION": lambda ref: False,
}


# Events.


def _event_device(ref: EventRef) -> seed.Device | None:
    """The device an event was raised on, if it still exists."""
    return ref.tenant.device(ref.event.device_id)


def _event_product(ref: EventRef, index: int) -> str:
    """A product name, version or display version for an event."""
    device = _event_device(ref)
    return const.PRODUCTS[device.kind if device else seed.WORKSTATION][index]


def _event_group(ref: EventRef) -> int:
    """The group of the event's device now (managed devices when it is gone)."""
    device = _event_device(ref)
    if device is None:
        return const.vserver_groups(ref.tenant.number)[1]
    return group_id(ref.tenant, device)


def _event_description(ref: EventRef) -> str:
    """GNRL_EA_DESCRIPTION: what happened, where, and the threat."""
    event = ref.event
    text = f"{event.description} on {event.device_name}"
    return f"{text}: {event.threat}" if event.threat else text


EVENT_ATTRIBUTES: dict[str, Getter] = {
    "event_db_id": lambda ref: Long(ref.event.id),
    "event_id": lambda ref: Long(ref.event.id),
    "event_type": lambda ref: ref.event.type,
    "event_type_display_name": lambda ref: ref.event.description,
    "event_type_id": lambda ref: const.EVENT_TYPE_IDS.get(ref.event.type, 0),
    "rise_time": lambda ref: ref.event.time,
    "registration_time": lambda ref: ref.event.time,
    "GNRL_EA_SEVERITY": lambda ref: const.EVENT_SEVERITY[ref.event.severity],
    "GNRL_EA_DESCRIPTION": _event_description,
    "GNRL_EA_ID": lambda ref: ref.event.id,
    "GNRL_EA_PARAM_2": lambda ref: (
        f"C:\\Users\\Public\\Downloads\\{ref.event.id}.tmp"
        if ref.event.threat
        else None
    ),
    "GNRL_EA_PARAM_5": lambda ref: ref.event.threat,
    "hostname": lambda ref: ref.event.device_id,
    "hostdn": lambda ref: ref.event.device_name,
    "domain_name": lambda ref: _domain(ref.tenant),
    "group_id": lambda ref: _event_group(ref),
    "group_name": lambda ref: _group_name(_event_device(ref)),
    "product_name": lambda ref: _event_product(ref, 0),
    "product_version": lambda ref: _event_product(ref, 1),
    "product_displ_version": lambda ref: _event_product(ref, 2),
    "task_display_name": lambda ref: (
        "Update" if ref.event.type == "KLPRCI_TaskState" else None
    ),
}


# Virtual servers.


def vserver_attributes(tenant: seed.Tenant) -> dict[str, Any]:
    """The attributes of a virtual server (VServers.GetVServers and Info)."""
    super_group, managed, unassigned = const.vserver_groups(tenant.number)
    return {
        "KLVSRV_ID": tenant.number,
        "KLVSRV_DN": tenant.name,
        "KLVSRV_UID": tenant.uid,
        "KLVSRV_HST_UID": f"vs-{tenant.uid}",
        "KLVSRV_GRP": const.MAIN_MANAGED_GROUP,
        "KLVSRV_GROUPS": managed,
        "KLVSRV_SUPER": super_group,
        "KLVSRV_UNASSIGNED": unassigned,
        "KLVSRV_ENABLED": True,
        "KLVSRV_LIC_ENABLED": True,
        "KLVSRV_NEW_HOSTS_PROHIBITED": False,
        "KLVSRV_TOO_MUCH_HOSTS": False,
        "KLVSRV_CREATED": tenant.created,
    }


def vserver_statistic(tenant: seed.Tenant) -> dict[str, Any]:
    """VServers2.GetVServerStatistic: hosts, groups, keys and product counts."""
    products: dict[str, dict[str, int]] = {}
    for device in tenant.devices:
        name, version, _ = const.PRODUCTS[device.kind]
        versions = products.setdefault(name, {})
        versions[version] = versions.get(version, 0) + 1
    return {
        "KLVSRV_HOSTS": len(tenant.devices),
        "KLVSRV_GROUPS": 1 + len(tenant.groups),
        "KLVSRV_USERS": 1,
        "KLVSRV_CREATED": tenant.created,
        "KLVSRV_LICENSES": [
            {
                "KLLIC_SERIAL": lic.serial,
                "KLLIC_PROD_NAME": lic.product,
                "KLLIC_KEY_TYPE": key_type(lic),
                "KLLIC_LIMIT_DATE": lic.expires,
            }
            for lic in tenant.licenses
        ],
        "KLVSRV_PRODUCTS": {
            name: {
                version: {"KLVSRV_PROD_CNT": count}
                for version, count in versions.items()
            }
            for name, versions in products.items()
        },
    }
