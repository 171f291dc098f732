"""Writing changed values back into the config file, touching no other byte."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.config.document import ConfigDocument, load_document
from agent.config.markup import Element
from agent.config.reader import effective_entries, parse_config, read_config_bytes
from agent.config.settings import KEYS, SECTIONS, KeySpec, key_spec
from agent.errors import ConfigError

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
STALE_TEMP_AGE = 60.0
REPLACE_ATTEMPTS = 10

# An edit replaces text[start:end] with new text; an insertion has start == end.
Edit = tuple[int, int, str]


def write_settings(path: Path, changes: dict[str, str]) -> None:
    """Write the changed values (by .NET key name) into the file at ``path``."""
    data = read_config_bytes(path)
    new_data = render_changes(data, changes, path)
    if new_data != data:
        replace_file(path, new_data)


def render_changes(data: bytes, changes: dict[str, str], path: Path | str) -> bytes:
    """The file's bytes with ``changes`` spliced in; the bytes unchanged if none differ.

    Raises ConfigError, changing nothing, for an unknown key, a bad value, a file
    that cannot be read as XML, or a result that would not validate.
    """
    wanted = _validate(changes, str(path))
    document = load_document(data, path)
    if document.encode(document.text) != data[len(document.bom) :]:
        raise ConfigError(
            f"cannot change {path} without re-encoding other parts of it; save it "
            "as UTF-8 and try again",
            path=str(path),
        )

    in_force = {
        section: effective_entries(document, section)[0] for section in SECTIONS
    }
    edits: list[Edit] = []
    missing: dict[str, list[tuple[KeySpec, str]]] = {}
    for spec, value in wanted:
        entry = in_force[spec.section].get(spec.name.lower())
        if entry is None:
            if value != spec.default:
                missing.setdefault(spec.section, []).append((spec, spec.format(value)))
            continue
        if _parsed_or_none(spec, entry.value) == value:
            continue
        edits.append(_value_edit(entry.element, spec.format(value)))
    edits.extend(
        _insertion(document, section, specs) for section, specs in missing.items()
    )
    if not edits:
        return data

    new_data = _apply(document, edits)
    result = parse_config(new_data, path)
    if result.errors:
        raise result.errors[0]
    return new_data


def _validate(changes: dict[str, str], where: str) -> list[tuple[KeySpec, Any]]:
    """Each change's key and parsed value, in the order of KEYS; ConfigError if bad."""
    wanted = {}
    for name, raw in changes.items():
        spec = key_spec(name)
        if spec is None:
            known = ", ".join(s.name for s in KEYS)
            raise ConfigError(
                f"cannot write the setting {name!r}: the agent's settings are {known}",
                path=where,
                key=name,
            )
        text = str(raw).strip()
        try:
            wanted[spec.name] = (spec, spec.parse(text))
        except ValueError:
            raise ConfigError(
                spec.error_text(text), path=where, key=spec.name
            ) from None
    return [wanted[s.name] for s in KEYS if s.name in wanted]


def _parsed_or_none(spec: KeySpec, raw: str | None) -> Any:
    """The value ``raw`` stands for, or None when it is not a valid one."""
    try:
        return spec.parse((raw or "").strip())
    except ValueError:
        return None


def _escape(value: str, quote: str) -> str:
    """``value`` made safe inside an attribute quoted with ``quote``."""
    value = value.replace("&", "&amp;").replace("<", "&lt;")
    return value.replace(quote, "&quot;" if quote == '"' else "&apos;")


def _value_edit(element: Element, value: str) -> Edit:
    """Replace the value attribute's text, or add one after the key when absent."""
    attribute = element.attribute("value")
    if attribute is not None:
        return (
            attribute.value_start,
            attribute.value_end,
            _escape(value, attribute.quote),
        )
    key = element.attribute("key")
    assert key is not None
    after = key.value_end + 1
    return after, after, f" value={key.quote}{_escape(value, key.quote)}{key.quote}"


def _add_tag(
    key: str, value: str, like: Element | None, document: ConfigDocument
) -> str:
    """A new ``<add>`` written in the style of its neighbour (quotes, closing)."""
    quote, closing = '"', " />"
    if like is not None:
        attribute = like.attribute("value") or like.attribute("key")
        quote = attribute.quote if attribute else quote
        if like.self_closing and document.text[like.end - 3 : like.end] != " />":
            closing = "/>"
    return (
        f"<add key={quote}{_escape(key, quote)}{quote} "
        f"value={quote}{_escape(value, quote)}{quote}{closing}"
    )


def _insertion(
    document: ConfigDocument, name: str, missing: list[tuple[KeySpec, str]]
) -> Edit:
    """New ``<add>`` lines at the end of section ``name`` (or in a new section)."""
    section = document.sections.get(name)
    if section is not None:
        like = next((c for c in reversed(section.children) if c.name == "add"), None)
        lines = [(0, _add_tag(s.name, v, like, document)) for s, v in missing]
        return _append_children(document, section, lines)

    lines = [(0, f"<{name}>")]
    lines += [(1, _add_tag(s.name, v, None, document)) for s, v in missing]
    lines.append((0, f"</{name}>"))
    return _append_children(document, document.root, lines)


def _append_children(
    document: ConfigDocument, parent: Element, lines: list[tuple[int, str]]
) -> Edit:
    """An edit adding ``lines`` (depth below a child, text) after the last content."""
    text, newline, unit = document.text, document.newline, document.indent_unit()
    parent_indent = document.indent_of(parent.start)
    indent = parent_indent + unit
    if parent.children:
        last = parent.children[-1]
        if document.line_of(last.start) != document.line_of(parent.start):
            indent = document.indent_of(last.start)
    block = "".join(f"{newline}{indent}{unit * depth}{line}" for depth, line in lines)
    closing = f"{newline}{parent_indent}</{parent.name}>"

    if parent.self_closing:
        head = text[parent.start : parent.end - 2].rstrip()
        return parent.start, parent.end, f"{head}>{block}{closing}"

    # New entries go after everything already inside (comments included), on the
    # line before the end tag, which keeps its own line and indentation.
    assert parent.close_start is not None
    inside = text[parent.end : parent.close_start]
    content_end = parent.end + len(inside.rstrip())
    trailing = text[content_end : parent.close_start]
    if "\n" in trailing or "\r" in trailing:
        return content_end, content_end, block
    return content_end, content_end, f"{block}{newline}{parent_indent}"


def _apply(document: ConfigDocument, edits: list[Edit]) -> bytes:
    """The file's bytes with each edit spliced in at its byte offsets."""
    data = document.data
    for start, end, text in sorted(edits, reverse=True):
        first, last = document.byte_offset(start), document.byte_offset(end)
        data = data[:first] + document.encode(text) + data[last:]
    return data


def replace_file(path: Path, data: bytes) -> None:
    """Replace the file at ``path`` by ``data`` atomically, keeping its permissions.

    The bytes go to a temporary file in the same folder, reach the disk (fsync),
    and take the file's place in one rename, so a crash leaves the old file or
    the new one, never half of either.
    """
    target = Path(os.path.realpath(path))
    try:
        status = target.stat()
    except FileNotFoundError as err:
        raise ConfigError(f"file not found: {path}", path=str(path)) from err
    if not status.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise ConfigError(
            f"the config file is read-only: {path}; clear its read-only flag or run "
            "the agent as a user who may change it, then save again",
            path=str(path),
        )

    temp_name = ""
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent
        )
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, stat.S_IMODE(status.st_mode))
        _keep_owner(temp_name, status)
        _rename_over(temp_name, target)
    except OSError as err:
        if temp_name:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
        raise ConfigError(
            f"cannot write {path}: {err.strerror or err}; check that the agent's user "
            "may change that folder and that the disk is not full",
            path=str(path),
        ) from err
    _sync_folder(target.parent)
    logger.debug("Wrote %s (%d bytes)", target, len(data))


def remove_stale_temp_files(path: Path, older_than: float = STALE_TEMP_AGE) -> None:
    """Delete temporary files an interrupted write of ``path`` left behind."""
    target = Path(os.path.realpath(path))
    cutoff = time.time() - older_than
    for candidate in target.parent.glob(f".{target.name}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if candidate.stat().st_mtime < cutoff:
                candidate.unlink()
                logger.info("Removed %s, left by an interrupted save", candidate)


def _rename_over(temp_name: str, target: Path) -> None:
    """Rename the temporary file over the target, waiting out a brief lock."""
    for attempt in range(REPLACE_ATTEMPTS):
        try:
            os.replace(temp_name, target)
            return
        except PermissionError:
            # Windows refuses the rename while another program has the file open
            # (an editor or a virus scanner); such locks last milliseconds.
            if os.name != "nt" or attempt == REPLACE_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


def _keep_owner(temp_name: str, status: os.stat_result) -> None:
    """Give the new file the old one's owner where the system lets us."""
    if not hasattr(os, "chown"):
        return
    # Only an administrator may give a file away; anyone else keeps their own.
    with contextlib.suppress(OSError):
        os.chown(temp_name, status.st_uid, status.st_gid)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows has no folder handles)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
