"""Where the agent keeps its files: the config beside the program, data per user."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "TigerpawIntegrationAgent"
APP_AUTHOR = "TigerpawIntegration"
CONFIG_FILE_NAME = "IntegrationUI.exe.config"


def program_folder() -> Path:
    """The folder the program runs from: the bundle's folder, or the source tree."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parent.parent


def default_config_path() -> Path:
    """The config file beside the program, as a .NET program keeps it."""
    return program_folder() / CONFIG_FILE_NAME


def default_data_dir() -> Path:
    """The platform's per-user data folder (for example ~/.local/share on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def ensure_private_dir(path: Path) -> Path:
    """Create a folder readable by its owner only, and return it."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        path.chmod(0o700)
    except OSError:
        # Some file systems (network shares, FAT) refuse modes; the folder still works.
        pass
    return path


def write_json_atomically(path: Path, payload: Any) -> None:
    """Write JSON readable by the owner only, replacing the file in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2)
        os.chmod(temp_name, 0o600)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
