"""Hand-edit slips on the agent: a misspelt key, and a bad value the page repairs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import check_config
from agent.tray.notifications import Notifier
from agent.tray.state import attention_reasons
from tests.integration.settings_page_support import (
    SHIPPED,
    SettingsPage,
    settings_page,
    words,
)


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which ``needle`` first appears."""
    return text[: text.index(needle)].count("\n") + 1


@pytest.fixture
def page(tmp_path: Path) -> Iterator[SettingsPage]:
    """An agent on a copy of the shipped config, with its page."""
    with settings_page(tmp_path) as opened:
        yield opened


def test_a_misspelt_key_keeps_the_last_good_value_everywhere(
    page: SettingsPage,
) -> None:
    good = SHIPPED.replace(
        'key="ServiceOrderSyncMinutes" value="5"',
        'key="ServiceOrderSyncMinutes" value="2"',
    )
    page.save(good)
    assert page.agent.config.settings.service_order_sync_minutes == 2
    notifier = Notifier()
    notifier.review(page.agent.status(), 0.0)

    misspelt = good.replace(
        'key="ServiceOrderSyncMinutes"', 'key="ServiceOrderSyncMinute"'
    )
    page.save(misspelt)

    line = line_of(misspelt, "ServiceOrderSyncMinute")
    message = (
        f"line {line}: ServiceOrderSyncMinute is not a setting of the agent (did you "
        "mean ServiceOrderSyncMinutes?); correct the key's spelling, or delete the "
        "line if it is not wanted"
    )
    status = page.agent.status()
    assert status["config"]["ok"] is False
    assert status["config"]["error"]["message"] == message
    assert status["config"]["error"]["line"] == line
    assert status["config"]["settings"]["ServiceOrderSyncMinutes"] == "2"
    assert f"config file error on line {line}" in attention_reasons(status)
    [notice] = notifier.review(status, 100.0)
    assert notice.kind == "config_error" and str(line) in notice.message

    banner = page.get().xpath("//div[contains(@class, 'banner error')]")[0]
    assert message in words(banner)
    assert "keeps using the last good settings" in words(banner)

    out = io.StringIO()
    assert check_config(page.path, out) == 1
    assert out.getvalue().splitlines() == [f"ERROR: {page.path}", f"  {message}"]


def test_the_form_shows_a_bad_value_beside_its_field(page: SettingsPage) -> None:
    page.save(SHIPPED.replace('value="Info"', 'value="Verbose"'))

    form = page.get()

    field = form.xpath("//select[@id='LogLevel']/ancestor::div[@class]")[0]
    assert "invalid" in field.get("class")
    assert "LogLevel must be Error, Warning, Info or Debug, not 'Verbose'" in words(
        field
    )


def test_saving_a_good_value_repairs_the_file(page: SettingsPage) -> None:
    broken = SHIPPED.replace('value="Info"', 'value="Verbose"')
    page.save(broken)

    # The form shows Info (in force); saving it as it is must still fix the file.
    after = page.post({}, 200)

    assert page.path.read_text(encoding="utf-8") == SHIPPED
    assert page.agent.config.error is None
    assert "Saved to the config file: LogLevel = Info" in words(after)
    assert not after.xpath("//div[contains(@class, 'banner error')]")


def test_saving_another_value_repairs_the_file_byte_for_byte(
    page: SettingsPage,
) -> None:
    broken = SHIPPED.replace('value="Info"', 'value="Verbose"')
    page.save(broken)

    page.post({"LogLevel": "Debug"}, 200)

    assert page.path.read_text(encoding="utf-8") == SHIPPED.replace(
        'value="Info"', 'value="Debug"'
    )
    assert page.agent.config.settings.log_level == "Debug"
    assert page.agent.config.error is None
    assert page.agent.status()["config"]["ok"] is True


def test_nothing_is_written_when_the_file_is_good_and_unchanged(
    page: SettingsPage,
) -> None:
    stamp = page.path.stat().st_mtime_ns

    after = page.post({}, 200)

    assert "Nothing changed." in words(after)
    assert page.path.stat().st_mtime_ns == stamp
