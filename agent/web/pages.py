"""What every view module shares: the blueprint, the agent, its setup service."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from flask import Blueprint, current_app, session

from agent.errors import AgentError, RemoteError
from agent.web.forms import CONNECT_ERROR_FIELDS, TIGERPAW_ERROR_FIELDS

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
