"""The check-config command: is a config file good, and if not, where is it wrong."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from agent.config.reader import ParseResult, parse_config, read_config_bytes
from agent.errors import ConfigError


def check_config(path: Path, out: TextIO | None = None) -> int:
    """Print "OK" and the effective settings, or each error; return 0 or 1."""
    # Looked up at call time, so a redirected sys.stdout is honoured.
    out = out if out is not None else sys.stdout
    try:
        result = parse_config(read_config_bytes(path), path)
    except ConfigError as err:
        print(f"ERROR: {path}", file=out)
        print(f"  {err}", file=out)
        return 1

    if result.errors:
        print(f"ERROR: {path}", file=out)
        for error in result.errors:
            print(f"  {error}", file=out)
        _print_remarks(result, out)
        return 1

    assert result.settings is not None
    print(f"OK: {path}", file=out)
    for key, value in result.settings.as_dict().items():
        print(f"  {key} = {value}", file=out)
    _print_remarks(result, out)
    return 0


def _print_remarks(result: ParseResult, out: TextIO) -> None:
    """One line per unknown key (the agent does not use it) and per warning."""
    for unknown in result.unknown:
        print(f"  note: {unknown}", file=out)
    for warning in result.warnings:
        print(f"  warning: {warning}", file=out)
