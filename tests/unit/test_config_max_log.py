"""MaxLogFileKB in the integrationLogging section: read, checked, written, applied."""

from __future__ import annotations

import io
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.app import Agent, AgentOptions
from agent.config import check_config, parse_config, write_settings
from agent.config.reader import ParseResult
from agent.config.writer import render_changes
from agent.logs import RecentRecords, set_max_file_kb, setup_logging

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
NAME = "IntegrationUI.exe.config"
SHIPPED_ENTRY = '<add key="MaxLogFileKB" value="1024" />'


def with_logging(*children: str) -> str:
    """The shipped file with its integrationLogging section holding ``children``."""
    inside = "".join(f"\n    {child}" for child in children)
    return SHIPPED.replace(
        f"\n    {SHIPPED_ENTRY}", inside if children else "\n    "
    ).replace("<integrationLogging>\n    \n", "<integrationLogging>\n")


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which ``needle`` first appears."""
    return text[: text.index(needle)].count("\n") + 1


def parse(text: str) -> ParseResult:
    """What the reader makes of ``text``."""
    return parse_config(text.encode("utf-8"), NAME)


# Reading.


def test_the_shipped_file_gives_1024():
    assert SHIPPED_ENTRY in SHIPPED
    result = parse(SHIPPED)
    assert result.errors == ()
    assert result.settings is not None
    assert result.settings.max_log_file_kb == 1024
    assert result.settings.as_dict()["MaxLogFileKB"] == "1024"


def test_an_absent_section_or_key_gives_1024():
    start = SHIPPED.index("  <integrationLogging>")
    end = SHIPPED.index("</integrationLogging>") + len("</integrationLogging>\n")
    without_section = SHIPPED[:start] + SHIPPED[end:]
    assert "integrationLogging>" not in without_section

    for text in (without_section, with_logging()):
        result = parse(text)
        assert result.errors == (), text
        assert result.settings is not None
        assert result.settings.max_log_file_kb == 1024


def test_the_value_is_read_trimmed_with_the_key_in_any_case():
    result = parse(with_logging('<add key=" maxlogfilekb " value=" 4096 " />'))
    assert result.errors == ()
    assert result.settings is not None
    assert result.settings.max_log_file_kb == 4096


def test_the_last_add_wins_and_remove_and_clear_apply():
    twice = with_logging(
        '<add key="MaxLogFileKB" value="2048" />',
        '<add key="MAXLOGFILEKB" value="512" />',
    )
    result = parse(twice)
    assert result.settings is not None and result.settings.max_log_file_kb == 512
    assert result.warnings == (
        f"line {line_of(twice, 'MAXLOGFILEKB')}: MAXLOGFILEKB is set again (also on "
        f"line {line_of(twice, '2048')}); the last one, on line "
        f"{line_of(twice, 'MAXLOGFILEKB')}, wins as in .NET",
    )

    for undone in ('<remove key="maxLogFileKB" />', "<clear />"):
        result = parse(with_logging('<add key="MaxLogFileKB" value="2048" />', undone))
        assert result.settings is not None and result.settings.max_log_file_kb == 1024


def test_a_clear_in_one_section_leaves_the_other_alone():
    text = with_logging("<clear />").replace(
        '<add key="LogLevel" value="Info" />',
        '<add key="LogLevel" value="Debug" />',
    )
    result = parse(text)
    assert result.settings is not None
    assert result.settings.log_level == "Debug"

    text = SHIPPED.replace("  </appSettings>", "    <clear />\n  </appSettings>")
    text = text.replace('value="1024"', 'value="2048"')
    result = parse(text)
    assert result.settings is not None
    assert result.settings.max_log_file_kb == 2048
    assert result.settings.log_level == "Info"


@pytest.mark.parametrize("value", ["63", "102401", "1 MB", "1.5", "", "0x400", "-64"])
def test_a_bad_value_is_an_error_naming_its_line_and_key(value):
    text = SHIPPED.replace('value="1024"', f'value="{value}"')
    result = parse(text)

    assert result.settings is None
    [error] = result.errors
    line = line_of(text, "MaxLogFileKB")
    assert error.line == line and error.key == "MaxLogFileKB"
    assert str(error) == (
        f"line {line}: MaxLogFileKB must be a whole number of KB from 64 to 102400, "
        f"not {value!r}"
    )


@pytest.mark.parametrize("value", ["64", "102400", "+100"])
def test_the_bounds_are_allowed(value):
    result = parse(SHIPPED.replace('value="1024"', f'value="{value}"'))
    assert result.settings is not None
    assert result.settings.max_log_file_kb == int(value)


def test_a_misspelt_key_stops_the_file_like_a_misspelt_appsettings_key():
    text = SHIPPED.replace('key="MaxLogFileKB"', 'key="MaxLogFileKBs"')
    result = parse(text)

    assert result.settings is None
    [error] = result.errors
    line = line_of(text, "MaxLogFileKBs")
    assert (error.line, error.key) == (line, "MaxLogFileKBs")
    assert str(error) == (
        f"line {line}: MaxLogFileKBs is not a setting of the agent (did you mean "
        "MaxLogFileKB?); correct the key's spelling, or delete the line if it is "
        "not wanted"
    )


def test_an_unrelated_key_in_the_section_is_only_noted():
    text = with_logging(SHIPPED_ENTRY, '<add key="Colour" value="blue" />')
    result = parse(text)
    assert result.errors == ()
    assert result.settings is not None
    assert result.settings.unknown_keys == ("Colour",)
    assert [u.line for u in result.unknown] == [line_of(text, "Colour")]


def test_a_key_in_the_wrong_section_is_an_error_saying_where_it_goes():
    text = SHIPPED.replace(
        "  </appSettings>",
        '    <add key="MaxLogFileKB" value="2048" />\n  </appSettings>',
    )
    [error] = parse(text).errors
    line = line_of(text, 'value="2048"')
    assert str(error) == (
        f"line {line}: MaxLogFileKB is a setting of the <integrationLogging> section, "
        "not of <appSettings>, so the agent does not read it here; move the line "
        "into <integrationLogging>"
    )

    text = with_logging('<add key="LogLevel" value="Debug" />')
    [error] = parse(text).errors
    assert error.line == line_of(text, 'value="Debug"')
    assert "move the line into <appSettings>" in str(error)


def test_the_section_takes_only_add_remove_and_clear():
    text = with_logging('<set key="MaxLogFileKB" value="2048" />')
    [error] = parse(text).errors
    assert str(error) == (
        f"line {line_of(text, '<set')}: unrecognized element <set> in "
        "<integrationLogging>; only add, remove and clear belong there"
    )


def test_check_config_prints_the_value_or_the_error(tmp_path):
    path = tmp_path / NAME
    path.write_text(SHIPPED.replace('value="1024"', 'value="2048"'), encoding="utf-8")
    out = io.StringIO()
    assert check_config(path, out) == 0
    assert "  MaxLogFileKB = 2048" in out.getvalue().splitlines()

    bad = SHIPPED.replace('value="1024"', 'value="lots"')
    path.write_text(bad, encoding="utf-8")
    out = io.StringIO()
    assert check_config(path, out) == 1
    assert out.getvalue().splitlines() == [
        f"ERROR: {path}",
        f"  line {line_of(bad, 'lots')}: MaxLogFileKB must be a whole number of KB "
        "from 64 to 102400, not 'lots'",
    ]


# Writing.


def test_writing_changes_only_the_value_bytes(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(SHIPPED.replace("\n", "\r\n").encode("utf-8"))
    before = path.read_bytes()

    write_settings(path, {"MaxLogFileKB": "4096"})

    after = path.read_bytes()
    start = before.index(b'"1024"')
    assert after == before[:start] + b'"4096"' + before[start + len(b'"1024"') :]
    result = parse_config(after, path)
    assert result.settings is not None and result.settings.max_log_file_kb == 4096

    write_settings(path, {"MaxLogFileKB": "1024"})
    assert path.read_bytes() == before


def test_writing_a_bad_value_changes_nothing(tmp_path):
    path = tmp_path / NAME
    path.write_text(SHIPPED, encoding="utf-8")
    with pytest.raises(Exception, match="MaxLogFileKB must be a whole number"):
        write_settings(path, {"MaxLogFileKB": "10"})
    assert path.read_text(encoding="utf-8") == SHIPPED


def test_writing_into_an_absent_key_or_section_adds_it(tmp_path):
    empty_section = with_logging()
    written = render_changes(
        empty_section.encode("utf-8"), {"MaxLogFileKB": "2048"}, NAME
    ).decode("utf-8")
    assert written == SHIPPED.replace('value="1024"', 'value="2048"')

    start = SHIPPED.index("  <integrationLogging>")
    end = SHIPPED.index("</integrationLogging>") + len("</integrationLogging>\n")
    no_section = SHIPPED[:start] + SHIPPED[end:]
    written = render_changes(
        no_section.encode("utf-8"), {"MaxLogFileKB": "2048", "LogLevel": "Debug"}, NAME
    ).decode("utf-8")
    assert written == SHIPPED.replace('value="1024"', 'value="2048"').replace(
        'value="Info"', 'value="Debug"'
    )

    # The default needs no line: nothing is written for it.
    assert render_changes(no_section.encode(), {"MaxLogFileKB": "1024"}, NAME) == (
        no_section.encode()
    )


# Applying.


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[logging.handlers.RotatingFileHandler]:
    """A rotating file handler on the root logger, as setup_logging adds one."""
    handler = logging.handlers.RotatingFileHandler(
        tmp_path / "agent.log", maxBytes=1, backupCount=1, encoding="utf-8"
    )
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    handler.close()


def test_setup_logging_rotates_at_the_default_1024_kb(tmp_path):
    root = logging.getLogger()
    kept = list(root.handlers), root.level
    try:
        setup_logging(tmp_path, console=False)
        [handler] = [
            h
            for h in root.handlers
            if isinstance(h, logging.handlers.RotatingFileHandler)
        ]
        assert handler.maxBytes == 1024 * 1024
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in kept[0]:
            root.addHandler(handler)
        root.setLevel(kept[1])


def test_set_max_file_kb_sets_the_handlers_max_bytes(rotating):
    set_max_file_kb(64)
    assert rotating.maxBytes == 64 * 1024


def test_a_live_change_resizes_the_log_file_and_is_logged(tmp_path, rotating, caplog):
    path = tmp_path / NAME
    path.write_text(SHIPPED, encoding="utf-8")
    agent = Agent(AgentOptions(config_path=path, data_dir=tmp_path), RecentRecords())
    agent._start_config()
    try:
        assert rotating.maxBytes == 1024 * 1024

        caplog.set_level(logging.INFO)
        path.write_text(
            SHIPPED.replace('value="1024"', 'value="8192"'), encoding="utf-8"
        )
        agent.config.load()
        assert rotating.maxBytes == 8192 * 1024
        assert "MaxLogFileKB: 1024 -> 8192" in caplog.text

        # A bad value keeps the size in force.
        path.write_text(SHIPPED.replace('value="1024"', 'value="9"'), encoding="utf-8")
        agent.config.load()
        assert agent.config.error is not None
        assert agent.config.error.key == "MaxLogFileKB"
        assert rotating.maxBytes == 8192 * 1024

        # The page writes through the same manager, and the handler follows.
        agent.config.write({"MaxLogFileKB": "128"})
        assert rotating.maxBytes == 128 * 1024
        assert agent.config.error is None
    finally:
        agent.config.stop()
