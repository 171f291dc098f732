"""A small scanner that finds where each element of well-formed XML text sits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from agent.errors import ConfigError

NAME = re.compile(r"[^\s/>=<\"']+")
_ATTRIBUTE = re.compile(r"""\s*([^\s=/>"']+)\s*=\s*(["'])(.*?)\2""", re.S)
_TAG_END = re.compile(r"\s*(/?)>")


@dataclass
class Attribute:
    """Where one attribute's value sits in the text (quotes excluded)."""

    name: str
    value_start: int
    value_end: int
    quote: str


@dataclass(eq=False)
class Element:
    """One element's start tag (and end tag, when it has one) in the text."""

    name: str
    start: int
    end: int
    self_closing: bool
    attributes: list[Attribute]
    parent: Element | None
    close_start: int | None = None
    close_end: int | None = None
    children: list[Element] = field(default_factory=list)

    @property
    def local_name(self) -> str:
        """The name without a namespace prefix."""
        return self.name.rpartition(":")[2]

    @property
    def outer_end(self) -> int:
        """Where the element ends: after its end tag, or after ``/>``."""
        return self.end if self.close_end is None else self.close_end

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name`` (exact case, as XML has it), or None."""
        return next((a for a in self.attributes if a.name == name), None)


def scan_elements(text: str, where: str) -> list[Element]:
    """Every element of well-formed ``text`` in document order, with positions."""
    elements: list[Element] = []
    stack: list[Element] = []
    index = 0
    try:
        while (lt := text.find("<", index)) >= 0:
            if text.startswith("<!--", lt):
                index = text.index("-->", lt + 4) + 3
            elif text.startswith("<![CDATA[", lt):
                index = text.index("]]>", lt) + 3
            elif text.startswith("<?", lt):
                index = text.index("?>", lt) + 2
            elif text.startswith("<!", lt):
                index = _skip_declaration(text, lt)
            elif text.startswith("</", lt):
                index = text.index(">", lt) + 1
                closed = stack.pop()
                closed.close_start, closed.close_end = lt, index
            else:
                element = _start_tag(text, lt, stack[-1] if stack else None)
                elements.append(element)
                if element.parent is not None:
                    element.parent.children.append(element)
                if not element.self_closing:
                    stack.append(element)
                index = element.end
    except (ValueError, IndexError) as err:
        raise ConfigError(
            "the agent could not find its way through this file's markup; save it "
            "again as plain XML (check-config shows what the parser sees)",
            path=where,
        ) from err
    return elements


def _skip_declaration(text: str, lt: int) -> int:
    """The end of ``<!DOCTYPE ...>``, internal subset included."""
    depth, index = 0, lt + 2
    while True:
        char = text[index]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == ">" and depth == 0:
            return index + 1
        index += 1


def _start_tag(text: str, lt: int, parent: Element | None) -> Element:
    """The start tag beginning at ``lt``."""
    name = NAME.match(text, lt + 1)
    if name is None:
        raise ValueError(lt)
    index = name.end()
    attributes = []
    while (match := _ATTRIBUTE.match(text, index)) is not None:
        attributes.append(
            Attribute(match.group(1), match.start(3), match.end(3), match.group(2))
        )
        index = match.end()
    end = _TAG_END.match(text, index)
    if end is None:
        raise ValueError(index)
    return Element(
        name.group(0), lt, end.end(), end.group(1) == "/", attributes, parent
    )


def unclosed_tag(text: str, stop: int) -> tuple[int | None, str]:
    """Where a tag opened before ``stop`` and never closed starts, and how we know."""
    # The parser stops on the '<' that follows an unclosed tag, so look at it too.
    stop = min(stop + 1, len(text))
    index, opened, quote = 0, None, ""
    while index < stop:
        if opened is None:
            lt = text.find("<", index, stop)
            if lt < 0:
                return None, ""
            for opener, closer in (("<!--", "-->"), ("<?", "?>"), ("<![CDATA[", "]]>")):
                if text.startswith(opener, lt):
                    end = text.find(closer, lt + len(opener))
                    if end < 0 or end >= stop:
                        return None, ""
                    index = end + len(closer)
                    break
            else:
                opened, index = lt, lt + 1
            continue

        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ">":
            opened = None
        elif char == "<":
            return opened, "next"
        index += 1

    if opened is not None and not text[stop:].strip():
        return opened, "end"
    return None, ""


def walk(element: Element) -> Iterator[Element]:
    """``element`` and everything under it, in document order."""
    yield element
    for child in element.children:
        yield from walk(child)
