"""The settings in force: loaded at start, reloaded on change, written back."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from agent.config.reader import (
    ParseResult,
    UnknownKey,
    parse_config,
    read_config_bytes,
)
from agent.config.settings import LOG_LEVELS, Settings
from agent.config.writer import remove_stale_temp_files, render_changes, replace_file
from agent.errors import ConfigError

logger = logging.getLogger(__name__)

#: A stream of saves that never pauses is still read this long after it began.
MAX_DELAY = 2.0
#: An empty, half-written or missing file is read again this often ...
RETRY_DELAY = 0.25
#: ... this many times (about a second) before it counts as an error.
RETRIES = 4

# Events that say the file's content may have changed; opening or reading it
# (our own reads included) must not wake the watcher.
_CONTENT_EVENTS = frozenset({"created", "modified", "moved", "deleted", "closed"})

SettingsCallback = Callable[[Settings, Settings], None]
ErrorCallback = Callable[[ConfigError | None], None]


class ConfigManager:
    """Holds the last good settings and keeps them in step with the file."""

    def __init__(self, path: Path, debounce: float = 0.3) -> None:
        self.path = Path(path)
        self._debounce = debounce
        self._lock = threading.Lock()
        # Serialises reloads and writes so their notifications come out in order.
        self._update_lock = threading.RLock()
        self._settings = Settings()
        self._error: ConfigError | None = None
        self._errors: tuple[ConfigError, ...] = ()
        self._seen_digest: bytes | None = None
        self._reported_unknown: set[str] = set()
        self._subscribers: list[SettingsCallback] = []
        self._error_subscribers: list[ErrorCallback] = []
        self._load_attempted = False
        self._announced = False

        self._wake = threading.Condition()
        self._due: float | None = None
        self._first_event: float | None = None
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None

    @property
    def settings(self) -> Settings:
        """The last good settings (the defaults if the file was never good)."""
        with self._lock:
            return self._settings

    @property
    def error(self) -> ConfigError | None:
        """What is wrong with the file now, or None when it is good."""
        with self._lock:
            return self._error

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Every problem found in the file now, in line order (empty when good)."""
        with self._lock:
            return self._errors

    def subscribe(self, callback: SettingsCallback) -> None:
        """Call ``callback(old, new)`` after each applied change."""
        with self._lock:
            self._subscribers.append(callback)

    def subscribe_errors(self, callback: ErrorCallback) -> None:
        """Call ``callback(error)`` when a problem appears, changes or clears (None)."""
        with self._lock:
            self._error_subscribers.append(callback)

    # Reading.

    def load(self) -> Settings:
        """Read the file now; on a problem set ``error`` and keep the settings."""
        with self._update_lock:
            self._load_attempted = True
            remove_stale_temp_files(self.path)
            try:
                data = read_config_bytes(self.path)
            except ConfigError as err:
                self._seen_digest = None
                self._set_error(err)
                return self.settings
            self._take(data, parse_config(data, self.path))
            return self.settings

    def _reload(self, give_up: bool) -> bool:
        """Read the file after an event; True asks to try again a little later."""
        with self._update_lock:
            try:
                data = read_config_bytes(self.path)
            except ConfigError as err:
                if not give_up:
                    return True
                self._seen_digest = None
                self._set_error(err)
                return False

            # Identical bytes (our own write, or a save that changed nothing).
            if _digest(data) == self._seen_digest:
                return False

            logger.debug("%s changed on disk; reading it", self.path)
            result = parse_config(data, self.path)
            if result.incomplete and not give_up:
                logger.debug("%s is empty or half-written; retrying", self.path)
                return True
            self._take(data, result)
            return False

    def _take(self, data: bytes, result: ParseResult) -> None:
        """Make one read's outcome the current state: new settings, or an error."""
        self._seen_digest = _digest(data)
        for warning in result.warnings:
            logger.warning("%s: %s", self.path, warning)
        if result.errors:
            for extra in result.errors[1:]:
                logger.warning("%s: also: %s", self.path, extra)
            self._set_error(result.errors[0], result.errors)
            return
        assert result.settings is not None
        self._apply(result.settings, result.unknown)
        self._set_error(None)

    # Writing.

    def write(self, changes: dict[str, str]) -> Settings:
        """Write ``changes`` (by .NET key name) to the file and apply them at once."""
        with self._update_lock:
            data = read_config_bytes(self.path)
            new_data = render_changes(data, changes, self.path)
            if new_data != data:
                previous = self._seen_digest
                # Recorded before the rename so the watcher knows the bytes as ours.
                self._seen_digest = _digest(new_data)
                try:
                    replace_file(self.path, new_data)
                except ConfigError:
                    self._seen_digest = previous
                    raise
                logger.info("Saved the changed settings to %s", self.path)
            result = parse_config(new_data, self.path)
            self._take(new_data, result)
            if result.errors:
                raise result.errors[0]
            return self.settings

    # Applying and publishing.

    def _apply(self, new: Settings, unknown: tuple[UnknownKey, ...] = ()) -> None:
        """Swap in ``new``, tell the subscribers, and log each change old -> new."""
        with self._lock:
            old = self._settings
            self._settings = new
            subscribers = list(self._subscribers)

        # A subscriber applies LogLevel, so the change lines go out under whichever
        # of the two levels shows more: after the subscribers when LogLevel rises,
        # before them otherwise. Warning -> Debug and Debug -> Warning both log.
        rising = LOG_LEVELS.index(new.log_level) > LOG_LEVELS.index(old.log_level)
        if not rising:
            self._log_settings(old, new)
        if new != old:
            for callback in subscribers:
                try:
                    callback(old, new)
                except Exception:
                    logger.exception("A settings subscriber failed: %r", callback)
        if rising:
            self._log_settings(old, new)

        for item in unknown:
            if item.key.lower() not in self._reported_unknown:
                self._reported_unknown.add(item.key.lower())
                logger.warning("%s: %s", self.path, item)

    def _log_settings(self, old: Settings, new: Settings) -> None:
        """Log the settings once at first, then each change as ``key: old -> new``."""
        # A level that hides INFO (Warning, Error) must not hide a settings change.
        level = logging.INFO if logger.isEnabledFor(logging.INFO) else logging.WARNING
        if not self._announced:
            described = ", ".join(f"{k}={v}" for k, v in new.as_dict().items())
            logger.log(level, "Settings from %s: %s", self.path, described)
        else:
            for key, (before, after) in new.changes_from(old).items():
                logger.log(level, "%s: %s -> %s", key, before, after)
        self._announced = True

    def _set_error(
        self, error: ConfigError | None, every: tuple[ConfigError, ...] | None = None
    ) -> None:
        """Record the file's current problem and tell the subscribers if it changed.

        ``every`` is each problem the read found, ``error`` first; by default just it.
        """
        with self._lock:
            if every is None:
                every = () if error is None else (error,)
            self._errors = every
            if _same_error(self._error, error):
                return
            self._error = error
            subscribers = list(self._error_subscribers)

        if error is None:
            logger.debug("%s is good again", self.path)
        else:
            logger.warning(
                "%s: %s (the last good settings stay in force)", self.path, error
            )
        for callback in subscribers:
            try:
                callback(error)
            except Exception:
                logger.exception("A config error subscriber failed: %r", callback)

    # Watching.

    def start(self) -> None:
        """Watch the file's folder and reload the file when it changes."""
        if self._worker is not None:
            return
        if not self._load_attempted:
            self.load()

        target = Path(os.path.realpath(self.path))
        handler = _FileEvents(os.path.normcase(target.name), self._file_changed)
        observer = Observer()
        observer.name = "config-observer"
        observer.daemon = True
        try:
            observer.schedule(handler, str(target.parent), recursive=False)
            observer.start()
        except OSError as err:
            raise ConfigError(
                f"cannot watch {target.parent} for changes: {err.strerror or err}; "
                "changes to the config file need a restart until this is fixed",
                path=str(self.path),
            ) from err

        self._stopping = False
        self._observer = observer
        self._worker = threading.Thread(
            target=self._run, name="config-watcher", daemon=True
        )
        self._worker.start()

        # A save between load() and the observer starting would otherwise go unseen.
        if self._reload(give_up=False):
            self._file_changed(RETRY_DELAY)

    def stop(self, timeout: float = 5) -> None:
        """Stop watching; each thread gets ``timeout`` seconds to finish."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            if self._observer.is_alive():
                logger.warning("Thread %s did not stop", self._observer.name)
            self._observer = None
        if self._worker is not None:
            self._worker.join(timeout)
            if self._worker.is_alive():
                logger.warning("Thread %s did not stop", self._worker.name)
            self._worker = None

    def _file_changed(self, delay: float | None = None) -> None:
        """Read the file once things have been quiet for the debounce time."""
        now = time.monotonic()
        with self._wake:
            if self._first_event is None:
                self._first_event = now
            wait = self._debounce if delay is None else delay
            self._due = min(now + wait, self._first_event + MAX_DELAY)
            self._wake.notify_all()

    def _run(self) -> None:
        """The watcher thread: wait for a due reload, do it, retry when half-saved."""
        attempts = 0
        while True:
            with self._wake:
                while not self._stopping and (
                    self._due is None or time.monotonic() < self._due
                ):
                    timeout = (
                        None if self._due is None else self._due - time.monotonic()
                    )
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                self._due = self._first_event = None

            try:
                retry = self._reload(give_up=attempts >= RETRIES)
            except Exception:
                logger.exception("Reloading %s failed", self.path)
                retry = False
            if retry:
                attempts += 1
                self._file_changed(RETRY_DELAY)
            else:
                attempts = 0


class _FileEvents(FileSystemEventHandler):
    """Passes on the folder's events that concern the config file."""

    def __init__(self, name: str, changed: Callable[[], None]) -> None:
        super().__init__()
        self._name = name
        self._changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Wake the watcher when the file is written, replaced, moved or deleted."""
        if event.is_directory or event.event_type not in _CONTENT_EVENTS:
            return
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(
            os.path.normcase(os.path.basename(os.fsdecode(p))) == self._name
            for p in paths
        ):
            self._changed()


def _digest(data: bytes) -> bytes:
    """A fingerprint of the file's bytes."""
    return hashlib.sha256(data).digest()


def _same_error(a: ConfigError | None, b: ConfigError | None) -> bool:
    """Whether two errors say the same thing about the same place."""
    if a is None or b is None:
        return a is b
    return (str(a), a.line, a.key) == (str(b), b.line, b.key)
