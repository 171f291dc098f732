"""Logging to the console and to a rotating file in the data folder."""

from __future__ import annotations

import collections
import logging
import logging.handlers
import threading
from pathlib import Path

from agent.secrets import RedactingFilter

LOG_FILE_NAME = "agent.log"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: The log file's size limit until the config's MaxLogFileKB is applied (its default).
DEFAULT_MAX_FILE_KB = 1024

#: The config file's LogLevel words and the logging levels they stand for.
LEVELS = {
    "Error": logging.ERROR,
    "Warning": logging.WARNING,
    "Info": logging.INFO,
    "Debug": logging.DEBUG,
}

logger = logging.getLogger(__name__)


class RecentRecords(logging.Handler):
    """Keeps the last records in memory for the page's log view."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        self.records: collections.deque[dict[str, str]] = collections.deque(
            maxlen=capacity
        )
        self._lock = threading.Lock()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        entry = {
            "time": self.formatter.formatTime(record) if self.formatter else "",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        with self._lock:
            self.records.append(entry)

    def snapshot(self, minimum_level: int = logging.DEBUG) -> list[dict[str, str]]:
        """The kept records at or above ``minimum_level``, oldest first."""
        with self._lock:
            entries = list(self.records)
        return [e for e in entries if logging.getLevelName(e["level"]) >= minimum_level]


def log_file_path(data_dir: Path) -> Path:
    """Where the agent's log file lives."""
    return data_dir / "logs" / LOG_FILE_NAME


def setup_logging(
    data_dir: Path | None,
    level: str = "Info",
    console: bool = True,
    max_file_kb: int = DEFAULT_MAX_FILE_KB,
) -> RecentRecords:
    """Send records to the console, the rotating log file and the page's memory."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()

    formatter = logging.Formatter(LOG_FORMAT)
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        root.addHandler(stream)
    if data_dir is not None:
        path = log_file_path(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_file_kb * 1024, backupCount=5, encoding="utf-8"
        )
        rotating.setFormatter(formatter)
        root.addHandler(rotating)
    recent = RecentRecords()
    root.addHandler(recent)

    # A filter on the root logger misses records from child loggers, so every
    # handler masks the secrets itself.
    redacting = RedactingFilter()
    for handler in root.handlers:
        handler.addFilter(redacting)

    set_level(level)
    # Libraries log every request at DEBUG/INFO; the agent's own lines say what matters.
    for noisy in ("urllib3", "zeep", "waitress", "watchdog", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return recent


def set_level(level: str) -> None:
    """Apply a LogLevel word from the config (Error, Warning, Info, Debug)."""
    logging.getLogger().setLevel(LEVELS.get(level, logging.INFO))


def set_max_file_kb(kilobytes: int) -> None:
    """Apply a MaxLogFileKB from the config: the size at which the log file rotates."""
    # The handler reads maxBytes before each record, so the next line written
    # already rotates at the new size; no reopening is needed.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            handler.maxBytes = kilobytes * 1024
