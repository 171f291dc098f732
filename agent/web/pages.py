"""What every view module shares: the blueprint, the agent, its setup service, and
the filters that put times and counts in words on every page."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, current_app, session

from agent.errors import AgentError, RemoteError
from agent.web.forms import CONNECT_ERROR_FIELDS, TIGERPAW_ERROR_FIELDS
from agent.wording import COUNTED_NOUNS, plural, utc_offset

if TYPE_CHECKING:
    from agent.app import Agent
    from agent.setup_flow import SetupService

logger = logging.getLogger(__name__)

blueprint = Blueprint("pages", __name__)

DRAFT_KEY = "draft"

#: The steps of the first setup, as the page's step bar names them.
STEPS = (
    ("connect", "Connect"),
    ("integration", "Create integration"),
    ("tenants", "Add servers or companies"),
    ("accounts", "Map to Tigerpaw accounts"),
)


def current_agent() -> Agent:
    """The agent this page belongs to."""
    return cast("Agent", current_app.extensions["agent"])


def setup_service() -> SetupService:
    """The agent's setup service: the page asks it, never a remote API itself."""
    return current_agent().setup


def draft_id() -> str | None:
    """The id of the connection this browser session is setting up."""
    value = session.get(DRAFT_KEY)
    return str(value) if value else None


def remember_draft(value: str | None) -> None:
    """Tie a draft to this browser session (or let go of it)."""
    if value:
        session[DRAFT_KEY] = value
    else:
        session.pop(DRAFT_KEY, None)


def field_of(error: AgentError, table: dict[str, str]) -> str | None:
    """The page field an error names, translated to the form's field names."""
    name = getattr(error, "field", None)
    if not name:
        return None
    return table.get(name, name)


def connect_error_field(error: AgentError, source: str) -> str | None:
    """The first page's field a connection error is about."""
    return field_of(error, CONNECT_ERROR_FIELDS.get(source, {}))


def tigerpaw_error_field(error: AgentError) -> str | None:
    """The Tigerpaw form's field a check error is about."""
    return field_of(error, TIGERPAW_ERROR_FIELDS)


def error_report(error: AgentError) -> dict[str, Any]:
    """An error as the page shows it: its words and which system failed."""
    system = error.system if isinstance(error, RemoteError) else ""
    return {"message": str(error), "system": system, "kind": type(error).__name__}


# Words for times and counts, as template filters and for the command line.

#: Month names as people read them, whatever the computer's locale.
MONTHS = tuple("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())

#: Nouns the agent counts in its texts, singular to plural (the billing
#: categories' names among them).
_SINGULAR_OF = {many: one for one, many in COUNTED_NOUNS.items()}
_NOUN_FORMS = sorted(
    [*COUNTED_NOUNS, *_SINGULAR_OF, *(f"{one}(s)" for one in COUNTED_NOUNS)],
    key=len,
    reverse=True,
)
_COUNTED = re.compile(
    r"\b(\d+) (" + "|".join(re.escape(form) for form in _NOUN_FORMS) + r")(?!\w)"
)


@blueprint.app_template_filter("local_time")
def local_time(value: dt.datetime | str | None, seconds: bool = False) -> str:
    """A time in this computer's zone, saying which: "4 Dec 2026 18:40 UTC+01:00".

    Accepts aware times, ISO 8601 text (as the status API gives it) and the log's
    "2026-12-04 18:40:23,402"; a time without a zone is taken as local already.
    Text that is no time is returned as it is, so a page never fails on it.
    """
    if value is None or value == "":
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return value

    local = cast(dt.datetime, moment).astimezone()
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    date = f"{local.day} {MONTHS[local.month - 1]} {local.year}"
    return f"{date} {clock} {utc_offset(local)}"


blueprint.add_app_template_filter(plural, "plural")


@blueprint.app_template_filter("counted")
def counted(text: str | None) -> str:
    """Text from other parts of the agent with each count agreeing with its noun:
    "1 servers" and "1 device(s)" read "1 server" and "1 device"."""
    if not text:
        return ""

    def agree(match: re.Match[str]) -> str:
        number, noun = int(match.group(1)), match.group(2)
        singular = _SINGULAR_OF.get(noun, noun.removesuffix("(s)"))
        return plural(number, singular)

    return _COUNTED.sub(agree, text)
