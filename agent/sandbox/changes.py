"""Changes the sandbox's ``POST /_sandbox/events`` makes to a fleet: new events, device
problems, removed, renamed and moved devices, cancelled keys and subscriptions, and
Office 365 problems raised and cleared.

Both console emulators apply them through :func:`agent.sandbox.seed.apply_changes`,
under their lock; tests replay the same changes on a copy of the fleet made with the
same seed, and both must report the same.
"""

from __future__ import annotations

from agent.sandbox import ksc_const, office365
from agent.sandbox.fleet import (
    ACTIVE,
    CANCELLED,
    DATABASES_OUTDATED,
    EVENT_TEMPLATES,
    NOT_PROTECTED,
    NOT_SEEN,
    THREATS_NOT_CURED,
    Device,
    Event,
    Fleet,
    License,
    Tenant,
)
from agent.sandbox.office365 import Office365Problem

#: Every kind of change, in the order :func:`apply_changes` applies them.
KINDS = (
    "events",
    "problems",
    "remove_devices",
    "rename_devices",
    "move_devices",
    "cancel_licenses",
    "office365",
)
#: The longest device or group name a change may set.
MAX_NAME = 100


class ChangeError(ValueError):
    """A change sent to ``POST /_sandbox/events`` names something that is not there."""


def apply_changes(fleet: Fleet, payload: dict) -> dict:
    """Apply new events, device changes and Office 365 problems; return what was done.

    ``payload`` holds any of::

        {"events": [{"tenant": T, "severity": "critical", "device": D, "count": 1}],
         "problems": [{"tenant": T, "device": D, "add": [...], "clear": [...]}],
         "remove_devices": [{"tenant": T, "device": D}],
         "rename_devices": [{"tenant": T, "device": D, "name": "NEW-NAME"}],
         "move_devices": [{"tenant": T, "device": D, "group": "Servers",
                           "vserver": T2}],
         "cancel_licenses": [{"tenant": T, "license": "<serial or product>"}],
         "office365": [{"tenant": T, "raise": "license", "reason": "expired"},
                       {"tenant": T, "raise": "mailbox", "mailbox": "a@b.example"},
                       {"tenant": T, "clear": "<problem id, mailbox or license>"}]}

    where T is a tenant's number, uid or name and D a device's id or name (optional
    for events: a random device is picked). A renamed or moved device keeps its id;
    moves are KSC's (see :func:`_move_device`). Cancelling names a key by serial,
    or by product for that product's active commercial key. An Office 365 raise
    may name its event's ``severity``; raising a problem that is still current
    repeats its event. Kinds are applied in the order of :data:`KINDS`. The result
    holds ``renamed``, ``moved``, ``cancelled`` and ``office365`` lists only when
    the payload has that kind.
    """
    if not isinstance(payload, dict):
        raise ChangeError("Send the changes as a JSON object")
    unknown = set(payload) - set(KINDS)
    if unknown:
        raise ChangeError(f"Unknown change kinds: {', '.join(sorted(unknown))}")

    done: dict[str, list] = {"events": [], "problems": [], "removed": []}
    for item in payload.get("events", []):
        tenant = _find_tenant(fleet, item)
        device = _find_device(tenant, item) if item.get("device") else None
        for _ in range(int(item.get("count", 1))):
            event = fleet.raise_event(
                tenant, item.get("severity", "critical"), device=device
            )
            done["events"].append(
                {"tenant": tenant.name, "id": event.id, "device": event.device_name}
            )
    for item in payload.get("problems", []):
        tenant = _find_tenant(fleet, item)
        device = _find_device(tenant, item)
        for problem in item.get("add", []):
            _check_problem(problem)
            device.problems.add(problem)
        for problem in item.get("clear", []):
            _check_problem(problem)
            device.problems.discard(problem)
        done["problems"].append(
            {
                "tenant": tenant.name,
                "device": device.name,
                "problems": sorted(device.problems),
            }
        )
    for item in payload.get("remove_devices", []):
        tenant = _find_tenant(fleet, item)
        device = _find_device(tenant, item)
        tenant.devices.remove(device)
        done["removed"].append({"tenant": tenant.name, "device": device.name})
    if "rename_devices" in payload:
        done["renamed"] = [
            _rename_device(fleet, item) for item in payload["rename_devices"]
        ]
    if "move_devices" in payload:
        done["moved"] = [_move_device(fleet, item) for item in payload["move_devices"]]
    if "cancel_licenses" in payload:
        done["cancelled"] = [
            _cancel_license(fleet, item) for item in payload["cancel_licenses"]
        ]
    if "office365" in payload:
        done["office365"] = [
            _office365_change(fleet, item) for item in payload["office365"]
        ]
    return done


def _rename_device(fleet: Fleet, item: dict) -> dict:
    """Give a device a new name; its id, key and problems stay."""
    tenant = _find_tenant(fleet, item)
    device = _find_device(tenant, item)
    name = _name(item, "name")

    old, device.name = device.name, name
    return {"tenant": tenant.name, "device": device.id, "old": old, "name": name}


def _move_device(fleet: Fleet, item: dict) -> dict:
    """Move a KSC host to another administration group or virtual server.

    ``group`` names a group below the managed-devices group (made on first use;
    ksc_const.GROUP_NAME or "" is that group itself); ``vserver`` names another
    virtual server, where the host lands in ``group`` (by default the managed-devices
    group) and uses that server's key of its old key's product, kind and state (none
    when it has no such key). Either way the host keeps its id.
    """
    tenant = _find_tenant(fleet, item)
    if fleet.console != "ksc":
        raise ChangeError(
            "Business Hub has no administration groups or virtual servers to move a "
            "device between: rename it, or send moves to the KSC server"
        )
    device = _find_device(tenant, item)
    if item.get("group") is None and item.get("vserver") is None:
        raise ChangeError("Name the device's new 'group', 'vserver' or both")
    target = tenant
    if item.get("vserver") is not None:
        target = _find_tenant(fleet, {"tenant": item["vserver"]})
    group = "" if item.get("group") is None else _name(item, "group", empty=True)
    if group == ksc_const.GROUP_NAME:
        group = ""

    if target is not tenant:
        old = tenant.license(device.license_serial or "")
        tenant.devices.remove(device)
        target.devices.append(device)
        device.license_serial = _same_key(target, old)
    if group and group not in target.groups:
        target.groups.append(group)
    device.group = group
    return {
        "tenant": target.name,
        "from": tenant.name,
        "device": device.id,
        "name": device.name,
        "group": group or ksc_const.GROUP_NAME,
        "group_id": ksc_const.host_group(target.number, target.groups, group),
        "license": device.license_serial,
    }


def _same_key(tenant: Tenant, old: License | None) -> str | None:
    """The serial of the tenant's key like ``old`` (product, kind, state), if any."""
    if old is None:
        return None
    return next(
        (
            lic.serial
            for lic in tenant.licenses
            if (lic.product, lic.kind, lic.state) == (old.product, old.kind, old.state)
        ),
        None,
    )


def _cancel_license(fleet: Fleet, item: dict) -> dict:
    """Cancel a key or subscription: the devices on it stay, unbilled."""
    tenant = _find_tenant(fleet, item)
    key = item.get("license")
    lic = tenant.license(key) if isinstance(key, str) else None
    if lic is None:
        lic = next(
            (
                other
                for other in tenant.licenses
                if other.product == key
                and other.kind == "commercial"
                and other.state == ACTIVE
            ),
            None,
        )
    if lic is None:
        raise ChangeError(
            f"No key '{key}' in tenant '{tenant.name}': name a serial, or a product "
            "with an active commercial key"
        )
    if lic.state == CANCELLED:
        raise ChangeError(f"The key {lic.serial} of '{tenant.name}' is cancelled")

    was, lic.state = lic.state, CANCELLED
    # A current Office 365 license problem puts the subscription's state back when
    # it clears: back to cancelled, from now on.
    if lic is tenant.office365_subscription():
        for problem in tenant.office365_problems:
            if problem.restore is not None:
                problem.restore = (CANCELLED, problem.restore[1])
    return {
        "tenant": tenant.name,
        "license": lic.serial,
        "product": lic.product,
        "was": was,
        "devices": len(tenant.devices_using(lic.serial)),
    }


def _name(item: dict, key: str, *, empty: bool = False) -> str:
    """A device or group name from a change: text, trimmed, not too long."""
    value = item.get(key)
    if not isinstance(value, str) or not (value.strip() or empty):
        raise ChangeError(f"'{key}' must be a non-empty text")
    value = value.strip()
    if len(value) > MAX_NAME:
        raise ChangeError(f"'{key}' is longer than {MAX_NAME} characters")
    return value


def _office365_change(fleet: Fleet, item: dict) -> dict:
    """Raise or clear one Office 365 problem of a Business Hub company."""
    tenant = _find_tenant(fleet, item)
    if fleet.console == "ksc":
        raise ChangeError(
            "KSC holds no Office 365 data: send Office 365 changes to a Business Hub "
            "server"
        )
    if office365.WORKSPACE not in tenant.workspaces:
        raise ChangeError(f"Company '{tenant.name}' has no Office 365 workspace")
    subscription = tenant.office365_subscription()

    if "clear" in item:
        problem = office365.clear_problem(tenant, str(item["clear"]), subscription)
        if problem is None:
            raise ChangeError(
                f"No current Office 365 problem '{item['clear']}' in '{tenant.name}'"
            )
        return _office365_done(tenant, problem, None, "cleared")

    kind, severity = item.get("raise"), item.get("severity")
    if kind not in office365.KINDS:
        raise ChangeError(
            f"Raise one of {list(office365.KINDS)}, not '{kind}', or clear a problem"
        )
    if severity is not None and severity not in {t[0] for t in EVENT_TEMPLATES}:
        raise ChangeError(f"Unknown event severity '{severity}'")
    problem, event, repeat = office365.raise_problem(
        fleet,
        tenant,
        kind,
        subscription=subscription,
        reason=item.get("reason", "expired"),
        mailbox=item.get("mailbox"),
        severity=severity,
    )
    return _office365_done(tenant, problem, event, "repeated" if repeat else "raised")


def _office365_done(
    tenant: Tenant, problem: Office365Problem, event: Event | None, state: str
) -> dict:
    """What an Office 365 change did, as ``apply_changes`` reports it."""
    return {
        "tenant": tenant.name,
        "problem": problem.id,
        "kind": problem.kind,
        "mailbox": problem.mailbox,
        "event": event.id if event else None,
        "state": state,
    }


def _find_tenant(fleet: Fleet, item: dict) -> Tenant:
    """The tenant an item names by number, uid or name."""
    key = item.get("tenant")
    tenant = fleet.tenant(key) if key is not None else None
    if tenant is None:
        raise ChangeError(f"No tenant '{key}' in this sandbox")
    return tenant


def _find_device(tenant: Tenant, item: dict) -> Device:
    """The device an item names by id or name (the first of that name)."""
    key = item.get("device")
    for device in tenant.devices:
        if key in (device.id, device.name):
            return device
    raise ChangeError(f"No device '{key}' in tenant '{tenant.name}'")


def _check_problem(problem: str) -> None:
    """Refuse a problem word the sandbox does not model."""
    known = {NOT_PROTECTED, DATABASES_OUTDATED, THREATS_NOT_CURED, NOT_SEEN}
    if problem not in known:
        raise ChangeError(f"Unknown problem '{problem}': use one of {sorted(known)}")
