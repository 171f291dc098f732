"""The config file as text with positions: encoding, elements, appSettings entries.

The file is decoded exactly as written (byte-order mark and the XML declaration's
encoding honoured), checked for well-formedness by lxml, and scanned by a small
tokenizer that records where every start tag, attribute value and end tag sits, so
the writer can splice one value and leave every other byte alone.
"""

from __future__ import annotations

import bisect
import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from agent.config.markup import NAME, Element, scan_elements, unclosed_tag, walk
from agent.errors import ConfigError

APP_SETTINGS = "appSettings"
ROOT_NAME = "configuration"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED_ENCODING = re.compile(
    rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']"""
)
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LXML_WHERE = re.compile(r", line \d+, column \d+$")
_KEY_IN_TAG = re.compile(r"""\skey\s*=\s*(["'])(.*?)\1""", re.S)


class ConfigSyntaxError(ConfigError):
    """The file is empty or not well-formed XML: it may still be being written."""


@dataclass(frozen=True)
class Entry:
    """One child of appSettings: ``add``, ``remove`` or ``clear``."""

    kind: str
    key: str | None
    value: str | None
    line: int
    element: Element


@dataclass
class ConfigDocument:
    """A well-formed config file: its bytes, text, encoding and appSettings."""

    path: str
    data: bytes
    bom: bytes
    codec: str
    text: str
    root: Element
    app_settings: Element | None
    entries: list[Entry]
    _line_starts: list[int]

    def line_of(self, position: int) -> int:
        """The 1-based line of a text position (CRLF, CR and LF all end a line)."""
        return bisect.bisect_right(self._line_starts, position)

    def byte_offset(self, position: int) -> int:
        """Where a text position falls in the file's bytes."""
        return len(self.bom) + len(self.text[:position].encode(self.codec))

    def encode(self, text: str) -> bytes:
        """``text`` in the file's encoding (no byte-order mark)."""
        return text.encode(self.codec)

    @property
    def newline(self) -> str:
        """The line end the file uses (the first one found; LF when there is none)."""
        match = _NEWLINE.search(self.text)
        return match.group(0) if match else "\n"

    def indent_of(self, position: int) -> str:
        """The blanks that start the line holding ``position``."""
        line_start = self._line_starts[self.line_of(position) - 1]
        prefix = self.text[line_start:position]
        return prefix[: len(prefix) - len(prefix.lstrip(" \t"))]

    def indent_unit(self) -> str:
        """How much deeper a child sits than its parent in this file (two blanks)."""
        for element in walk(self.root):
            parent = element.parent
            if parent is None or self.line_of(element.start) == self.line_of(
                parent.start
            ):
                continue
            outer, inner = self.indent_of(parent.start), self.indent_of(element.start)
            if inner.startswith(outer) and len(inner) > len(outer):
                return inner[len(outer) :]
        return "  "


def load_document(data: bytes, path: Path | str) -> ConfigDocument:
    """Decode, check and scan ``data``; raise ConfigError naming the line at fault."""
    where = str(path)
    bom, codec = _detect_encoding(data, where)
    body = data[len(bom) :]
    text = _decode(body, codec, where)
    line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    if not text.strip():
        raise ConfigSyntaxError(
            "line 1: the file is empty; it should hold a <configuration> element "
            "with an <appSettings> section",
            path=where,
            line=1,
        )
    tree = _parse_xml(data, text, line_starts, where)
    elements = scan_elements(text, where)
    _match_tree(tree, elements, where)

    document = ConfigDocument(
        path=where,
        data=data,
        bom=bom,
        codec=codec,
        text=text,
        root=elements[0],
        app_settings=None,
        entries=[],
        _line_starts=line_starts,
    )
    if tree.getroottree().docinfo.doctype:
        raise ConfigError(
            "line 1: the config file has a DOCTYPE, which the agent does not accept; "
            "remove it",
            path=where,
            line=1,
        )
    _read_structure(document, tree, elements)
    return document


def _detect_encoding(data: bytes, where: str) -> tuple[bytes, str]:
    """The byte-order mark and the Python codec of the file's bytes."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return bom, codec

    # Without a mark, UTF-16 shows itself by the zero bytes around "<?".
    if data.startswith(b"<\x00?\x00"):
        return b"", "utf-16-le"
    if data.startswith(b"\x00<\x00?"):
        return b"", "utf-16-be"

    match = _DECLARED_ENCODING.match(data[:512])
    if not match:
        return b"", "utf-8"
    declared = match.group(1).decode("ascii")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise ConfigError(
            f"line 1: the XML declaration names the encoding {declared!r}, which is "
            'not known; save the file as UTF-8 and declare encoding="utf-8"',
            path=where,
            line=1,
        ) from None
    if codec.startswith(("utf-16", "utf-32")):
        raise ConfigError(
            f"line 1: the XML declaration says {declared} but the file is not "
            "saved that way; save it again as UTF-8, or as UTF-16 with its mark",
            path=where,
            line=1,
        )
    return b"", codec


def _decode(body: bytes, codec: str, where: str) -> str:
    """The text of the file, or ConfigError naming the line with the bad bytes."""
    try:
        return body.decode(codec)
    except UnicodeDecodeError as err:
        good = body[: err.start].decode(codec, errors="replace")
        line = len(_NEWLINE.findall(good)) + 1
        raise ConfigError(
            f"line {line}: the file holds bytes that are not valid {codec}; save it "
            "again as UTF-8, or fix the encoding its XML declaration names",
            path=where,
            line=line,
        ) from err


def _parse_xml(
    data: bytes, text: str, line_starts: list[int], where: str
) -> etree._Element:
    """The lxml tree of ``data``, or ConfigSyntaxError naming the line at fault."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        line = err.lineno or 1
        reason = _LXML_WHERE.sub("", err.msg or str(err))
        column = (err.position[1] if err.position else 1) or 1
        position = min(
            line_starts[min(line, len(line_starts)) - 1] + column - 1, len(text)
        )
        raise _describe_syntax_error(text, position, line, reason, where) from err


def _describe_syntax_error(
    text: str, position: int, line: int, reason: str, where: str
) -> ConfigSyntaxError:
    """The most useful message for broken XML: an unclosed tag names its own line."""
    opened, how = unclosed_tag(text, position)
    if opened is None:
        return ConfigSyntaxError(
            f"line {line}: the XML is not well-formed ({reason}); fix the markup "
            "on that line or just before it",
            path=where,
            line=line,
        )

    tag_line = len(_NEWLINE.findall(text, 0, opened)) + 1
    slash = "/" if text.startswith("</", opened) else ""
    name_match = NAME.match(text, opened + 1 + len(slash))
    name = slash + (name_match.group(0) if name_match else "")
    key_match = _KEY_IN_TAG.search(text, opened, position)
    key = key_match.group(2).strip() if key_match else None
    subject = f"the <{name}> tag" + (f" for {key}" if key else "")
    if how == "end":
        message = (
            f"line {tag_line}: the file ends inside {subject}; it was cut short or "
            "is still being saved"
        )
    else:
        message = (
            f"line {tag_line}: {subject} is not closed: end it with '/>' "
            f"(the XML parser stopped at line {line}: {reason})"
        )
    return ConfigSyntaxError(message, path=where, line=tag_line, key=key)


def _match_tree(tree: etree._Element, elements: list[Element], where: str) -> None:
    """Check the tokenizer saw the elements lxml saw, so its positions hold."""
    names = [etree.QName(e).localname for e in tree.iter() if isinstance(e.tag, str)]
    if names != [e.local_name for e in elements]:
        raise ConfigError(
            "the agent could not line up this file's elements with the XML parser's; "
            "save it again as plain XML without entities or unusual markup",
            path=where,
        )


def _read_structure(
    document: ConfigDocument, tree: etree._Element, elements: list[Element]
) -> None:
    """Find the appSettings section and its entries, rejecting what .NET rejects."""
    where = document.path
    root = document.root
    if root.local_name != ROOT_NAME:
        raise ConfigError(
            f"line {document.line_of(root.start)}: the top element must be "
            f"<{ROOT_NAME}>, not <{root.name}>",
            path=where,
            line=document.line_of(root.start),
        )

    nodes = dict(
        zip(elements, (e for e in tree.iter() if isinstance(e.tag, str)), strict=True)
    )
    for section in root.children:
        line = document.line_of(section.start)
        if section.local_name == APP_SETTINGS:
            if document.app_settings is not None:
                first = document.line_of(document.app_settings.start)
                raise ConfigError(
                    f"line {line}: a second <{APP_SETTINGS}> section (the first is on "
                    f"line {first}); .NET allows one: merge them",
                    path=where,
                    line=line,
                )
            document.app_settings = section
        elif section.local_name.lower() == APP_SETTINGS.lower():
            raise ConfigError(
                f"line {line}: unrecognized configuration section <{section.name}>; "
                f".NET section names are case-sensitive: write <{APP_SETTINGS}>",
                path=where,
                line=line,
            )

    if document.app_settings is not None:
        _read_entries(document, document.app_settings, nodes)


def _read_entries(
    document: ConfigDocument, section: Element, nodes: dict[Element, etree._Element]
) -> None:
    """The add, remove and clear elements of appSettings, checked as .NET does."""
    where = document.path
    for attribute in ("file", "configSource"):
        if section.attribute(attribute) is not None:
            line = document.line_of(section.start)
            raise ConfigError(
                f"line {line}: <{APP_SETTINGS} {attribute}=...> points at another "
                "file, which the agent does not read; move those keys into this file",
                path=where,
                line=line,
            )

    allowed = {"add": {"key", "value"}, "remove": {"key"}, "clear": set()}
    for child in section.children:
        line = document.line_of(child.start)
        node = nodes[child]
        key = node.get("key")
        if child.name not in allowed:
            raise ConfigError(
                f"line {line}: unrecognized element <{child.name}> in "
                f"<{APP_SETTINGS}>; only add, remove and clear belong there",
                path=where,
                line=line,
            )
        for name in node.attrib:
            if name not in allowed[child.name]:
                raise ConfigError(
                    f"line {line}: unrecognized attribute {name!r} on "
                    f"<{child.name}>; it takes "
                    + (" and ".join(sorted(allowed[child.name])) or "no attributes"),
                    path=where,
                    line=line,
                    key=key,
                )
        if child.name != "clear" and (key is None or not key.strip()):
            raise ConfigError(
                f"line {line}: <{child.name}> in <{APP_SETTINGS}> has no key; "
                f'write <{child.name} key="..." ...>',
                path=where,
                line=line,
            )
        document.entries.append(
            Entry(
                child.name,
                key.strip() if key is not None else None,
                node.get("value"),
                line,
                child,
            )
        )
