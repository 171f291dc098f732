"""The real watcher on real files: every way of saving is seen once, within a second."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config import ConfigManager, Settings
from agent.errors import ConfigError
from agent.logs import LEVELS, set_level

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
NAME = "IntegrationUI.exe.config"
#: Longer than the debounce and a read, for checks that something did NOT happen.
QUIET = 0.7


def config_text(**values: str) -> str:
    """The shipped file with some values replaced, e.g. ``WebPort="48000"``."""
    text = SHIPPED
    for key, value in values.items():
        start = text.index(f'<add key="{key}" value="')
        start += len(f'<add key="{key}" value="')
        end = text.index('"', start)
        text = text[:start] + value + text[end:]
    return text


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Recorder:
    """A subscriber that keeps every (old, new) and every error it is given."""

    def __init__(self) -> None:
        self.changes: list[tuple[Settings, Settings, float]] = []
        self.errors: list[ConfigError | None] = []
        self._lock = threading.Lock()

    def on_change(self, old: Settings, new: Settings) -> None:
        """Record a change and when it arrived."""
        with self._lock:
            self.changes.append((old, new, time.monotonic()))

    def on_error(self, error: ConfigError | None) -> None:
        """Record an error set or cleared."""
        with self._lock:
            self.errors.append(error)

    def wait_for_change(self, count: int = 1, timeout: float = 3.0) -> Settings:
        """The newest settings once ``count`` changes have arrived."""
        assert wait_until(lambda: len(self.changes) >= count, timeout), self.changes
        return self.changes[-1][1]

    def arrived_after(self, saved_at: float) -> float:
        """Seconds from ``saved_at`` to the last change."""
        return self.changes[-1][2] - saved_at


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The shipped config copied into a folder of its own."""
    path = tmp_path / NAME
    path.write_text(SHIPPED, encoding="utf-8")
    return path


@pytest.fixture
def recorder() -> Recorder:
    """A fresh subscriber."""
    return Recorder()


@pytest.fixture
def manager(config_path: Path, recorder: Recorder) -> Iterator[ConfigManager]:
    """A started ConfigManager on ``config_path`` with ``recorder`` subscribed."""
    manager = ConfigManager(config_path)
    manager.load()
    manager.subscribe(recorder.on_change)
    manager.subscribe_errors(recorder.on_error)
    manager.start()
    yield manager
    manager.stop()


def save_in_place(path: Path, text: str) -> float:
    """Overwrite the file where it is, as Notepad does; return when."""
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write(text)
    return time.monotonic()


def save_by_rename(path: Path, text: str) -> float:
    """Write a temporary file and rename it over the config."""
    temp = path.with_name(path.name + ".swp.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return time.monotonic()


def save_by_recreate(path: Path, text: str) -> float:
    """Delete the file, then create it again."""
    path.unlink()
    time.sleep(0.02)
    path.write_text(text, encoding="utf-8")
    return time.monotonic()


def save_like_vim(path: Path, text: str) -> float:
    """Vim: probe the folder, rename the original to ``file~``, write a new file."""
    probe = path.with_name("4913")
    probe.write_bytes(b"")
    probe.unlink()
    os.replace(path, path.with_name(path.name + "~"))
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return time.monotonic()


@pytest.mark.parametrize(
    "save", [save_in_place, save_by_rename, save_by_recreate, save_like_vim]
)
def test_each_way_of_saving_is_applied_once_within_a_second(
    manager, recorder, config_path, save
):
    saved_at = save(config_path, config_text(WebPort="48000", LogLevel="Debug"))

    new = recorder.wait_for_change()

    assert recorder.arrived_after(saved_at) < 1.0
    assert (new.web_port, new.log_level) == (48000, "Debug")
    assert manager.settings == new
    time.sleep(QUIET)
    assert len(recorder.changes) == 1
    assert recorder.errors == []


def test_vim_leaves_its_backup_and_the_watcher_ignores_it(
    manager, recorder, config_path
):
    save_like_vim(config_path, config_text(LogLevel="Warning"))
    recorder.wait_for_change()

    backup = config_path.with_name(NAME + "~")
    backup.write_text(config_text(LogLevel="Error"), encoding="utf-8")
    time.sleep(QUIET)

    assert backup.exists()
    assert manager.settings.log_level == "Warning"
    assert len(recorder.changes) == 1


def test_twenty_saves_in_a_second_are_applied_once_and_the_last_wins(
    manager, recorder, config_path
):
    for number in range(20):
        saved_at = save_in_place(config_path, config_text(WebPort=str(48001 + number)))
        time.sleep(0.05)

    new = recorder.wait_for_change()

    assert new.web_port == 48020
    assert recorder.arrived_after(saved_at) < 1.0
    time.sleep(QUIET)
    assert len(recorder.changes) == 1


def test_a_truncate_then_write_50_ms_later_is_read_once_complete(
    manager, recorder, config_path
):
    with open(config_path, "r+", encoding="utf-8") as file:
        file.truncate(0)
        file.flush()
        os.fsync(file.fileno())
        time.sleep(0.05)
        file.write(config_text(ServiceOrderSyncMinutes="30"))

    new = recorder.wait_for_change()

    assert new.service_order_sync_minutes == 30
    time.sleep(QUIET)
    assert len(recorder.changes) == 1
    assert recorder.errors == []


def test_a_slow_half_written_save_is_retried_not_taken_as_an_error(
    config_path, recorder
):
    # A short debounce makes the watcher read the empty and the half-written file.
    manager = ConfigManager(config_path, debounce=0.02)
    manager.subscribe(recorder.on_change)
    manager.subscribe_errors(recorder.on_error)
    manager.start()
    try:
        text = config_text(WebPort="48500")
        with open(config_path, "r+", encoding="utf-8") as file:
            file.truncate(0)
            file.flush()
            time.sleep(0.2)
            file.write(text[:400])
            file.flush()
            time.sleep(0.2)
            file.write(text[400:])

        new = recorder.wait_for_change()
        time.sleep(QUIET)
    finally:
        manager.stop()

    assert new.web_port == 48500
    assert len(recorder.changes) == 1
    assert recorder.errors == []


def test_a_file_left_broken_becomes_an_error_after_about_a_second(
    manager, recorder, config_path
):
    text = config_text(WebPort="48000").replace('value="48000" />', 'value="48000"')
    saved_at = save_in_place(config_path, text)

    assert wait_until(lambda: recorder.errors, timeout=3)

    error = recorder.errors[-1]
    assert error is not None
    assert (error.line, error.key) == (19, "WebPort")
    assert 0.9 < time.monotonic() - saved_at < 2.5
    assert manager.error is error
    assert manager.settings == Settings()
    assert recorder.changes == []


def test_rewriting_identical_bytes_causes_no_reload(
    manager, recorder, config_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="agent.config")

    save_in_place(config_path, SHIPPED)
    save_by_rename(config_path, SHIPPED)
    time.sleep(QUIET)

    assert "changed on disk" not in caplog.text
    assert recorder.changes == []


def test_reading_the_file_does_not_wake_the_watcher(manager, config_path, caplog):
    caplog.set_level(logging.DEBUG, logger="agent.config")

    for _ in range(5):
        config_path.read_bytes()
    time.sleep(QUIET)

    assert "reading it" not in caplog.text


def test_our_own_write_is_applied_once_and_not_reloaded(
    manager, recorder, config_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="agent.config")

    returned = manager.write({"LogLevel": "debug", "KESCloudServer": "test"})

    assert (returned.log_level, returned.kes_cloud_server) == ("Debug", "test")
    assert len(recorder.changes) == 1
    assert recorder.changes[0][0] == Settings()
    time.sleep(QUIET)
    assert len(recorder.changes) == 1
    assert "changed on disk" not in caplog.text
    assert 'value="Debug"' in config_path.read_text()


def test_a_bad_write_raises_and_keeps_everything(manager, recorder, config_path):
    with pytest.raises(ConfigError, match="WebPort"):
        manager.write({"WebPort": "80"})

    assert config_path.read_text() == SHIPPED
    assert manager.settings == Settings()
    assert recorder.changes == []


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        (config_text(LogLevel="prod"), 21, "LogLevel"),
        (SHIPPED.replace("appSettings>", "appsettings>"), 9, None),
        (
            SHIPPED.replace('value="47800" />', 'value="47800"'),
            19,
            "WebPort",
        ),
        (config_text(LogLevel="Info & Debug"), 21, "LogLevel"),
    ],
    ids=["bad value", "appsettings", "missing />", "bare &"],
)
def test_a_bad_save_keeps_the_last_good_settings_and_names_line_and_key(
    manager, recorder, config_path, text, line, key
):
    save_in_place(config_path, config_text(WebPort="48000"))
    recorder.wait_for_change()

    save_in_place(config_path, text)
    assert wait_until(lambda: recorder.errors, timeout=3)

    error = manager.error
    assert error is not None and recorder.errors == [error]
    assert (error.line, error.key) == (line, key)
    assert str(error).startswith(f"line {line}: ")
    assert "xmlParse" not in str(error)
    assert error.path == str(config_path)
    assert manager.settings.web_port == 48000

    save_in_place(config_path, config_text(WebPort="48001"))
    assert recorder.wait_for_change(2).web_port == 48001
    assert wait_until(lambda: manager.error is None)
    assert recorder.errors == [error, None]


def test_a_deleted_file_keeps_the_settings_until_it_comes_back(
    manager, recorder, config_path
):
    save_in_place(config_path, config_text(LogLevel="Error"))
    recorder.wait_for_change()

    config_path.unlink()
    assert wait_until(lambda: recorder.errors, timeout=3)

    assert str(manager.error) == f"file not found: {config_path}"
    assert manager.settings.log_level == "Error"

    saved_at = save_in_place(config_path, config_text(LogLevel="Warning"))
    assert recorder.wait_for_change(2).log_level == "Warning"
    assert recorder.arrived_after(saved_at) < 1.0
    assert wait_until(lambda: manager.error is None)
    assert recorder.errors[-1] is None


def test_a_missing_file_at_start_gives_defaults_and_an_error(tmp_path, recorder):
    path = tmp_path / NAME
    manager = ConfigManager(path)

    assert manager.load() == Settings()

    assert str(manager.error) == f"file not found: {path}"
    manager.subscribe(recorder.on_change)
    manager.start()
    try:
        path.write_text(config_text(WebPort="47999"), encoding="utf-8")
        assert recorder.wait_for_change().web_port == 47999
        assert wait_until(lambda: manager.error is None)
    finally:
        manager.stop()


def test_each_change_is_logged_old_to_new(manager, recorder, config_path, caplog):
    caplog.set_level(logging.INFO, logger="agent.config")

    save_in_place(config_path, config_text(WebPort="48000", LicenseSyncTime="3:15"))
    recorder.wait_for_change()

    assert "WebPort: 47800 -> 48000" in caplog.text
    assert "LicenseSyncTime: 02:00 -> 03:15" in caplog.text
    assert "LogLevel:" not in caplog.text


def test_an_unknown_key_is_logged_once(manager, recorder, config_path, caplog):
    caplog.set_level(logging.WARNING, logger="agent.config")
    extra = '<add key="ProxyPort" value="8080" />\n  </appSettings>'

    for number, level in enumerate(("Debug", "Error"), start=1):
        text = config_text(LogLevel=level).replace("</appSettings>", extra)
        save_in_place(config_path, text)
        recorder.wait_for_change(number)

    assert caplog.text.count("ProxyPort is not a setting of the agent") == 1
    assert "line 22: ProxyPort is not a setting of the agent; it is kept" in (
        caplog.text
    )
    assert manager.settings.unknown_keys == ("ProxyPort",)


def test_a_misspelt_key_keeps_the_last_good_settings(
    manager, recorder, config_path, caplog
):
    caplog.set_level(logging.INFO, logger="agent.config")
    save_in_place(config_path, config_text(ServiceOrderSyncMinutes="2"))
    assert recorder.wait_for_change().service_order_sync_minutes == 2

    misspelt = config_text(ServiceOrderSyncMinutes="2").replace(
        'key="ServiceOrderSyncMinutes"', 'key="ServiceOrderSyncMinute"'
    )
    save_in_place(config_path, misspelt)

    assert wait_until(lambda: recorder.errors, timeout=3)
    error = recorder.errors[-1]
    assert error is not None and error.key == "ServiceOrderSyncMinute"
    assert str(error).startswith(
        f"line {error.line}: ServiceOrderSyncMinute is not a setting of the agent "
        "(did you mean ServiceOrderSyncMinutes?)"
    )
    time.sleep(QUIET)
    assert manager.settings.service_order_sync_minutes == 2
    assert len(recorder.changes) == 1
    assert "ServiceOrderSyncMinutes: 2 -> 5" not in caplog.text
    assert "stays 5" not in caplog.text
    assert "(the last good settings stay in force)" in caplog.text


@pytest.fixture
def root_level() -> Iterator[None]:
    """Put back the root logger's level, which these tests change as the agent does."""
    root = logging.getLogger()
    saved = root.level
    yield
    root.setLevel(saved)


@pytest.mark.parametrize(
    ("old", "new", "level"),
    [
        ("Warning", "Debug", logging.INFO),
        ("Error", "Info", logging.INFO),
        ("Debug", "Warning", logging.INFO),
        ("Info", "Error", logging.INFO),
        ("Warning", "Error", logging.WARNING),
        ("Error", "Warning", logging.WARNING),
    ],
)
def test_a_loglevel_change_is_logged_whatever_the_levels(
    config_path, recorder, caplog, root_level, old, new, level
):
    save_in_place(config_path, config_text(LogLevel=old))
    manager = ConfigManager(config_path)
    set_level(manager.load().log_level)
    # The agent's own subscriber (agent/app.py) applies LogLevel the same way.
    manager.subscribe(lambda before, after: set_level(after.log_level))
    manager.subscribe(recorder.on_change)
    manager.start()
    try:
        save_in_place(config_path, config_text(LogLevel=new, WebPort="48000"))
        recorder.wait_for_change()

        def lines() -> dict[str, int]:
            """The config's log lines that got past the logger levels."""
            return {
                r.getMessage(): r.levelno
                for r in caplog.records
                if r.name.startswith("agent.config")
            }

        assert wait_until(lambda: "WebPort: 47800 -> 48000" in lines())
    finally:
        manager.stop()

    assert lines()[f"LogLevel: {old} -> {new}"] == level
    assert lines()["WebPort: 47800 -> 48000"] == level
    assert logging.getLogger().level == LEVELS[new]


def test_a_failing_subscriber_does_not_stop_the_others(
    manager, recorder, config_path, caplog
):
    def broken(old: Settings, new: Settings) -> None:
        raise RuntimeError("subscriber bug")

    manager.subscribe(broken)
    late = Recorder()
    manager.subscribe(late.on_change)

    save_in_place(config_path, config_text(LogLevel="Debug"))

    assert late.wait_for_change().log_level == "Debug"
    assert recorder.changes
    assert "A settings subscriber failed" in caplog.text
    assert "subscriber bug" in caplog.text


def test_stop_ends_the_threads_promptly(config_path):
    manager = ConfigManager(config_path)
    manager.start()
    names = {t.name for t in threading.enumerate()}
    assert "config-watcher" in names

    started = time.monotonic()
    manager.stop()

    assert time.monotonic() - started < 2
    assert "config-watcher" not in {t.name for t in threading.enumerate()}
    assert "config-observer" not in {t.name for t in threading.enumerate()}
