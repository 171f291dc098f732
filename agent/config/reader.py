"""Reading the config file into Settings, with errors that name the line and key."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from agent.config.document import (
    ConfigDocument,
    ConfigSyntaxError,
    Entry,
    load_document,
)
from agent.config.settings import KEYS, Settings, key_spec
from agent.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParseResult:
    """What one read of the file gave: settings, or the errors that stop them."""

    settings: Settings | None
    errors: tuple[ConfigError, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Empty or not well-formed: the file may be caught in the middle of a save.
    incomplete: bool = False


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
    values = {}
    errors = []
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
    if errors:
        return ParseResult(None, tuple(errors), warnings)

    unknown = tuple(
        key for e in in_force.values() if (key := e.key) and key_spec(key) is None
    )
    return ParseResult(Settings(**values, unknown_keys=unknown), (), warnings)


def read_settings(path: Path) -> Settings:
    """The settings in the file at ``path``; ConfigError names the line and key."""
    result = parse_config(read_config_bytes(path), path)
    for warning in result.warnings:
        logger.warning("%s: %s", path, warning)
    if result.errors:
        raise result.errors[0]
    assert result.settings is not None
    return result.settings
