"""What every Tigerpaw REST route shares: the route table, calls, paging and search.

Paths match case-insensitively (IIS does); JSON keys of request bodies too (the .NET
binder does). Paging follows ``pageRequest.pageSize``/``pageRequest.startRow`` (or
``PageSize``/``StartRow`` in a search body): rows count from 1, a page holds at most
:data:`MAX_PAGE_SIZE`, and ``NextRow`` is the row to ask for next, or 0 after the last
page.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.sandbox.server import BadRequest, Request
from agent.sandbox.tigerpaw_state import Rep, TigerpawWorld, WorldError

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

MATCH_TYPES = (
    "StartsWith",
    "EndsWith",
    "Contains",
    "GreaterThan",
    "GreaterThanEqual",
    "Equal",
    "LessThan",
    "LessThanEqual",
)


class RestError(WorldError):
    """A REST failure with its status and extra headers (such as ``Retry-After``)."""

    def __init__(
        self, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, status)
        self.headers = headers or {}


def ci(mapping: Any, key: str, default: Any = None) -> Any:
    """A value of a JSON object by key, matched case-insensitively."""
    if not isinstance(mapping, dict):
        return default
    if key in mapping:
        return mapping[key]
    wanted = key.casefold()
    for name, value in mapping.items():
        if str(name).casefold() == wanted:
            return value
    return default


def to_int(value: Any, what: str) -> int:
    """A whole number from JSON, or a 400 error naming the field."""
    if isinstance(value, bool):
        raise RestError(f"{what} must be a whole number, not {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise RestError(f"{what} must be a whole number, not {value!r}.") from err
    if not number.is_integer():
        raise RestError(f"{what} must be a whole number, not {value!r}.")
    return int(number)


@dataclass
class Call:
    """One authenticated REST call as a route handler sees it."""

    request: Request
    world: TigerpawWorld
    rep: Rep
    args: tuple[str, ...]
    now: dt.datetime

    def body(self) -> Any:
        """The JSON body (``None`` when empty)."""
        try:
            return self.request.json()
        except BadRequest as err:
            raise RestError(str(err)) from err

    def body_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        body = self.body()
        if not isinstance(body, dict):
            raise RestError("Send the request body as a JSON object.")
        return body

    def number(self, index: int = 0) -> int:
        """A number from the path."""
        return int(self.args[index])

    def query(self, name: str) -> str | None:
        """A query parameter, its name matched case-insensitively."""
        wanted = name.casefold()
        for key, values in self.request.query.items():
            if key.casefold() == wanted and values:
                return values[0]
        return None

    def flag(self, index: int, default: bool = False) -> bool:
        """An optional true/false path segment, such as ``/{activeOnly}``."""
        if len(self.args) <= index or self.args[index] is None:
            return default
        return self.args[index].lower() == "true"


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """A REST route: method, path pattern, handler and the right it needs."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    right: str | None


class RouteTable:
    """Routes of one module, registered with ``@routes(method, pattern, right)``."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def __call__(
        self, method: str, pattern: str, right: str | None = None
    ) -> Callable[[Handler], Handler]:
        """Register a handler for ``method`` and a path regex (lower case)."""

        def register(handler: Handler) -> Handler:
            compiled = re.compile(pattern + "/?", re.IGNORECASE)
            self.routes.append(Route(method, compiled, handler, right))
            return handler

        return register

    def searches(
        self,
        path: str,
        right: str,
        key: str,
        *,
        records: Callable[[TigerpawWorld], list[Any]],
        getters: Callable[[TigerpawWorld], dict[str, Getter | None]],
        to_json: Callable[[TigerpawWorld, Any], dict[str, Any]],
    ) -> None:
        """Register an advanced search at ``path`` and its ``path/<field>`` shortcut.

        Both answer one page of the records found, each as ``to_json`` shows it,
        under ``key`` with the paging fields.
        """

        def answer(call: Call, shortcut: bool) -> dict[str, Any]:
            """The page of records a search of either kind finds."""
            known = getters(call.world)
            body = None
            if shortcut:
                criteria = shortcut_criteria(call, call.args[0], known)
            else:
                body = call.body()
                criteria = criteria_of(body)

            found = search(records(call.world), criteria, known)
            rows, meta = page(call, found, body)
            return {key: [to_json(call.world, row) for row in rows], **meta}

        def advanced(call: Call) -> dict[str, Any]:
            """Records meeting the body's criteria; no criteria lists every one."""
            return answer(call, shortcut=False)

        def by_field(call: Call) -> dict[str, Any]:
            """Records whose field (named in the path) starts with the body's text."""
            return answer(call, shortcut=True)

        self("POST", path, right)(advanced)
        self("POST", path + r"/(\w+)", right)(by_field)


def page(call: Call, rows: list[Any], body: Any = None) -> tuple[list[Any], dict]:
    """The rows of the page asked for, and the reply's paging fields."""
    size_text = ci(body, "PageSize") or call.query("pageRequest.pageSize")
    start_text = ci(body, "StartRow") or call.query("pageRequest.startRow")
    size_text = size_text or call.query("pageSize")
    start_text = start_text or call.query("startRow")

    size = (
        DEFAULT_PAGE_SIZE if size_text in (None, "") else to_int(size_text, "pageSize")
    )
    start = 1 if start_text in (None, "") else to_int(start_text, "startRow")
    if size < 1 or start < 0:
        raise RestError("pageSize must be 1 or more and startRow 0 or more.")
    size, start = min(size, MAX_PAGE_SIZE), max(start, 1)

    chosen = rows[start - 1 : start - 1 + size]
    following = start + len(chosen)
    meta = {
        "PageSize": size,
        "NextRow": following if following <= len(rows) else 0,
        "TotalCount": len(rows),
    }
    return chosen, meta


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def matches(value: Any, match_type: str, wanted: str) -> bool:
    """Whether a field value meets one criterion."""
    if value is None:
        return False
    text, goal = str(value).casefold(), str(wanted).casefold()
    kind = match_type.casefold()
    if kind == "startswith":
        return text.startswith(goal)
    if kind == "endswith":
        return text.endswith(goal)
    if kind == "contains":
        return goal in text

    left, right = _number(value), _number(wanted)
    if left is not None and right is not None:
        text_or_number: tuple[Any, Any] = (left, right)
    else:
        text_or_number = (text, goal)
    a, b = text_or_number
    return {
        "equal": a == b,
        "greaterthan": a > b,
        "greaterthanequal": a >= b,
        "lessthan": a < b,
        "lessthanequal": a <= b,
    }[kind]


#: A search field: given a row and the criterion, the values to compare.
Getter = Callable[[Any, dict[str, Any]], Iterable[Any]]


def criteria_of(body: Any) -> list[dict[str, Any]]:
    """The criteria of an advanced search body."""
    if body is None:
        return []
    if not isinstance(body, dict):
        raise RestError("Send the search as {Criteria: [...], PageSize, StartRow}.")
    criteria = ci(body, "Criteria") or []
    if not isinstance(criteria, list) or not all(isinstance(c, dict) for c in criteria):
        raise RestError("Criteria must be a list of {SearchType, MatchType, Criteria}.")
    return criteria


def search(
    rows: list[Any],
    criteria: list[dict[str, Any]],
    getters: dict[str, Getter | None],
) -> list[Any]:
    """Rows meeting the criteria: the same SearchType ORed, different ones ANDed.

    ``getters`` maps lower-case search types to a getter; ``None`` marks a type
    Tigerpaw has but the sandbox does not model.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for criterion in criteria:
        kind = str(ci(criterion, "SearchType") or "").strip()
        if kind.casefold() not in getters:
            known = ", ".join(sorted(k for k, g in getters.items() if g))
            raise RestError(f"Unknown SearchType '{kind}'. Use one of: {known}.")
        if getters[kind.casefold()] is None:
            raise RestError(f"The sandbox does not model SearchType '{kind}'.")
        match_type = str(ci(criterion, "MatchType") or "StartsWith")
        if match_type.casefold() not in (m.casefold() for m in MATCH_TYPES):
            known = ", ".join(MATCH_TYPES)
            raise RestError(f"Unknown MatchType '{match_type}'. Use one of: {known}.")
        groups.setdefault(kind.casefold(), []).append(criterion)

    def keep(row: Any) -> bool:
        for kind, group in groups.items():
            getter = getters[kind]
            assert getter is not None
            if not any(
                matches(
                    value,
                    str(ci(c, "MatchType") or "StartsWith"),
                    str(ci(c, "Criteria") or ""),
                )
                for c in group
                for value in getter(row, c)
            ):
                return False
        return True

    return [row for row in rows if keep(row)]


def shortcut_criteria(call: Call, field: str, getters: dict[str, Any]) -> list[dict]:
    """The one criterion of a ``/search/<field>`` shortcut, whose body is the text."""
    kind = next((k for k in getters if k == field.casefold()), None)
    if kind is None:
        raise RestError(f"There is no search shortcut '{field}'.", 404)
    body = call.request.body.decode("utf-8-sig", errors="replace").strip()
    if body.startswith('"'):
        parsed = call.body()
        body = parsed if isinstance(parsed, str) else body
    if not body:
        raise RestError("Send the text to search for as the request body.")
    return [{"SearchType": kind, "MatchType": "StartsWith", "Criteria": body}]
