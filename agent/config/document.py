"""The config file as text with positions: encoding, elements, section entries.

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

from agent.config.markup import Element, scan_elements, walk
from agent.config.settings import APP_SETTINGS, SECTIONS
from agent.config.syntax import ConfigSyntaxError, syntax_error
from agent.errors import ConfigError

ROOT_NAME = "configuration"
#: Sections and groups .NET's machine.config declares for every program (and
#: configSections itself); like declared ones, they must be spelt in this case.
BUILT_IN_SECTIONS = (
    "appSettings",
    "configProtectedData",
    "configSections",
    "connectionStrings",
    "mscorlib",
    "runtime",
    "satelliteassemblies",
    "startup",
    "system.data",
    "system.diagnostics",
    "system.net",
    "system.runtime.remoting",
    "system.serviceModel",
    "system.transactions",
    "system.web",
    "system.xml.serialization",
    "uri",
    "windows",
)

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

#: A declared section name: its <section> or <sectionGroup> element (None for
#: .NET's own) and, for a group, the names declared inside it.
Sections = dict[str, tuple["Element | None", "Sections | None"]]


@dataclass(frozen=True)
class Entry:
    """One child of a name-value section: ``add``, ``remove`` or ``clear``."""

    kind: str
    key: str | None
    value: str | None
    line: int
    element: Element


@dataclass
class ConfigDocument:
    """A well-formed config file: its bytes, text, encoding and key sections."""

    path: str
    data: bytes
    bom: bytes
    codec: str
    text: str
    root: Element
    #: The name-value sections found (appSettings, integrationLogging) by name.
    sections: dict[str, Element]
    #: Each of those sections' add, remove and clear elements, in file order.
    section_entries: dict[str, list[Entry]]
    _line_starts: list[int]

    @property
    def app_settings(self) -> Element | None:
        """The appSettings section, or None when the file has none."""
        return self.sections.get(APP_SETTINGS)

    @property
    def entries(self) -> list[Entry]:
        """The entries of appSettings."""
        return self.section_entries.get(APP_SETTINGS, [])

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
        sections={},
        section_entries={},
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
        line, column = err.position if err.position else (err.lineno or 1, 1)
        reason = _LXML_WHERE.sub("", err.msg or str(err))
        raise syntax_error(
            text, line_starts, line or 1, column or 1, err.code, reason, where
        ) from err


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
    """Find the key sections and their entries, rejecting what .NET rejects."""
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
        name = section.local_name
        if name in SECTIONS:
            earlier = document.sections.get(name)
            if earlier is not None:
                first = document.line_of(earlier.start)
                raise ConfigError(
                    f"line {line}: a second <{name}> section (the first is on "
                    f"line {first}); .NET allows one: merge them",
                    path=where,
                    line=line,
                )
            document.sections[name] = section
    _check_section_names(document, root.children, _declared_sections(root, nodes))

    for name, section in document.sections.items():
        document.section_entries[name] = _read_entries(document, section, nodes)


def _declared_sections(root: Element, nodes: dict[Element, etree._Element]) -> Sections:
    """The sections and groups <configSections> declares, with .NET's own at top."""
    declared: Sections = {name: (None, None) for name in BUILT_IN_SECTIONS}
    for child in root.children:
        if child.name == "configSections":
            declared.update(_declarations(child, nodes))
    return declared


def _declarations(parent: Element, nodes: dict[Element, etree._Element]) -> Sections:
    """The <section> and <sectionGroup> names under ``parent``, groups with theirs."""
    declared: Sections = {}
    for child in parent.children:
        name = nodes[child].get("name")
        if not name:
            continue
        if child.name == "section":
            declared[name] = (child, None)
        elif child.name == "sectionGroup":
            declared[name] = (child, _declarations(child, nodes))
    return declared


def _check_section_names(
    document: ConfigDocument, elements: list[Element], declared: Sections
) -> None:
    """Refuse a section spelt in another case than declared, as .NET refuses it."""
    by_lower = {name.lower(): name for name in declared}
    for element in elements:
        if element.name in declared:
            group = declared[element.name][1]
            if group is not None:
                _check_section_names(document, element.children, group)
            continue

        spelled = by_lower.get(element.name.lower())
        if spelled is None:
            continue
        line = document.line_of(element.start)
        declaration = declared[spelled][0]
        where = (
            ""
            if declaration is None
            else f" as <configSections> declares it on line "
            f"{document.line_of(declaration.start)}"
        )
        end_tag = "" if element.close_start is None else f" and </{spelled}>"
        raise ConfigError(
            f"line {line}: unrecognized configuration section <{element.name}>; "
            f".NET section names are case-sensitive: write <{spelled}>{end_tag}"
            f"{where}",
            path=document.path,
            line=line,
        )


def _read_entries(
    document: ConfigDocument, section: Element, nodes: dict[Element, etree._Element]
) -> list[Entry]:
    """The add, remove and clear elements of a section, checked as .NET does."""
    where = document.path
    name = section.local_name
    entries: list[Entry] = []
    for attribute in ("file", "configSource"):
        if section.attribute(attribute) is not None:
            line = document.line_of(section.start)
            raise ConfigError(
                f"line {line}: <{name} {attribute}=...> points at another "
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
                f"<{name}>; only add, remove and clear belong there",
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
                f"line {line}: <{child.name}> in <{name}> has no key; "
                f'write <{child.name} key="..." ...>',
                path=where,
                line=line,
            )
        entries.append(
            Entry(
                child.name,
                key.strip() if key is not None else None,
                node.get("value"),
                line,
                child,
            )
        )
    return entries
