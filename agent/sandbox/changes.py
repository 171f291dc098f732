"""Changes the sandbox's ``POST /_sandbox/events`` makes to a fleet: new events, device
problems, removed devices, and Office 365 problems raised and cleared.

Both console emulators apply them through :func:`agent.sandbox.seed.apply_changes`,
under their lock; tests replay the same changes on a copy of the fleet made with the
same seed, and both must report the same.
"""

from __future__ import annotations

from agent.sandbox import office365
from agent.sandbox.office365 import Office365Problem
from agent.sandbox.seed import (
    DATABASES_OUTDATED,
    EVENT_TEMPLATES,
    NOT_PROTECTED,
    NOT_SEEN,
    THREATS_NOT_CURED,
    Device,
    Event,
    Fleet,
    Tenant,
)


class ChangeError(ValueError):
    """A change sent to ``POST /_sandbox/events`` names something that is not there."""


def apply_changes(fleet: Fleet, payload: dict) -> dict:
    """Apply new events, device changes and Office 365 problems; return what was done.

    ``payload`` holds any of::

        {"events": [{"tenant": T, "severity": "critical", "device": D, "count": 1}],
         "problems": [{"tenant": T, "device": D, "add": [...], "clear": [...]}],
         "remove_devices": [{"tenant": T, "device": D}],
         "office365": [{"tenant": T, "raise": "license", "reason": "expired"},
                       {"tenant": T, "raise": "mailbox", "mailbox": "a@b.example"},
                       {"tenant": T, "clear": "<problem id, mailbox or license>"}]}

    where T is a tenant's number, uid or name and D a device's id or name (optional
    for events: a random device is picked). An Office 365 raise may name its event's
    ``severity``; raising a problem that is still current repeats its event. The
    result holds an ``office365`` list only when the payload has one.
    """
    if not isinstance(payload, dict):
        raise ChangeError("Send the changes as a JSON object")
    unknown = set(payload) - {"events", "problems", "remove_devices", "office365"}
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
    if "office365" in payload:
        done["office365"] = [
            _office365_change(fleet, item) for item in payload["office365"]
        ]
    return done


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
    key = item.get("tenant")
    tenant = fleet.tenant(key) if key is not None else None
    if tenant is None:
        raise ChangeError(f"No tenant '{key}' in this sandbox")
    return tenant


def _find_device(tenant: Tenant, item: dict) -> Device:
    key = item.get("device")
    for device in tenant.devices:
        if key in (device.id, device.name):
            return device
    raise ChangeError(f"No device '{key}' in tenant '{tenant.name}'")


def _check_problem(problem: str) -> None:
    known = {NOT_PROTECTED, DATABASES_OUTDATED, THREATS_NOT_CURED, NOT_SEEN}
    if problem not in known:
        raise ChangeError(f"Unknown problem '{problem}': use one of {sorted(known)}")
