"""Broken XML from a hand edit: each mistake named in words, on the line to fix."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent.config import check_config, parse_config, read_settings
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
LOG_LEVEL = '<add key="LogLevel" value="Info" />'
#: Words of libxml's own messages, which a technician should never have to read.
LIBXML_WORDS = (
    "xmlParse",
    "EntityRef",
    "mismatch",
    "AttValue",
    "Premature",
    "Extra content",
    "Unescaped",
    "redefined",
    "not terminated",
    "Double hyphen",
    "construct error",
    "Specification mandates",
    "not well-formed",
)


def shipped_with(old: str, new: str) -> str:
    """The shipped file with one piece of text replaced (which must be there)."""
    assert old in SHIPPED
    return SHIPPED.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which ``needle`` first appears."""
    return text[: text.index(needle)].count("\n") + 1


def syntax_error_of(text: str) -> ConfigError:
    """The one error reading ``text`` gives, checked to be a half-saved-file kind."""
    result = parse_config(text.encode("utf-8"), "IntegrationUI.exe.config")
    assert result.settings is None
    assert len(result.errors) == 1
    assert result.incomplete
    return result.errors[0]


# Each case: the edit, the text on the line the message must name, the key, the words.
CASES = {
    "bare ampersand": (
        (LOG_LEVEL, '<add key="LogLevel" value="Info & more" />'),
        "Info & more",
        "LogLevel",
        "a bare & in the value of LogLevel: write &amp; instead",
    ),
    "ampersand without semicolon": (
        (LOG_LEVEL, '<add key="LogLevel" value="R&D" />'),
        "R&D",
        "LogLevel",
        "a bare & in the value of LogLevel: write &amp; instead",
    ),
    "unknown entity": (
        (LOG_LEVEL, '<add key="LogLevel" value="&nbsp;Info" />'),
        "&nbsp;",
        "LogLevel",
        "the value of LogLevel holds &nbsp;, which XML does not know (it knows "
        "&amp; &lt; &gt; &quot; &apos;): for a literal & write &amp;nbsp;",
    ),
    "ampersand between tags": (
        ("<!-- Error, Warning, Info or Debug. -->", "Error & Debug"),
        "Error & Debug",
        None,
        "a bare & in the text between tags: write &amp; instead",
    ),
    "add ended with > not />": (
        (LOG_LEVEL, '<add key="LogLevel" value="Info" >'),
        'value="Info" >',
        "LogLevel",
        "the <add> tag for LogLevel is not closed: end it with '/>'",
    ),
    "an earlier add ended with >": (
        ('value="47800" />', 'value="47800">'),
        'value="47800">',
        "WebPort",
        "the <add> tag for WebPort is not closed: end it with '/>'",
    ),
    "unclosed quote": (
        (LOG_LEVEL, '<add key="LogLevel" value="Info />'),
        'value="Info />',
        "LogLevel",
        'the value of LogLevel has no closing quote: end it with "',
    ),
    "unclosed quote on the key": (
        (LOG_LEVEL, '<add key="LogLevel value="Info" />'),
        'key="LogLevel value=',
        None,
        "the key attribute of <add> has no closing quote, so it runs on into "
        'value=: end it with "',
    ),
    "value without quotes": (
        (LOG_LEVEL, '<add key="LogLevel" value=Info />'),
        "value=Info",
        "LogLevel",
        'the value of LogLevel is not in quotes: write value="..."',
    ),
    "curly quotes": (
        (LOG_LEVEL, '<add key="LogLevel" value=\u201cInfo\u201d />'),
        "\u201cInfo",
        "LogLevel",
        "the value of LogLevel is in curly quotes, which XML does not take (a "
        'word processor puts them in): write value="..."',
    ),
    "less-than in a value": (
        (LOG_LEVEL, '<add key="LogLevel" value="<Info>" />'),
        "<Info>",
        "LogLevel",
        "a < in the value of LogLevel: write &lt; instead",
    ),
    "less-than between tags": (
        ("<!-- Error, Warning, Info or Debug. -->", "Error < Debug"),
        "Error < Debug",
        None,
        "a < that does not start a tag (XML reads < as the start of a tag): "
        "remove the blank after it, or write &lt; for a literal <",
    ),
    "duplicate attribute": (
        (LOG_LEVEL, '<add key="LogLevel" value="Info" value="Debug" />'),
        'value="Debug"',
        "LogLevel",
        "the <add> tag for LogLevel has two value attributes: keep one",
    ),
    "attribute without value": (
        (LOG_LEVEL, '<add key="LogLevel" value "Info" />'),
        'value "Info"',
        "LogLevel",
        "the attribute value in the <add> tag for LogLevel has no = and no quoted "
        'value: write value="..."',
    ),
    "attributes without a blank": (
        (LOG_LEVEL, '<add key="LogLevel"value="Info" />'),
        '"LogLevel"value',
        "LogLevel",
        "the <add> tag for LogLevel needs a blank between its attributes, as in "
        'key="..." value="..."',
    ),
    "blank inside />": (
        (LOG_LEVEL, '<add key="LogLevel" value="Info" / >'),
        "/ >",
        "LogLevel",
        "the <add> tag for LogLevel has a blank between / and >: write '/>' together",
    ),
    "start and end tag in different case": (
        ("<appSettings>", "<AppSettings>"),
        "<AppSettings>",
        None,
        "the start tag <AppSettings> and its end tag </appSettings> on line 22 are "
        "spelled differently; XML names are case-sensitive and this section must "
        "be spelled appSettings: write <appSettings>",
    ),
    "end tag in a different case": (
        ("</appSettings>", "</AppSettings>"),
        "</AppSettings>",
        None,
        "the end tag </AppSettings> is spelled differently from its start tag "
        "<appSettings> on line 9; XML names are case-sensitive and this section "
        "must be spelled appSettings: write </appSettings>",
    ),
    "misspelt end tag": (
        ("</startup>", "</start>"),
        "</start>",
        None,
        "the end tag </start> does not match <startup> opened on line 6: write "
        "</startup>, or remove </start> if it is extra",
    ),
    "section never closed": (
        ("  </appSettings>\n", ""),
        "<appSettings>",
        None,
        "<appSettings> is never closed: add </appSettings> before </configuration> "
        "on line 25",
    ),
    "missing </configuration>": (
        ("</configuration>", ""),
        "<configuration>",
        None,
        "<configuration> is never closed by </configuration>: the file must end "
        "with it (or the file was cut short)",
    ),
    "text after the root": (
        ("</configuration>\n", '</configuration>\n<add key="x" value="y" />\n'),
        '<add key="x"',
        None,
        "there is more after </configuration> (line 26), which must end the file: "
        "remove it, or move it inside <configuration>",
    ),
    "unclosed comment": (
        (
            "<!-- Error, Warning, Info or Debug. -->",
            "<!-- Error, Warning, Info or Debug. ->",
        ),
        "<!-- Error, Warning",
        None,
        "the comment that starts here is never closed: end it with -->",
    ),
    "unclosed comment before another comment": (
        ("<!-- Minutes between", "<!-- Minutes between ->\n<!-- x"),
        "<!-- Minutes between",
        None,
        "the comment that starts here is still open at line 15, which holds --: "
        "end the comment with --> where it should end (XML allows no -- inside a "
        "comment)",
    ),
    "double hyphen in a comment": (
        ("<!-- Error, Warning, Info or Debug. -->", "<!-- Error -- Debug -->"),
        "<!-- Error -- Debug",
        None,
        "the comment holds --, which XML does not allow inside a comment: remove "
        "it (a comment ends with -->)",
    ),
    "declaration after a blank line": (
        ('<?xml version="1.0"', '\n<?xml version="1.0"'),
        "<?xml",
        None,
        "the <?xml ...?> declaration must be the very first thing in the file: "
        "remove what comes before it, blank lines and spaces included",
    ),
    "invisible control character": (
        (LOG_LEVEL, '<add key="LogLevel" value="In\x08fo" />'),
        "In\x08fo",
        "LogLevel",
        "the value of LogLevel holds an invisible character (U+0008) that XML does "
        "not allow: delete it",
    ),
    "undeclared prefix": (
        (LOG_LEVEL, '<my:add key="LogLevel" value="Info" />'),
        "<my:add",
        None,
        "<my:add> has the prefix my:, which the file does not declare: write <add>",
    ),
    "end tag without >": (
        ("</startup>", "</startup"),
        "</startup",
        None,
        "the </startup> tag is not closed: end it with '>' (the XML parser stopped "
        "at line 9: expected '>')",
    ),
}


@pytest.mark.parametrize(("edit", "needle", "key", "words"), CASES.values(), ids=CASES)
def test_each_hand_edit_mistake_is_named_in_words_on_its_line(edit, needle, key, words):
    text = shipped_with(*edit)
    line = line_of(text, needle)

    error = syntax_error_of(text)

    assert str(error) == f"line {line}: {words}"
    assert (error.line, error.key) == (line, key)
    assert not [w for w in LIBXML_WORDS if w in str(error)]


def test_an_unrecognised_mistake_still_names_its_line():
    # A CDATA end in plain text: rare in a hand edit, so it has no words of its own.
    text = shipped_with("<startup>", "<startup>\n]]>")

    error = syntax_error_of(text)

    assert str(error) == (
        f"line {line_of(text, ']]>')}: the XML is not well-formed (Sequence ']]>' "
        "not allowed in content); fix the markup on that line or just before it"
    )


def test_a_long_parser_reason_is_cut_to_its_first_line():
    text = shipped_with("<startup>", "<startup>\n<![CDATA[ never ended")

    error = syntax_error_of(text)

    assert "\n" not in str(error)
    assert str(error).startswith(f"line {error.line}: the XML is not well-formed (")


def test_a_declaration_among_the_sections_is_named():
    text = shipped_with("<startup>", "<startup>\n<!ELEMENT x ANY>")

    error = syntax_error_of(text)

    assert str(error) == (
        f"line {line_of(text, '<!ELEMENT')}: <!ELEMENT is markup the agent's config "
        "does not take; only comments (<!-- ... -->) start with <!: remove it"
    )


def test_the_line_is_right_in_a_utf16_file_with_crlf_line_ends(tmp_path):
    text = shipped_with('encoding="utf-8"', 'encoding="utf-16"')
    text = text.replace(LOG_LEVEL, '<add key="LogLevel" value="\u00e9t\u00e9 & co" />')
    path = tmp_path / "IntegrationUI.exe.config"
    path.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))

    with pytest.raises(ConfigError) as caught:
        read_settings(path)

    assert caught.value.line == line_of(text, "& co")
    assert "a bare & in the value of LogLevel" in str(caught.value)


def test_check_config_prints_the_words_not_the_parser_text(tmp_path):
    path = tmp_path / "IntegrationUI.exe.config"
    text = shipped_with(LOG_LEVEL, '<add key="LogLevel" value="Info" >')
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()

    assert check_config(path, out) == 1

    line = line_of(text, 'value="Info" >')
    assert out.getvalue().splitlines() == [
        f"ERROR: {path}",
        f"  line {line}: the <add> tag for LogLevel is not closed: end it with '/>'",
    ]
