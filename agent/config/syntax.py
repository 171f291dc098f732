"""Plain words for the XML mistakes a hand edit makes, each naming its line.

lxml reports where its parser stopped and a libxml message written for XML experts.
This module looks at the text around that place and says what is wrong and how to
fix it; a mistake it does not recognise still gets a message naming the line.
"""

from __future__ import annotations

from agent.config.markup import unclosed_tag
from agent.config.syntax_tags import (
    after_the_end,
    comment_open,
    forbidden_character,
    hyphens_in_comment,
    late_declaration,
    mismatched_end,
    never_closed,
    no_element,
    unknown_prefix,
)
from agent.config.syntax_values import (
    UNDECLARED_ENTITY,
    ampersand,
    attribute_twice,
    attribute_without_value,
    glued_attributes,
    lt_in_value,
    name_required,
    unquoted_value,
)
from agent.config.xml_context import Described, Failure, describe_tag, tag_name
from agent.errors import ConfigError

# libxml2's xmlParserErrors codes for the mistakes handled here.
_DOCUMENT_EMPTY = 4
_DOCUMENT_END = 5
_INVALID_CHAR = 9
_SEMICOLON_MISSING = 23
_LT_IN_ATTRIBUTE = 38
_ATTRIBUTE_NOT_STARTED = 39
_ATTRIBUTE_WITHOUT_VALUE = 41
_ATTRIBUTE_REDEFINED = 42
_COMMENT_NOT_FINISHED = 45
_RESERVED_XML_NAME = 64
_SPACE_REQUIRED = 65
_NAME_REQUIRED = 68
_TAG_NAME_MISMATCH = 76
_TAG_NOT_FINISHED = 77
_HYPHEN_IN_COMMENT = 80
_UNDEFINED_NAMESPACE = 201


class ConfigSyntaxError(ConfigError):
    """The file is empty or not well-formed XML: it may still be being written."""


def syntax_error(
    text: str,
    line_starts: list[int],
    lxml_line: int,
    lxml_column: int,
    code: int,
    reason: str,
    where: str,
) -> ConfigSyntaxError:
    """The ConfigSyntaxError for lxml's complaint, in words a technician can act on."""
    line = max(1, min(lxml_line, len(line_starts)))
    failure = Failure(
        text,
        line_starts,
        line,
        _position(text, line_starts, line, lxml_column),
        code,
        reason,
    )

    described = _unclosed(failure)
    if described is None:
        handler = _HANDLERS.get(code)
        described = handler(failure) if handler is not None else None
    if described is None:
        # libxml may quote the rest of the file; its first line says enough.
        brief = reason.splitlines()[0][:80] if reason else f"error {code}"
        described = (
            line,
            f"line {line}: the XML is not well-formed ({brief}); fix the markup "
            "on that line or just before it",
            None,
        )

    at, message, key = described
    return ConfigSyntaxError(message, path=where, line=at, key=key)


def _position(text: str, line_starts: list[int], line: int, column: int) -> int:
    """The text position of lxml's line and column (libxml counts characters)."""
    return min(line_starts[line - 1] + max(column - 1, 0), len(text))


def _unclosed(failure: Failure) -> Described | None:
    """A tag left without its '>': name the tag's own line, not the next one."""
    text = failure.text
    opened, how = unclosed_tag(text, failure.position)
    if opened is None:
        return None

    line = failure.line_of(opened)
    subject, key = describe_tag(text, opened, failure.position)
    if how == "end":
        return (
            line,
            f"line {line}: the file ends inside {subject}; it was cut short or "
            "is still being saved",
            key,
        )
    name = tag_name(text, opened)
    # A start tag whose end tag follows was meant to hold children.
    ending = ">" if name.startswith("/") or f"</{name}" in text[opened:] else "/>"
    return (
        line,
        f"line {line}: {subject} is not closed: end it with '{ending}' "
        f"(the XML parser stopped at line {failure.line}: {failure.reason})",
        key,
    )


_HANDLERS = {
    _DOCUMENT_EMPTY: no_element,
    _DOCUMENT_END: after_the_end,
    _INVALID_CHAR: forbidden_character,
    _SEMICOLON_MISSING: ampersand,
    UNDECLARED_ENTITY: ampersand,
    _LT_IN_ATTRIBUTE: lt_in_value,
    _ATTRIBUTE_NOT_STARTED: unquoted_value,
    _ATTRIBUTE_WITHOUT_VALUE: attribute_without_value,
    _ATTRIBUTE_REDEFINED: attribute_twice,
    _COMMENT_NOT_FINISHED: comment_open,
    _RESERVED_XML_NAME: late_declaration,
    _SPACE_REQUIRED: glued_attributes,
    _NAME_REQUIRED: name_required,
    _TAG_NAME_MISMATCH: mismatched_end,
    _TAG_NOT_FINISHED: never_closed,
    _HYPHEN_IN_COMMENT: hyphens_in_comment,
    _UNDEFINED_NAMESPACE: unknown_prefix,
}
