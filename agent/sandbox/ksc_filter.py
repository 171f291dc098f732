"""KSC's search filter: the RFC 2254-like language of wstrFilter and event filters.

Grammar (from KSC's "Search filter syntax" page, plus ``<=``, ``>=`` and the
``attr&mask`` bit test that KSC's own examples use)::

    filter  = "(" comp ")"
    comp    = "&" filter+ / "|" filter+ / "!" filter / simple
    simple  = attr ["&" integer] op value
    op      = "=" / "<>" / "<" / ">" / "<=" / ">="
    value   = integer / "quoted string" / T"YYYY-MM-DD hh:mm:ss"
              / CURTIME([delta seconds]) / 0xHEX

Quoted strings double an inner quote, compare case-insensitively and may hold the
wildcards ``?``, ``*``, ``[a-f]`` and ``[^a-f]`` (only with ``=``). An empty filter
matches everything.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<curtime>CURTIME\(\s*(?P<delta>[+-]?\d+)?\s*\))
      | (?P<time>T"(?P<stamp>[^"]*)")
      | (?P<string>"(?:[^"]|"")*")
      | (?P<hex>0[xX][0-9A-Fa-f]+)
      | (?P<int>[+-]?\d+)
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op><>|<=|>=|=|<|>)
      | (?P<punct>[()&|!])
    )""",
    re.VERBOSE,
)
_WILDCARDS = re.compile(r"[?*\[]")


class FilterError(ValueError):
    """The filter text cannot be read, or compares values of different kinds."""


@dataclass(frozen=True)
class _Token:
    """One lexical token and where it starts."""

    kind: str
    text: str
    value: Any
    position: int


@dataclass(frozen=True)
class Compare:
    """``attr [& mask] op value``."""

    attr: str
    mask: int | None
    op: str
    value: Any
    pattern: re.Pattern[str] | None = None

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Whether the record's attribute satisfies the comparison."""
        left = get(self.attr)
        if left is None:
            return self.op == "<>"
        if isinstance(left, bool):
            left = int(left)
        if self.mask is not None:
            if not isinstance(left, int):
                raise FilterError(f"'{self.attr}' is not a number: no bit test on it")
            left &= self.mask
        return _compare(self.attr, left, self.op, self.value, self.pattern)


@dataclass(frozen=True)
class All:
    """``(&...)``: every part matches."""

    parts: tuple[Node, ...]

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Whether every part matches."""
        return all(part.matches(get) for part in self.parts)


@dataclass(frozen=True)
class Any_:
    """``(|...)``: at least one part matches."""

    parts: tuple[Node, ...]

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Whether any part matches."""
        return any(part.matches(get) for part in self.parts)


@dataclass(frozen=True)
class Not:
    """``(!...)``: the part does not match."""

    part: Node

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Whether the part does not match."""
        return not self.part.matches(get)


Node = Compare | All | Any_ | Not


class MatchAll:
    """The empty filter."""

    def matches(self, get: Callable[[str], Any]) -> bool:
        """Always true."""
        return True


def parse(
    text: str,
    known: Collection[str] | None = None,
    now: dt.datetime | None = None,
) -> Node | MatchAll:
    """Compile filter text; attribute names outside ``known`` are refused."""
    if not text or not text.strip():
        return MatchAll()

    tokens = _tokenize(text, now or dt.datetime.now(dt.UTC))
    parser = _Parser(tokens, text, known)
    node = parser.filter()
    if parser.index != len(tokens):
        extra = tokens[parser.index]
        raise FilterError(
            f"Unexpected '{extra.text}' at position {extra.position} after the "
            "filter's closing parenthesis"
        )
    return node


def _tokenize(text: str, now: dt.datetime) -> list[_Token]:
    """Split filter text into tokens."""
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"Cannot read the filter at position {position}")
        start = match.start(match.lastgroup or 0)
        kind = match.lastgroup or ""
        if kind in ("delta", "stamp"):
            kind = "curtime" if match.group("curtime") else "time"
        tokens.append(_Token(kind, match.group(kind), _value(match, kind, now), start))
        position = match.end()
    return tokens


def _value(match: re.Match[str], kind: str, now: dt.datetime) -> Any:
    """The Python value of a literal token."""
    if kind == "curtime":
        return now + dt.timedelta(seconds=int(match.group("delta") or 0))
    if kind == "time":
        stamp = match.group("stamp")
        try:
            moment = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        except ValueError as err:
            raise FilterError(
                f'T"{stamp}" is not a time like T"2005-04-27 23:59:01"'
            ) from err
        return moment.replace(tzinfo=dt.UTC)
    if kind == "string":
        return match.group("string")[1:-1].replace('""', '"')
    if kind == "hex":
        digits = match.group("hex")[2:]
        return bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    if kind == "int":
        return int(match.group("int"))
    return None


class _Parser:
    """A recursive-descent reader over the tokens."""

    def __init__(
        self, tokens: list[_Token], text: str, known: Collection[str] | None
    ) -> None:
        self.tokens = tokens
        self.text = text
        self.known = known
        self.index = 0

    def _peek(self) -> _Token | None:
        """The next token, if any."""
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, kind: str, text: str | None = None) -> _Token:
        """Consume the next token, which must be of ``kind`` (and ``text``)."""
        token = self._peek()
        if token is None or token.kind != kind or (text and token.text != text):
            wanted = f"'{text}'" if text else f"a {kind}"
            where = f"'{token.text}' at {token.position}" if token else "the end"
            raise FilterError(f"Expected {wanted} but found {where}")
        self.index += 1
        return token

    def filter(self) -> Node:
        """``( comp )``."""
        self._take("punct", "(")
        token = self._peek()
        node: Node
        if token is not None and token.text in ("&", "|"):
            self.index += 1
            parts = [self.filter()]
            while (nxt := self._peek()) is not None and nxt.text == "(":
                parts.append(self.filter())
            node = All(tuple(parts)) if token.text == "&" else Any_(tuple(parts))
        elif token is not None and token.text == "!":
            self.index += 1
            node = Not(self.filter())
        else:
            node = self.simple()
        self._take("punct", ")")
        return node

    def simple(self) -> Compare:
        """``attr [& mask] op value``."""
        name = self._take("name")
        if self.known is not None and name.text not in self.known:
            raise FilterError(f"Unknown attribute '{name.text}' in the filter")
        mask = None
        token = self._peek()
        if token is not None and token.text == "&":
            self.index += 1
            mask = self._take("int").value
        op = self._take("op").text
        token = self._peek()
        if token is None or token.kind not in (
            "int",
            "string",
            "time",
            "curtime",
            "hex",
        ):
            where = f"'{token.text}'" if token else "the end"
            raise FilterError(
                f"Expected a value after '{name.text} {op}' but found {where}; "
                'quote strings, as in "PC-001"'
            )
        self.index += 1
        pattern = None
        if token.kind == "string" and _WILDCARDS.search(token.value):
            if op != "=":
                raise FilterError(
                    f"Wildcards need '=', not '{op}', in the test of '{name.text}'"
                )
            pattern = _wildcard_pattern(token.value)
        return Compare(name.text, mask, op, token.value, pattern)


def _wildcard_pattern(text: str) -> re.Pattern[str]:
    """A regular expression for a quoted string with KSC wildcards."""
    parts = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[" and "]" in text[index + 1 :]:
            end = text.index("]", index + 1)
            body = text[index + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            escaped = re.escape(body).replace("\\-", "-")
            parts.append(f"[{'^' if negate else ''}{escaped}]")
            index = end
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _compare(
    attr: str, left: Any, op: str, right: Any, pattern: re.Pattern[str] | None
) -> bool:
    """Compare an attribute's value with a literal, refusing mixed kinds."""
    if pattern is not None:
        if not isinstance(left, str):
            raise FilterError(f"'{attr}' is not a string: no wildcard match on it")
        return pattern.fullmatch(left) is not None

    if isinstance(right, str):
        if not isinstance(left, str):
            raise FilterError(f"'{attr}' is not a string; compare it with a number")
        left, right = left.casefold(), right.casefold()
    elif isinstance(right, dt.datetime):
        if not isinstance(left, dt.datetime):
            raise FilterError(f"'{attr}' is not a time; compare it with a number")
    elif isinstance(right, bytes):
        if not isinstance(left, bytes) or op not in ("=", "<>"):
            raise FilterError(f"'{attr}' cannot be compared with binary data")
    elif not isinstance(left, int):
        raise FilterError(f"'{attr}' is not a number; compare it with a quoted string")

    if op == "=":
        return left == right
    if op == "<>":
        return left != right
    if op == "<":
        return left < right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    return left >= right
