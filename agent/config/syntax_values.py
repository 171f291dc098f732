"""Plain words for mistakes inside a tag: a bare & or <, quotes, attributes."""

from __future__ import annotations

import re

from agent.config.xml_context import (
    NAME_BEFORE,
    Described,
    Failure,
    context_at,
    describe_tag,
    key_of,
    tag_name,
    value_words,
)

#: libxml2's code for an entity reference no DTD declares (&nbsp;).
UNDECLARED_ENTITY = 26

_REDEFINED = re.compile(r"Attribute (\S+) redefined")
_GLUED = re.compile(r"""=\s*(["'])[^"'<]*\1(?=[^\s/>])""")
_CURLY_QUOTES = "\u201c\u201d\u201e\u2018\u2019\u00ab\u00bb"


def ampersand(failure: Failure) -> Described | None:
    """A bare '&', or an entity XML does not know, in a value or between tags."""
    text, line = failure.text, failure.line
    amp = text.rfind("&", failure.line_start, failure.position + 1)
    if amp < 0:
        return None

    context = context_at(text, amp)
    key = None
    if context.quote is not None and context.tag is not None:
        where, key = value_words(text, context.tag, context.quote)
    elif context.tag is None:
        where = "the text between tags"
    else:
        return None

    entity = re.match(r"&([^\s;&<\"']+);", text[amp:])
    if failure.code == UNDECLARED_ENTITY and entity:
        name = entity.group(1)
        message = (
            f"line {line}: {where} holds &{name};, which XML does not know (it "
            f"knows &amp; &lt; &gt; &quot; &apos;): for a literal & write &amp;{name};"
        )
    else:
        message = f"line {line}: a bare & in {where}: write &amp; instead"
    return line, message, key


def name_required(failure: Failure) -> Described | None:
    """A bare '&', a '<' that starts no tag, or junk among a tag's attributes."""
    if "EntityRef" in failure.reason:
        return ampersand(failure)

    text, line = failure.text, failure.line
    context = context_at(text, failure.position)
    if context.tag is not None and context.tag < failure.position - 1:
        subject, key = describe_tag(text, context.tag, failure.position)
        slash = text.find("/", failure.position - 1, failure.position + 2)
        if slash < 0:
            problem = (
                "has a stray character among its attributes: write them as "
                "name=\"value\" and end the tag with '/>'"
            )
        elif text[slash + 1 :].lstrip(" \t").startswith(">"):
            problem = "has a blank between / and >: write '/>' together"
        else:
            problem = "has a / that does not end it: end the tag with '/>'"
        return line, f"line {line}: {subject} {problem}", key

    lt = text.rfind("<", failure.line_start, failure.position + 1)
    if lt < 0:
        return None
    if text.startswith("<!", lt):
        return (
            line,
            f"line {line}: {text[lt : lt + 9].split()[0]} is markup the agent's "
            "config does not take; only comments (<!-- ... -->) start with <!: "
            "remove it",
            None,
        )
    blank = lt + 1 < len(text) and text[lt + 1].isspace()
    advice = (
        "remove the blank after it, or write &lt; for a literal <"
        if blank
        else "write &lt; for a literal <"
    )
    return (
        line,
        f"line {line}: a < that does not start a tag (XML reads < as the start of "
        f"a tag): {advice}",
        None,
    )


def lt_in_value(failure: Failure) -> Described | None:
    """A '<' inside a value: written there, or reached because a quote is missing."""
    text = failure.text
    lt = text.rfind("<", failure.line_start, failure.position + 1)
    if lt < 0:
        return None
    context = context_at(text, lt)
    if context.tag is None or context.quote is None:
        return None

    what, key = value_words(text, context.tag, context.quote)
    swallowed = text[context.quote + 1 : lt]
    if "\n" in swallowed or "\r" in swallowed or ">" in swallowed:
        line = failure.line_of(context.quote)
        quote = text[context.quote]
        return (
            line,
            f"line {line}: {what} has no closing quote: end it with {quote}",
            key,
        )
    line = failure.line_of(lt)
    return line, f"line {line}: a < in {what}: write &lt; instead", key


def unquoted_value(failure: Failure) -> Described | None:
    """A value without straight quotes: none at all, or a word processor's."""
    text, line = failure.text, failure.line
    equals = text.rfind("=", failure.line_start, failure.position + 1)
    lt = text.rfind("<", 0, equals)
    if equals < 0 or lt < 0:
        return None

    name = NAME_BEFORE.search(text, lt, equals)
    attribute = name.group(1) if name else "value"
    key = key_of(text, lt, failure.line_end)
    if attribute == "value" and key:
        what = f"the value of {key}"
    else:
        owner = f"<{tag_name(text, lt)}>" + (f" for {key}" if key else "")
        what = f"the {attribute} attribute of {owner}"
    after = text[equals + 1 : failure.position + 2].lstrip()
    if after[:1] and after[0] in _CURLY_QUOTES:
        problem = (
            f"{what} is in curly quotes, which XML does not take (a word "
            "processor puts them in)"
        )
    else:
        problem = f"{what} is not in quotes"
    return line, f'line {line}: {problem}: write {attribute}="..."', key


def attribute_without_value(failure: Failure) -> Described | None:
    """An attribute name with no '=' and value after it."""
    text, line = failure.text, failure.line
    context = context_at(text, failure.position)
    if context.tag is None:
        return None
    name = NAME_BEFORE.search(text, context.tag, failure.position)
    if name is None or name.start() <= context.tag + 1:
        return None
    subject, key = describe_tag(text, context.tag, failure.position)
    attribute = name.group(1)
    return (
        line,
        f"line {line}: the attribute {attribute} in {subject} has no = and no "
        f'quoted value: write {attribute}="..."',
        key,
    )


def attribute_twice(failure: Failure) -> Described | None:
    """The same attribute written twice in one tag."""
    text = failure.text
    context = context_at(text, failure.position)
    match = _REDEFINED.search(failure.reason)
    if context.tag is None or match is None:
        return None
    line = failure.line_of(context.tag)
    subject, key = describe_tag(text, context.tag, failure.position)
    attribute = match.group(1)
    return (
        line,
        f"line {line}: {subject} has two {attribute} attributes: keep one",
        key,
    )


def glued_attributes(failure: Failure) -> Described | None:
    """Two attributes with no blank between them."""
    text, line = failure.text, failure.line
    context = context_at(text, failure.position)
    if context.tag is None:
        return None
    glued = _GLUED.search(text, context.tag, failure.position + 2)
    if glued is None:
        return None

    # key="LogLevel value="Info": the first value lost its closing quote.
    opening, closing = glued.start(1), glued.end() - 1
    runs_on = NAME_BEFORE.search(text, opening + 1, closing - 1)
    if runs_on is not None and text[closing - 1] == "=":
        words, _ = value_words(text, context.tag, opening)
        return (
            line,
            f"line {line}: {words} has no closing quote, so it runs on into "
            f"{runs_on.group(1)}=: end it with {text[opening]}",
            None,
        )
    subject, key = describe_tag(text, context.tag, failure.position + 2)
    return (
        line,
        f"line {line}: {subject} needs a blank between its attributes, as in "
        'key="..." value="..."',
        key,
    )
