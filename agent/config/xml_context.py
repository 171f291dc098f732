"""Where a place in broken XML text sits: the open elements, tag, value or comment."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from agent.config.markup import NAME

_KEY = re.compile(r"""\skey\s*=\s*(["'])(.*?)\1""", re.S)
_ATTRIBUTE_BEFORE = re.compile(r"""([^\s=<>"'/]+)\s*=\s*$""")
NAME_BEFORE = re.compile(r"""([^\s=<>"'/]+)\s*$""")

#: A message's line, its words, and the key it concerns.
Described = tuple[int, str, str | None]


@dataclass
class OpenElement:
    """An element whose start tag was read and whose end tag was not yet."""

    name: str
    start: int
    children: int = 0
    first_child: str | None = None


@dataclass
class Context:
    """What surrounds a place in the text, read from the start of the file."""

    stack: list[OpenElement] = field(default_factory=list)
    #: The '<' of the tag the place falls in, and its value's opening quote.
    tag: int | None = None
    quote: int | None = None
    #: The '<!--' of the comment the place falls in.
    comment: int | None = None
    #: The '</' that closed the top element.
    root_end: int | None = None


@dataclass
class Failure:
    """Where lxml stopped, what it said, and the text it stopped in."""

    text: str
    line_starts: list[int]
    line: int
    position: int
    code: int
    reason: str

    def line_of(self, position: int) -> int:
        """The 1-based line of a text position."""
        return bisect.bisect_right(self.line_starts, position)

    @property
    def line_start(self) -> int:
        """Where the line lxml names begins."""
        return self.line_starts[self.line - 1]

    @property
    def line_end(self) -> int:
        """Where the line lxml names ends (the next line's start)."""
        if self.line < len(self.line_starts):
            return self.line_starts[self.line]
        return len(self.text)


def context_at(text: str, stop: int) -> Context:
    """The open elements, and the tag, value or comment ``stop`` falls in."""
    context = Context()
    index = 0
    while (lt := text.find("<", index, stop)) >= 0:
        for opener, closer in (("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")):
            if text.startswith(opener, lt):
                end = text.find(closer, lt + len(opener))
                if end < 0 or end + len(closer) > stop:
                    if opener == "<!--":
                        context.comment = lt
                    return context
                index = end + len(closer)
                break
        else:
            tag_end, quote = _tag_end(text, lt, stop)
            if tag_end is None:
                context.tag, context.quote = lt, quote
                return context
            _record_tag(context, text, lt, tag_end)
            index = tag_end
    return context


def _tag_end(text: str, lt: int, stop: int) -> tuple[int | None, int | None]:
    """Just past the '>' ending the tag at ``lt``; else None and any open quote."""
    quote, quote_at = "", None
    for index in range(lt + 1, stop):
        char = text[index]
        if quote:
            if char == quote:
                quote, quote_at = "", None
        elif char in "\"'":
            quote, quote_at = char, index
        elif char == ">":
            return index + 1, None
    return None, quote_at


def _record_tag(context: Context, text: str, lt: int, end: int) -> None:
    """Open or close an element for the complete tag ``text[lt:end]``."""
    if text.startswith("<!", lt):
        return
    stack = context.stack
    if text.startswith("</", lt):
        if stack:
            stack.pop()
            if not stack:
                context.root_end = lt
        return

    name = tag_name(text, lt)
    if stack:
        stack[-1].children += 1
        stack[-1].first_child = stack[-1].first_child or name
    if text[end - 2] != "/":
        stack.append(OpenElement(name, lt))


def tag_name(text: str, lt: int) -> str:
    """The name of the tag at ``lt`` (with '/' for an end tag)."""
    slash = "/" if text.startswith("</", lt) else ""
    name = NAME.match(text, lt + 1 + len(slash))
    return slash + (name.group(0) if name else "")


def key_of(text: str, lt: int, limit: int) -> str | None:
    """The key attribute written in full between ``lt`` and ``limit``."""
    match = _KEY.search(text, lt, limit)
    return match.group(2).strip() if match else None


def describe_tag(text: str, lt: int, limit: int) -> tuple[str, str | None]:
    """'the <add> tag for WebPort' for the tag at ``lt``, and the key."""
    key = key_of(text, lt, limit)
    return f"the <{tag_name(text, lt)}> tag" + (f" for {key}" if key else ""), key


def value_words(text: str, lt: int, quote: int) -> tuple[str, str | None]:
    """'the value of LogLevel' for the value opened by ``quote`` in the tag."""
    key = key_of(text, lt, quote)
    match = _ATTRIBUTE_BEFORE.search(text, lt, quote)
    attribute = match.group(1) if match else "value"
    if attribute == "value" and key:
        return f"the value of {key}", key
    owner = f"<{tag_name(text, lt)}>" + (f" for {key}" if key else "")
    return f"the {attribute} attribute of {owner}", key
