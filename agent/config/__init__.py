"""The config file: read and validate it, write values back, watch it for changes."""

from agent.config.check import check_config
from agent.config.reader import parse_config, read_settings
from agent.config.settings import KEYS, Settings
from agent.config.watcher import ConfigManager
from agent.config.writer import write_settings

__all__ = [
    "KEYS",
    "ConfigManager",
    "Settings",
    "check_config",
    "parse_config",
    "read_settings",
    "write_settings",
]
