"""The settings the config file holds: their keys, defaults, parsing and snapshot."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import time
from typing import Any

KES_CLOUD_SERVERS = ("production", "beta", "test")
LOG_LEVELS = ("Error", "Warning", "Info", "Debug")
#: The sections whose add/remove/clear entries hold the agent's keys.
APP_SETTINGS = "appSettings"
LOGGING_SECTION = "integrationLogging"
SECTIONS = (APP_SETTINGS, LOGGING_SECTION)

# .NET's int.Parse takes an optional sign and ASCII digits; Python's int() would also
# take underscores and other scripts' digits, which .NET refuses.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_TIME_OF_DAY = re.compile(r"([0-9]{1,2}):([0-9]{2})")
#: A bad value longer than this is quoted only in part.
QUOTED_VALUE = 40


@dataclass(frozen=True)
class Settings:
    """One immutable snapshot of the effective settings."""

    kes_cloud_server: str = "production"
    service_order_sync_minutes: int = 5
    license_sync_time: time = time(2, 0)
    web_port: int = 47800
    log_level: str = "Info"
    max_log_file_kb: int = 1024
    unknown_keys: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        """The .NET key names with their effective values as text."""
        return {spec.name: spec.format(getattr(self, spec.field)) for spec in KEYS}

    def changes_from(self, old: Settings) -> dict[str, tuple[str, str]]:
        """The keys whose values differ from ``old``, each with (old, new) text."""
        before = old.as_dict()
        after = self.as_dict()
        return {
            key: (before[key], after[key]) for key in after if before[key] != after[key]
        }


@dataclass(frozen=True)
class KeySpec:
    """One key: its .NET name, the field it fills, how to read it, and its section."""

    name: str
    field: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    expected: str
    section: str = APP_SETTINGS

    @property
    def default(self) -> Any:
        """The value in force when the key is absent."""
        return _DEFAULTS[self.field]

    def error_text(self, raw: str) -> str:
        """What is wrong with ``raw``, naming the key and the values it takes."""
        # A pasted paragraph would bury the message in the tray and the page.
        shown = (
            repr(raw)
            if len(raw) <= QUOTED_VALUE
            else (f"{raw[:QUOTED_VALUE]!r}... ({len(raw)} characters)")
        )
        return f"{self.name} must be {self.expected}, not {shown}"


def _choice(words: tuple[str, ...]) -> Callable[[str], str]:
    """A parser that matches one of ``words`` ignoring case, as .NET's Enum.Parse."""
    by_lower = {word.lower(): word for word in words}

    def parse(raw: str) -> str:
        """The canonical spelling of ``raw``."""
        try:
            return by_lower[raw.lower()]
        except KeyError:
            raise ValueError(raw) from None

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    """A parser for a whole number from ``low`` to ``high``."""

    def parse(raw: str) -> int:
        """The number ``raw`` spells, if it is in range."""
        if not _INTEGER.fullmatch(raw):
            raise ValueError(raw)
        number = int(raw)
        if not low <= number <= high:
            raise ValueError(raw)
        return number

    return parse


def _time_of_day(raw: str) -> time:
    """The local time of day ``raw`` spells as HH:MM (a single-digit hour is fine)."""
    match = _TIME_OF_DAY.fullmatch(raw)
    if not match:
        raise ValueError(raw)
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ValueError(raw)
    return time(hour, minute)


def _words(words: tuple[str, ...]) -> str:
    """``a, b or c``."""
    return ", ".join(words[:-1]) + " or " + words[-1]


_DEFAULTS = {f.name: f.default for f in fields(Settings)}

KEYS: tuple[KeySpec, ...] = (
    KeySpec(
        "KESCloudServer",
        "kes_cloud_server",
        _choice(KES_CLOUD_SERVERS),
        str,
        _words(KES_CLOUD_SERVERS),
    ),
    KeySpec(
        "ServiceOrderSyncMinutes",
        "service_order_sync_minutes",
        _integer(1, 1440),
        str,
        "a whole number from 1 to 1440",
    ),
    KeySpec(
        "LicenseSyncTime",
        "license_sync_time",
        _time_of_day,
        lambda value: value.strftime("%H:%M"),
        "a time of day as HH:MM, from 00:00 to 23:59",
    ),
    KeySpec(
        "WebPort",
        "web_port",
        _integer(1024, 65535),
        str,
        "a whole number from 1024 to 65535",
    ),
    KeySpec("LogLevel", "log_level", _choice(LOG_LEVELS), str, _words(LOG_LEVELS)),
    KeySpec(
        "MaxLogFileKB",
        "max_log_file_kb",
        _integer(64, 102400),
        str,
        "a whole number of KB from 64 to 102400",
        LOGGING_SECTION,
    ),
)

_BY_LOWER_NAME = {spec.name.lower(): spec for spec in KEYS}


def key_spec(name: str, section: str | None = None) -> KeySpec | None:
    """The known key called ``name`` (any case, blanks ignored), or None.

    With ``section``, only a key that belongs in that section counts.
    """
    spec = _BY_LOWER_NAME.get(name.strip().lower())
    if spec is None or section not in (None, spec.section):
        return None
    return spec


def closest_key(name: str, section: str = APP_SETTINGS) -> KeySpec | None:
    """The key of ``section`` an unknown ``name`` most likely misspells, or None."""
    # 0.7 takes LogLevl, WebPorts and CloudServer but not ProxyPort; MaxLogFile and
    # LogFileKB are taken as MaxLogFileKB, in integrationLogging only.
    in_section = {
        lower: spec for lower, spec in _BY_LOWER_NAME.items() if spec.section == section
    }
    matches = difflib.get_close_matches(
        name.strip().lower(), list(in_section), n=1, cutoff=0.7
    )
    return in_section[matches[0]] if matches else None
