"""Reading the config file into Settings, with errors that name the line and key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config.document import (
    ConfigDocument,
    ConfigSyntaxError,
    Entry,
    load_document,
)
from agent.config.settings import (
    APP_SETTINGS,
    KEYS,
    SECTIONS,
    Settings,
    closest_key,
    key_spec,
)
from agent.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnknownKey:
    """A key the agent does not use: where it is, and a note saying so in words."""

    key: str
    line: int
    note: str

    def __str__(self) -> str:
        """The note, as check-config and the log show it."""
        return self.note


@dataclass(frozen=True)
class ParseResult:
    """What one read of the file gave: settings, or the errors that stop them."""

    settings: Settings | None
    errors: tuple[ConfigError, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Empty or not well-formed: the file may be caught in the middle of a save.
    incomplete: bool = False
    #: Keys in force that the agent does not use, in file order.
    unknown: tuple[UnknownKey, ...] = ()


def read_config_bytes(path: Path) -> bytes:
    """The file's bytes, or ConfigError saying why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(f"file not found: {path}", path=str(path)) from err
    except IsADirectoryError as err:
        raise ConfigError(
            f"{path} is a folder, not a config file; give the path of "
            "IntegrationUI.exe.config",
            path=str(path),
        ) from err
    except OSError as err:
        raise ConfigError(
            f"cannot read {path}: {err.strerror or err}; check that the agent's user "
            "may read it",
            path=str(path),
        ) from err


def effective_entries(
    document: ConfigDocument, section: str = APP_SETTINGS
) -> tuple[dict[str, Entry], tuple[str, ...]]:
    """The add in force for each key (lower-case) of ``section``, as .NET reads it.

    remove and clear apply as in appSettings and NameValueSectionHandler sections.
    Also returns a warning for each key set more than once, the last one winning.
    """
    in_force: dict[str, Entry] = {}
    warnings = []
    for entry in document.section_entries.get(section, []):
        if entry.kind == "clear":
            in_force.clear()
            continue
        assert entry.key is not None
        lower = entry.key.lower()
        if entry.kind == "remove":
            in_force.pop(lower, None)
            continue
        earlier = in_force.get(lower)
        if earlier is not None:
            warnings.append(
                f"line {entry.line}: {entry.key} is set again (also on line "
                f"{earlier.line}); the last one, on line {entry.line}, wins as in .NET"
            )
        in_force[lower] = entry
    return in_force, tuple(warnings)


def parse_config(data: bytes, path: Path | str) -> ParseResult:
    """Settings from the file's bytes, or every error found in them."""
    try:
        document = load_document(data, path)
    except ConfigSyntaxError as err:
        return ParseResult(None, (err,), incomplete=True)
    except ConfigError as err:
        return ParseResult(None, (err,))

    in_force_by_section: dict[str, dict[str, Entry]] = {}
    warnings: list[str] = []
    for section in SECTIONS:
        in_force, repeated = effective_entries(document, section)
        in_force_by_section[section] = in_force
        warnings.extend(repeated)

    values: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for spec in KEYS:
        entry = in_force_by_section[spec.section].get(spec.name.lower())
        if entry is None:
            continue
        raw = (entry.value or "").strip()
        try:
            values[spec.field] = spec.parse(raw)
        except ValueError:
            errors.append(
                ConfigError(
                    f"line {entry.line}: {spec.error_text(raw)}",
                    path=str(path),
                    line=entry.line,
                    key=spec.name,
                )
            )

    # A key close to a known one is most likely that key misspelt: using the
    # defaults instead would quietly undo the setting, so it stops the file like a
    # bad value does. A key like no known one is only noted. A known key in the
    # other section would be silently unread, so it stops the file too.
    unknown: list[UnknownKey] = []
    for section, in_force in in_force_by_section.items():
        for entry in in_force.values():
            if not entry.key or key_spec(entry.key, section) is not None:
                continue
            elsewhere = key_spec(entry.key)
            meant = closest_key(entry.key, section)
            if elsewhere is not None:
                errors.append(_misplaced_key(entry, section, elsewhere.section, path))
            elif meant is None:
                unknown.append(_unknown_key(entry))
            else:
                errors.append(_misspelt_key(entry, meant.name, path))

    warnings.sort(key=_line_of_remark)
    unknown.sort(key=lambda item: item.line)
    if errors:
        errors.sort(key=lambda error: error.line or 0)
        return ParseResult(None, tuple(errors), tuple(warnings), unknown=tuple(unknown))
    settings = Settings(**values, unknown_keys=tuple(u.key for u in unknown))
    return ParseResult(settings, (), tuple(warnings), unknown=tuple(unknown))


def _line_of_remark(remark: str) -> int:
    """The line a ``line N: ...`` remark is about, so remarks come in file order."""
    number = remark.removeprefix("line ").partition(":")[0]
    return int(number) if number.isdigit() else 0


def _unknown_key(entry: Entry) -> UnknownKey:
    """The note for a key the agent does not use and that resembles no known key."""
    assert entry.key is not None
    note = (
        f"line {entry.line}: {entry.key} is not a setting of the agent; it is "
        "kept in the file but not used"
    )
    return UnknownKey(entry.key, entry.line, note)


def _misplaced_key(
    entry: Entry, section: str, belongs: str, path: Path | str
) -> ConfigError:
    """The error for a known key written in the other section, where it is unread."""
    assert entry.key is not None
    return ConfigError(
        f"line {entry.line}: {entry.key} is a setting of the <{belongs}> section, "
        f"not of <{section}>, so the agent does not read it here; move the line "
        f"into <{belongs}>",
        path=str(path),
        line=entry.line,
        key=entry.key,
    )


def _misspelt_key(entry: Entry, meant: str, path: Path | str) -> ConfigError:
    """The error for a key that looks like a misspelling of the known key ``meant``."""
    assert entry.key is not None
    return ConfigError(
        f"line {entry.line}: {entry.key} is not a setting of the agent (did you "
        f"mean {meant}?); correct the key's spelling, or delete the line if it "
        "is not wanted",
        path=str(path),
        line=entry.line,
        key=entry.key,
    )


def read_settings(path: Path) -> Settings:
    """The settings in the file at ``path``; ConfigError names the line and key."""
    result = parse_config(read_config_bytes(path), path)
    for warning in result.warnings:
        logger.warning("%s: %s", path, warning)
    if result.errors:
        raise result.errors[0]
    assert result.settings is not None
    return result.settings
