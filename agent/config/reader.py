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
from agent.config.settings import KEYS, Settings, closest_key, key_spec
from agent.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnknownKey:
    """A key the agent does not use: where it is, and a note saying so in words."""

    key: str
    line: int
    #: The known key it looks like a misspelling of, if any.
    suggestion: str | None
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
    document: ConfigDocument,
) -> tuple[dict[str, Entry], tuple[str, ...]]:
    """The add in force for each key (lower-case) after remove and clear, as .NET.

    Also returns a warning for each key set more than once, the last one winning.
    """
    in_force: dict[str, Entry] = {}
    warnings = []
    for entry in document.entries:
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

    in_force, warnings = effective_entries(document)
    values: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for spec in KEYS:
        entry = in_force.get(spec.name.lower())
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

    failed = {error.key for error in errors}
    unknown = tuple(
        _unknown_key(entry, values, failed)
        for entry in in_force.values()
        if entry.key and key_spec(entry.key) is None
    )
    if errors:
        return ParseResult(None, tuple(errors), warnings, unknown=unknown)
    settings = Settings(**values, unknown_keys=tuple(u.key for u in unknown))
    return ParseResult(settings, (), warnings, unknown=unknown)


def _unknown_key(
    entry: Entry, values: dict[str, Any], failed: set[str | None]
) -> UnknownKey:
    """The note for a key the agent does not use, naming the known key it resembles."""
    assert entry.key is not None
    spec = closest_key(entry.key)
    if spec is None:
        note = (
            f"line {entry.line}: {entry.key} is not a setting of the agent; it is "
            "kept in the file but not used"
        )
        return UnknownKey(entry.key, entry.line, None, note)

    note = (
        f"line {entry.line}: {entry.key} is not a setting of the agent (did you mean "
        f"{spec.name}?)"
    )
    # A suggested key whose own value is wrong has an error of its own instead.
    if spec.name not in failed:
        value = values.get(spec.field, spec.default)
        note += f"; {spec.name} stays {spec.format(value)}"
    return UnknownKey(entry.key, entry.line, spec.name, note)


def read_settings(path: Path) -> Settings:
    """The settings in the file at ``path``; ConfigError names the line and key."""
    result = parse_config(read_config_bytes(path), path)
    for warning in result.warnings:
        logger.warning("%s: %s", path, warning)
    if result.errors:
        raise result.errors[0]
    assert result.settings is not None
    return result.settings
