"""A Business Hub integration's administrators: listed, added as email;alias lines,
removed by ticking (never the last one)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from agent.errors import SetupError
from agent.store import KBH, Administrator
from agent.web.pages import blueprint, setup_service
from agent.wording import plural

logger = logging.getLogger(__name__)

#: The longest alias the page takes (Business Hub shows it as a display name).
MAX_ALIAS = 64
#: The most lines one post may add, so a pasted file cannot flood the store.
MAX_LINES = 500
_EMAIL = re.compile(r"[^@\s;]+@[^@\s;]+\.[^@\s;]+")


@dataclass
class AdminLines:
    """What the administrators text area said: the administrators and each bad line."""

    admins: list[Administrator] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_admin_lines(text: str, known: list[Administrator]) -> AdminLines:
    """Read ``email;alias`` lines; each bad line is named by its number and fault.

    Empty lines are skipped. An email already bound to the integration is a
    duplicate, as is one written twice in the text.
    """
    result = AdminLines()
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        result.problems.append(
            f"Add at most {MAX_LINES} lines at a time ({len(lines)} were sent)"
        )
        return result
    bound = {admin.email.lower() for admin in known}
    seen: dict[str, int] = {}

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        email, _, alias = (part.strip() for part in line.partition(";"))
        problem = _line_problem(email, alias, bound, seen)
        if problem:
            result.problems.append(f"Line {number}: {problem}")
            continue
        seen[email.lower()] = number
        result.admins.append(Administrator(email, alias))

    if not result.admins and not result.problems:
        result.problems.append(
            "Write at least one administrator, one per line as email;alias"
        )
    return result


def _line_problem(
    email: str, alias: str, bound: set[str], seen: dict[str, int]
) -> str | None:
    """What is wrong with one line, or None."""
    if not email:
        return "the email is blank; write email;alias"
    if not _EMAIL.fullmatch(email):
        return f"{email!r} is not an email address, such as name@example.com"
    if len(alias) > MAX_ALIAS:
        return f"the alias is {len(alias)} characters long; use at most {MAX_ALIAS}"
    if email.lower() in bound:
        return f"{email} is already an administrator"
    if email.lower() in seen:
        return f"{email} is a duplicate of line {seen[email.lower()]}"
    return None


@blueprint.route(
    "/integrations/<integration_id>/administrators", methods=["GET", "POST"]
)
def admins_page(integration_id: str) -> Any:
    """List the administrators and add new ones from email;alias lines."""
    service = setup_service()
    integration = service.integration(integration_id)
    if integration.source != KBH:
        abort(404, "Only Business Hub integrations have administrators.")
    known = service.store.list_administrators(integration_id)
    text = ""
    problems: list[str] = []

    if request.method == "POST":
        text = str(request.form.get("administrators", ""))
        read = read_admin_lines(text, known)
        problems = read.problems
        if not problems:
            try:
                service.store.add_administrators(integration_id, read.admins)
            except SetupError as err:
                problems = [str(err)]
            else:
                logger.info(
                    "Added %s to %s",
                    plural(len(read.admins), "administrator"),
                    integration.name,
                )
                flash(f"Added {_count(len(read.admins))} to {integration.name}.")
                return redirect(
                    url_for("pages.admins_page", integration_id=integration_id)
                )

    return render_template(
        "admins.html",
        integration=integration,
        admins=known,
        text=text,
        problems=problems,
        max_alias=MAX_ALIAS,
    ), (400 if problems else 200)


@blueprint.post("/integrations/<integration_id>/administrators/delete")
def delete_admins(integration_id: str) -> Any:
    """Remove the ticked administrators; the last one always stays."""
    service = setup_service()
    integration = service.integration(integration_id)
    back = url_for("pages.admins_page", integration_id=integration_id)
    chosen = [e for e in request.form.getlist("email") if e.strip()]
    if not chosen:
        flash("Tick the administrators to delete first.", "error")
        return redirect(back)

    try:
        service.store.remove_administrators(integration_id, chosen)
    except SetupError as err:
        flash(f"Nothing was deleted: {err}.", "error")
        return redirect(back)
    logger.info(
        "Removed %s from %s", plural(len(chosen), "administrator"), integration.name
    )
    flash(f"Deleted {_count(len(chosen))} from {integration.name}.")
    return redirect(back)


def _count(number: int) -> str:
    """ "1 administrator" or "3 administrators"."""
    return f"{number} administrator{'' if number == 1 else 's'}"
