"""The Settings page shows MaxLogFileKB and writes it into integrationLogging."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.settings_page_support import (
    SHIPPED,
    SettingsPage,
    settings_page,
    words,
)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[SettingsPage]:
    """An agent on a copy of the shipped config, with its page."""
    with settings_page(tmp_path) as opened:
        yield opened


def test_the_page_shows_the_value_in_force(page: SettingsPage) -> None:
    [field] = page.get().xpath("//input[@id='MaxLogFileKB']")
    assert field.get("value") == "1024"
    assert field.get("name") == "MaxLogFileKB"


def test_saving_writes_only_that_value(page: SettingsPage) -> None:
    after = page.post({"MaxLogFileKB": "2048"})

    assert page.path.read_text(encoding="utf-8") == SHIPPED.replace(
        'value="1024"', 'value="2048"'
    )
    assert page.agent.config.settings.max_log_file_kb == 2048
    assert "Saved to the config file: MaxLogFileKB = 2048" in words(after)
    assert after.xpath("//input[@id='MaxLogFileKB']")[0].get("value") == "2048"


def test_a_bad_value_in_the_form_is_refused_beside_its_field(
    page: SettingsPage,
) -> None:
    after = page.post({"MaxLogFileKB": "32"}, 400)

    assert page.path.read_text(encoding="utf-8") == SHIPPED
    field = after.xpath("//input[@id='MaxLogFileKB']/ancestor::div[@class]")[0]
    assert "invalid" in field.get("class")
    assert "MaxLogFileKB must be a whole number of KB from 64 to 102400, not '32'" in (
        words(field)
    )


def test_a_bad_value_in_the_file_is_shown_and_saving_repairs_it(
    page: SettingsPage,
) -> None:
    broken = SHIPPED.replace('value="1024"', 'value="big"')
    page.path.write_text(broken, encoding="utf-8")
    page.agent.config.load()
    line = broken[: broken.index('value="big"')].count("\n") + 1

    status = page.agent.status()
    assert status["config"]["ok"] is False
    assert status["config"]["error"]["line"] == line
    form = page.get()
    field = form.xpath("//input[@id='MaxLogFileKB']/ancestor::div[@class]")[0]
    assert f"line {line}: MaxLogFileKB must be" in words(field)

    page.post({})

    assert page.path.read_text(encoding="utf-8") == SHIPPED
    assert page.agent.config.error is None
