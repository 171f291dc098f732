"""Plain words for mistakes between tags: end tags, comments, the file's ends."""

from __future__ import annotations

import re

from agent.config.xml_context import (
    Context,
    Described,
    Failure,
    context_at,
    describe_tag,
    tag_name,
    value_words,
)

_MISMATCH = re.compile(r"mismatch: (\S+) line (\d+) and (\S+)")
_CHAR_REF = re.compile(r"&#(?:x([0-9a-fA-F]+)|([0-9]+));")
_PREFIX = re.compile(r"Namespace prefix (\S+) on (\S+) is not defined")
_DECLARED = re.compile(r"""<section(?:Group)?\s[^>]*?\bname\s*=\s*["']([^"']+)""")
#: Names whose spelling the agent knows, to tell which of two tags is misspelt.
_KNOWN_NAMES = (
    "configuration",
    "configSections",
    "section",
    "sectionGroup",
    "startup",
    "supportedRuntime",
    "appSettings",
    "add",
    "remove",
    "clear",
)


def comment_open(failure: Failure) -> Described | None:
    """A comment never closed with '-->'."""
    context = context_at(failure.text, len(failure.text))
    if context.comment is None:
        return None
    line = failure.line_of(context.comment)
    return (
        line,
        f"line {line}: the comment that starts here is never closed: end it with -->",
        None,
    )


def hyphens_in_comment(failure: Failure) -> Described | None:
    """'--' inside a comment, often because an earlier comment was not closed."""
    context = context_at(failure.text, failure.position)
    if context.comment is None:
        return None
    start, line = failure.line_of(context.comment), failure.line
    if start == line:
        message = (
            f"line {line}: the comment holds --, which XML does not allow inside "
            "a comment: remove it (a comment ends with -->)"
        )
    else:
        message = (
            f"line {start}: the comment that starts here is still open at line "
            f"{line}, which holds --: end the comment with --> where it should end "
            "(XML allows no -- inside a comment)"
        )
    return start, message, None


def after_the_end(failure: Failure) -> Described | None:
    """Text or elements after the end tag of <configuration>."""
    context = context_at(failure.text, failure.position)
    line = failure.line
    if context.root_end is None:
        return None
    end_tag = tag_name(failure.text, context.root_end)
    end_line = failure.line_of(context.root_end)
    place = "" if end_line == line else f" (line {end_line})"
    return (
        line,
        f"line {line}: there is more after <{end_tag}>{place}, which must end the "
        f"file: remove it, or move it inside <{end_tag[1:]}>",
        None,
    )


def never_closed(failure: Failure) -> Described | None:
    """The file ends with an element still open, often </configuration> missing."""
    context = context_at(failure.text, len(failure.text))
    if not context.stack or context.tag is not None or context.comment is not None:
        return None
    top = context.stack[-1]
    line = failure.line_of(top.start)
    where = (
        "the file must end with it"
        if len(context.stack) == 1
        else "add it where the element ends"
    )
    return (
        line,
        f"line {line}: <{top.name}> is never closed by </{top.name}>: {where} "
        "(or the file was cut short)",
        None,
    )


def mismatched_end(failure: Failure) -> Described | None:
    """An end tag that does not match the element open at that point."""
    text = failure.text
    match = _MISMATCH.search(failure.reason)
    end_lt = text.rfind("</", 0, failure.position)
    if match is None or end_lt < 0:
        return None
    context = context_at(text, end_lt)
    if not context.stack:
        return None

    top = context.stack[-1]
    end_name = match.group(3)
    end_line, top_line = failure.line_of(end_lt), failure.line_of(top.start)
    if top.name.lower() == end_name.lower():
        return _case_differs(text, context, end_name, end_line, top_line)

    names = [element.name for element in context.stack[:-1]]
    if end_name in names:
        # An entry such as <add ... > swallows the entries after it as children.
        if top.children == 0 or top.first_child == top.name:
            subject, key = describe_tag(text, top.start, text.find(">", top.start))
            message = f"line {top_line}: {subject} is not closed: end it with '/>'"
            return top_line, message, key
        return (
            top_line,
            f"line {top_line}: <{top.name}> is never closed: add </{top.name}> "
            f"before </{end_name}> on line {end_line}",
            None,
        )

    return (
        end_line,
        f"line {end_line}: the end tag </{end_name}> does not match <{top.name}> "
        f"opened on line {top_line}: write </{top.name}>, or remove </{end_name}> "
        "if it is extra",
        None,
    )


def _case_differs(
    text: str, context: Context, end_name: str, end_line: int, top_line: int
) -> Described:
    """A start and end tag whose names differ only in upper and lower case."""
    top = context.stack[-1]
    known = set(_KNOWN_NAMES) | set(_DECLARED.findall(text))
    kind = "section" if len(context.stack) == 2 else "element"
    if top.name in known:
        return (
            end_line,
            f"line {end_line}: the end tag </{end_name}> is spelled differently "
            f"from its start tag <{top.name}> on line {top_line}; XML names are "
            f"case-sensitive and this {kind} must be spelled {top.name}: write "
            f"</{top.name}>",
            None,
        )
    if end_name in known:
        return (
            top_line,
            f"line {top_line}: the start tag <{top.name}> and its end tag "
            f"</{end_name}> on line {end_line} are spelled differently; XML names "
            f"are case-sensitive and this {kind} must be spelled {end_name}: write "
            f"<{end_name}>",
            None,
        )
    return (
        end_line,
        f"line {end_line}: the end tag </{end_name}> and its start tag <{top.name}> "
        f"on line {top_line} are spelled differently; XML names are case-sensitive: "
        "spell both the same way",
        None,
    )


def late_declaration(failure: Failure) -> Described | None:
    """An <?xml ...?> declaration with something, even a blank line, before it."""
    line = failure.line
    return (
        line,
        f"line {line}: the <?xml ...?> declaration must be the very first thing in "
        "the file: remove what comes before it, blank lines and spaces included",
        None,
    )


def no_element(failure: Failure) -> Described | None:
    """Text where the <configuration> element should be."""
    line = failure.line
    return (
        line,
        f"line {line}: the file holds no XML element; it should hold a "
        "<configuration> element with an <appSettings> section",
        None,
    )


def forbidden_character(failure: Failure) -> Described | None:
    """A control character XML does not allow (pasted in unseen, or as ``&#1;``)."""
    text, line = failure.text, failure.line
    found = None
    for index in range(failure.line_start, failure.line_end):
        if _not_allowed(ord(text[index])):
            found = index, ord(text[index]), "an invisible character"
            break
    else:
        for ref in _CHAR_REF.finditer(text, failure.line_start, failure.line_end):
            code = int(ref.group(1), 16) if ref.group(1) else int(ref.group(2))
            if _not_allowed(code):
                found = ref.start(), code, f"{ref.group(0)}, an invisible character"
                break
    if found is None:
        return None

    index, code, what = found
    # Name the key whose value holds it, as every other value error does.
    context = context_at(text, index)
    where, key = "the line", None
    if context.tag is not None and context.quote is not None:
        where, key = value_words(text, context.tag, context.quote)
    return (
        line,
        f"line {line}: {where} holds {what} (U+{code:04X}) that XML does not "
        "allow: delete it",
        key,
    )


def _not_allowed(code: int) -> bool:
    """Whether XML 1.0 forbids the character with this code point."""
    return (code < 32 and chr(code) not in "\t\r\n") or code in (0xFFFE, 0xFFFF)


def unknown_prefix(failure: Failure) -> Described | None:
    """A tag name with a prefix (my:add) the file never declares."""
    match = _PREFIX.search(failure.reason)
    if match is None:
        return None
    prefix, name, line = match.group(1), match.group(2), failure.line
    return (
        line,
        f"line {line}: <{prefix}:{name}> has the prefix {prefix}:, which the file "
        f"does not declare: write <{name}>",
        None,
    )
