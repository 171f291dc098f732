"""Office 365 problems of the emulated Business Hub: seeded, raised and cleared.

A company with the ``office365`` workspace can have one license problem (its Office
365 protection subscription expired, suspended, or protecting more mailboxes than it
has seats) and any number of mailbox-protection problems (a mailbox not protected).
Each problem has an id. The event that raises it, and every repeat while it stays
current, carries that id; the problem stays listed until a change clears it. A
license problem also shows on the subscription: it is put in that state (or over its
seats) while the problem lasts, and put back when it clears.

The KSC server holds no Office 365 data, so only Business Hub fleets get any.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.sandbox.fleet import Event, Fleet, License, Tenant

WORKSPACE = "office365"
LICENSE, MAILBOX = "license", "mailbox"
KINDS = (LICENSE, MAILBOX)

#: The event type each kind of problem raises, and its severity unless a change
#: names another.
EVENT_TYPES = {LICENSE: "O365_LICENSE_PROBLEM", MAILBOX: "O365_MAILBOX_NOT_PROTECTED"}
SEVERITIES = {LICENSE: "functional_failure", MAILBOX: "warning"}

#: Per license problem: (the event's description, the problem's description).
LICENSE_REASONS = {
    "expired": (
        "Office 365 subscription expired",
        "The Office 365 protection subscription has expired",
    ),
    "suspended": (
        "Office 365 subscription suspended",
        "The Office 365 protection subscription is suspended",
    ),
    "seats_exceeded": (
        "Office 365 subscription seats exceeded",
        "More mailboxes are protected than the Office 365 subscription has seats for",
    ),
}
MAILBOX_EVENT = "Office 365 mailbox not protected"
#: How many mailboxes over its seats a subscription goes with ``seats_exceeded``.
SEATS_OVER = 3

_MAILBOX_NAMES = ("reception", "accounts", "office", "sales", "support", "director")


@dataclass(slots=True)
class Office365Problem:
    """A current Office 365 problem of a company."""

    id: str
    kind: str  # license or mailbox
    description: str
    since: dt.datetime
    mailbox: str | None = None
    reason: str = ""
    #: The subscription's (state, mailboxes_used) before a license problem.
    restore: tuple[str, int] | None = None


def mailbox_domain(company_name: str) -> str:
    """The made-up mail domain of a company: "contoso-dental.example"."""
    return re.sub(r"[^a-z0-9]+", "-", company_name.lower()).strip("-") + ".example"


def seeded_mailboxes(tenant: Tenant, now: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """(since, mailbox) of the unprotected mailbox an Office 365 company starts with.

    Its own random generator (from the company's uid) leaves the fleet's draws, and so
    every other seeded value, as they were before Office 365 problems existed.
    """
    if WORKSPACE not in tenant.workspaces:
        return []
    rng = random.Random(f"office365:{tenant.uid}")
    name = rng.choice(_MAILBOX_NAMES)
    since = now - dt.timedelta(minutes=rng.randint(20, 300))
    return [(since, f"{name}@{mailbox_domain(tenant.name)}")]


def current(tenant: Tenant, kind: str, mailbox: str | None) -> Office365Problem | None:
    """The company's current problem of that kind (and mailbox), if it has one."""
    for problem in tenant.office365_problems:
        if problem.kind == kind and (kind == LICENSE or problem.mailbox == mailbox):
            return problem
    return None


def raise_problem(
    fleet: Fleet,
    tenant: Tenant,
    kind: str,
    *,
    subscription: License | None = None,
    reason: str = "expired",
    mailbox: str | None = None,
    severity: str | None = None,
    when: dt.datetime | None = None,
) -> tuple[Office365Problem, Event, bool]:
    """Raise a problem's event: (the problem, the event, whether it is a repeat).

    A problem of the same kind (and mailbox) that is still current is raised again:
    the new event carries its id and no second problem is made.
    """
    problem = current(tenant, kind, mailbox)
    repeat = problem is not None
    if problem is None:
        problem = _new_problem(fleet, tenant, kind, reason, mailbox, when)
        if kind == LICENSE and subscription is not None:
            problem.restore = (subscription.state, subscription.mailboxes_used)
            if reason == "seats_exceeded":
                subscription.mailboxes_used = subscription.seats + SEATS_OVER
            else:
                subscription.state = reason
        tenant.office365_problems.append(problem)

    description = (
        LICENSE_REASONS[problem.reason][0] if kind == LICENSE else MAILBOX_EVENT
    )
    event = fleet.record_event(
        tenant,
        severity or SEVERITIES[kind],
        EVENT_TYPES[kind],
        description,
        when=when,
        problem_id=problem.id,
    )
    return problem, event, repeat


def _new_problem(
    fleet: Fleet,
    tenant: Tenant,
    kind: str,
    reason: str,
    mailbox: str | None,
    when: dt.datetime | None,
) -> Office365Problem:
    """A new problem with the fleet's next id (not yet listed)."""
    if kind == LICENSE:
        if reason not in LICENSE_REASONS:
            raise ValueError(
                f"Unknown license reason '{reason}': use one of "
                f"{sorted(LICENSE_REASONS)}"
            )
        description = LICENSE_REASONS[reason][1]
    else:
        if not mailbox:
            raise ValueError("A mailbox problem needs the mailbox's address")
        description = (
            f"The mailbox {mailbox} is not protected by Kaspersky Security for "
            "Microsoft Office 365"
        )
        reason = ""
    problem_id = f"o365-{fleet.next_problem_id}"
    fleet.next_problem_id += 1
    since = when or dt.datetime.now(dt.UTC).replace(microsecond=0)
    return Office365Problem(problem_id, kind, description, since, mailbox, reason)


def clear_problem(
    tenant: Tenant, key: str, subscription: License | None = None
) -> Office365Problem | None:
    """Clear a problem named by its id, its mailbox, or ``license``; put a license
    problem's subscription back. None when no current problem matches."""
    for problem in tenant.office365_problems:
        if key in (problem.id, problem.mailbox) or key == problem.kind == LICENSE:
            tenant.office365_problems.remove(problem)
            if problem.restore is not None and subscription is not None:
                subscription.state, subscription.mailboxes_used = problem.restore
            return problem
    return None
