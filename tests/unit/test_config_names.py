"""Names in the config: a misspelt key gets a suggestion, a section its case."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent.config import check_config, parse_config, read_settings
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
FIXTURES = ROOT / "tests" / "fixtures" / "config"


def shipped_with(old: str, new: str) -> str:
    """The shipped file with one piece of text replaced (which must be there)."""
    assert old in SHIPPED
    return SHIPPED.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which ``needle`` first appears."""
    return text[: text.index(needle)].count("\n") + 1


def write(tmp_path: Path, text: str) -> Path:
    """Save ``text`` as the config file in ``tmp_path`` and return its path."""
    path = tmp_path / "IntegrationUI.exe.config"
    path.write_text(text, encoding="utf-8")
    return path


# Unknown keys.


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("LogLevl", "LogLevel"),
        ("webports", "WebPort"),
        ("CloudServer", "KESCloudServer"),
        ("LicenceSyncTime", "LicenseSyncTime"),
        ("ServiceOrderSyncMinute", "ServiceOrderSyncMinutes"),
    ],
)
def test_a_misspelt_key_is_an_error_naming_the_key_it_resembles(typed, meant):
    text = shipped_with(
        '<add key="LogLevel" value="Info" />',
        f'<add key="LogLevel" value="Info" />\n    <add key="{typed}" value="x" />',
    )
    line = line_of(text, f'key="{typed}"')

    result = parse_config(text.encode(), "f")

    # The defaults would quietly undo whatever the key was meant to set.
    assert result.settings is None
    assert result.unknown == ()
    [error] = result.errors
    assert (error.key, error.line) == (typed, line)
    assert str(error) == (
        f"line {line}: {typed} is not a setting of the agent (did you mean "
        f"{meant}?); correct the key's spelling, or delete the line if it is not "
        "wanted"
    )


def test_read_settings_refuses_a_misspelt_key(tmp_path):
    text = shipped_with('key="LogLevel" value="Info"', 'key="LogLevl" value="Debug"')

    with pytest.raises(ConfigError) as caught:
        read_settings(write(tmp_path, text))

    assert caught.value.line == line_of(text, "LogLevl")
    assert caught.value.key == "LogLevl"


def test_a_key_like_no_known_one_is_only_noted():
    text = shipped_with(
        "</appSettings>", '  <add key="ProxyPort" value="8080" />\n  </appSettings>'
    )
    line = line_of(text, "ProxyPort")

    result = parse_config(text.encode(), "f")

    assert result.errors == ()
    assert result.settings is not None
    assert result.settings.unknown_keys == ("ProxyPort",)
    [unknown] = result.unknown
    assert (unknown.key, unknown.line) == ("ProxyPort", line)
    assert str(unknown) == (
        f"line {line}: ProxyPort is not a setting of the agent; it is kept in the "
        "file but not used"
    )


def test_check_config_lists_a_misspelt_key_beside_a_bad_value_by_line(tmp_path):
    text = shipped_with('value="Info"', 'value="Loud"').replace(
        "</appSettings>", '  <add key="LogLevl" value="Debug" />\n  </appSettings>'
    )
    path = write(tmp_path, text)
    out = io.StringIO()

    assert check_config(path, out) == 1

    bad, typo = line_of(text, "Loud"), line_of(text, "LogLevl")
    assert out.getvalue().splitlines() == [
        f"ERROR: {path}",
        f"  line {bad}: LogLevel must be Error, Warning, Info or Debug, not 'Loud'",
        f"  line {typo}: LogLevl is not a setting of the agent (did you mean "
        "LogLevel?); correct the key's spelling, or delete the line if it is not "
        "wanted",
    ]


def test_check_config_fails_on_a_misspelt_key_alone(tmp_path):
    text = shipped_with(
        "</appSettings>", '  <add key="LogLevl" value="Debug" />\n  </appSettings>'
    )
    path = write(tmp_path, text)
    out = io.StringIO()

    assert check_config(path, out) == 1

    assert out.getvalue().splitlines() == [
        f"ERROR: {path}",
        f"  line {line_of(text, 'LogLevl')}: LogLevl is not a setting of the agent "
        "(did you mean LogLevel?); correct the key's spelling, or delete the line "
        "if it is not wanted",
    ]


def test_check_config_ok_lists_an_unlike_key_as_a_note(tmp_path):
    text = shipped_with(
        "</appSettings>", '  <add key="ProxyPort" value="8080" />\n  </appSettings>'
    )
    path = write(tmp_path, text)
    out = io.StringIO()

    assert check_config(path, out) == 0

    assert out.getvalue().splitlines()[-1] == (
        f"  note: line {line_of(text, 'ProxyPort')}: ProxyPort is not a setting of "
        "the agent; it is kept in the file but not used"
    )


# Section names: .NET knows a section only as declared, case included.


def test_a_declared_section_in_another_case_is_refused(tmp_path):
    text = SHIPPED.replace("integrationLogging>", "IntegrationLogging>")

    with pytest.raises(ConfigError) as caught:
        read_settings(write(tmp_path, text))

    line = line_of(text, "<IntegrationLogging>")
    declared = line_of(text, 'name="integrationLogging"')
    assert caught.value.line == line
    assert str(caught.value) == (
        f"line {line}: unrecognized configuration section <IntegrationLogging>; "
        ".NET section names are case-sensitive: write <integrationLogging> and "
        f"</integrationLogging> as <configSections> declares it on line {declared}"
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [("startup>", "Startup>"), ("configSections>", "ConfigSections>")],
)
def test_a_dotnet_section_in_another_case_is_refused(tmp_path, old, new):
    text = SHIPPED.replace(old, new)

    with pytest.raises(ConfigError) as caught:
        read_settings(write(tmp_path, text))

    spelled = old.rstrip(">")
    assert caught.value.line == line_of(text, f"<{new}")
    assert f"write <{spelled}> and </{spelled}>" in str(caught.value)


def test_a_section_in_a_declared_group_is_checked_too(tmp_path):
    text = (FIXTURES / "dotnet_sections.config").read_text(encoding="utf-8")
    text = text.replace(
        "IntegrationUI.Properties.Settings>", "integrationUI.properties.settings>"
    )

    with pytest.raises(ConfigError) as caught:
        read_settings(write(tmp_path, text))

    assert caught.value.line == line_of(text, "<integrationUI.properties.settings>")
    assert "write <IntegrationUI.Properties.Settings>" in str(caught.value)


def test_undeclared_sections_of_other_names_are_left_alone(tmp_path):
    # The agent cannot know every section machine.config declares; only case slips.
    text = shipped_with("<startup>", "<system.webServer />\n  <startup>")

    assert read_settings(write(tmp_path, text)).log_level == "Info"
