"""Reading IntegrationUI.exe.config: encodings, .NET rules, errors with line and key."""

from __future__ import annotations

import io
import logging
from datetime import time
from pathlib import Path

import pytest

from agent.config import Settings, check_config, parse_config, read_settings
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
FIXTURES = ROOT / "tests" / "fixtures" / "config"


def write(tmp_path: Path, text: str, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    """Save ``text`` as the config file in ``tmp_path`` and return its path."""
    path = tmp_path / "IntegrationUI.exe.config"
    path.write_bytes(bom + text.encode(encoding))
    return path


def shipped_with(old: str, new: str) -> str:
    """The shipped file with one piece of text replaced (which must be there)."""
    assert old in SHIPPED
    return SHIPPED.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which ``needle`` first appears."""
    return text[: text.index(needle)].count("\n") + 1


def error_of(path: Path) -> ConfigError:
    """The ConfigError reading ``path`` raises."""
    with pytest.raises(ConfigError) as caught:
        read_settings(path)
    return caught.value


# The shipped file and the Settings snapshot.


def test_shipped_file_gives_the_defaults(tmp_path):
    settings = read_settings(write(tmp_path, SHIPPED))

    assert settings == Settings()
    assert settings.kes_cloud_server == "production"
    assert settings.license_sync_time == time(2, 0)


def test_as_dict_and_changes_from_use_the_dotnet_key_names():
    old = Settings()
    new = Settings(web_port=48000, license_sync_time=time(6, 5), log_level="Debug")

    assert old.as_dict() == {
        "KESCloudServer": "production",
        "ServiceOrderSyncMinutes": "5",
        "LicenseSyncTime": "02:00",
        "WebPort": "47800",
        "LogLevel": "Info",
        "MaxLogFileKB": "1024",
    }
    assert new.changes_from(old) == {
        "LicenseSyncTime": ("02:00", "06:05"),
        "WebPort": ("47800", "48000"),
        "LogLevel": ("Info", "Debug"),
    }
    assert old.changes_from(old) == {}


# Encodings and layout.


def test_utf8_with_byte_order_mark(tmp_path):
    text = shipped_with('value="Info"', 'value="Debug"')
    path = write(tmp_path, text, bom=b"\xef\xbb\xbf")

    assert read_settings(path).log_level == "Debug"


@pytest.mark.parametrize(
    ("codec", "bom"),
    [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")],
)
def test_utf16_with_its_byte_order_mark(tmp_path, codec, bom):
    text = shipped_with('encoding="utf-8"', 'encoding="utf-16"')
    text = text.replace('value="47800"', 'value="48123"')
    path = write(tmp_path, text, encoding=codec, bom=bom)

    assert read_settings(path).web_port == 48123


def test_utf16_error_lines_count_characters_not_bytes(tmp_path):
    text = shipped_with('encoding="utf-8"', 'encoding="utf-16"')
    text = text.replace('value="Info"', 'value="Loud"')
    path = write(tmp_path, text, encoding="utf-16-le", bom=b"\xff\xfe")

    error = error_of(path)

    assert error.line == line_of(text, "Loud")
    assert error.key == "LogLevel"


def test_the_encoding_the_declaration_names_is_used(tmp_path):
    text = shipped_with('encoding="utf-8"', 'encoding="windows-1252"')
    text = text.replace("Error, Warning", "Erreur (\u00e9chec), Warning")
    text = text.replace('value="5"', 'value="30"')
    path = write(tmp_path, text, encoding="cp1252")

    assert read_settings(path).service_order_sync_minutes == 30


def test_an_unknown_encoding_is_an_error_on_line_1(tmp_path):
    path = write(tmp_path, shipped_with('encoding="utf-8"', 'encoding="klingon"'))

    error = error_of(path)

    assert error.line == 1
    assert "klingon" in str(error)


def test_bytes_that_do_not_fit_the_encoding_name_their_line(tmp_path):
    data = SHIPPED.encode("utf-8").replace(b"HH:MM", b"HH\xff:MM")
    path = tmp_path / "IntegrationUI.exe.config"
    path.write_bytes(data)

    assert error_of(path).line == line_of(SHIPPED, "HH:MM")


def test_crlf_line_ends_keep_line_numbers_right(tmp_path):
    text = shipped_with('value="02:00"', 'value="2:5"').replace("\n", "\r\n")
    path = write(tmp_path, text)

    error = error_of(path)

    assert error.line == line_of(SHIPPED, 'key="LicenseSyncTime"')
    assert str(error) == (
        f"line {error.line}: LicenseSyncTime must be a time of day as HH:MM, "
        "from 00:00 to 23:59, not '2:5'"
    )


def test_crlf_file_reads(tmp_path):
    text = shipped_with('value="5"', 'value="60"').replace("\n", "\r\n")

    assert read_settings(write(tmp_path, text)).service_order_sync_minutes == 60


def test_commented_out_add_is_ignored(tmp_path):
    text = shipped_with(
        "<!-- Minutes",
        '<!-- <add key="KESCloudServer" value="prod" /> -->\n<!-- Minutes',
    )

    assert read_settings(write(tmp_path, text)).kes_cloud_server == "production"


def test_other_dotnet_sections_are_left_alone():
    settings = read_settings(FIXTURES / "dotnet_sections.config")

    # <clear/>, <remove/>, attribute order, a tag over three lines, <add></add>.
    assert settings == Settings(
        kes_cloud_server="beta",
        service_order_sync_minutes=15,
        log_level="Debug",
        unknown_keys=("LegacyReportFolder",),
    )


def test_a_namespace_on_configuration_is_accepted(tmp_path):
    text = shipped_with(
        "<configuration>",
        '<configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0">',
    )
    text = text.replace('value="Info"', 'value="Warning"')

    assert read_settings(write(tmp_path, text)).log_level == "Warning"


# Keys and values as .NET reads them.


def test_keys_match_in_any_case_and_values_report_the_canonical_word(tmp_path):
    text = shipped_with(
        '<add key="LogLevel" value="Info" />',
        '<add key="LOGLEVEL" value="dEbUg" />\n'
        '    <add key="kescloudserver" value="BETA" />',
    )

    settings = read_settings(write(tmp_path, text))

    assert (settings.log_level, settings.kes_cloud_server) == ("Debug", "beta")


def test_whitespace_around_values_is_trimmed(tmp_path):
    text = shipped_with('value="47800"', 'value="  48000\t"')
    text = text.replace('value="02:00"', 'value=" 23:59 "')
    text = text.replace(
        'key="LogLevel" value="Info"', 'key=" LogLevel " value=" Warning"'
    )

    settings = read_settings(write(tmp_path, text))

    assert settings.web_port == 48000
    assert settings.license_sync_time == time(23, 59)
    assert settings.log_level == "Warning"


def test_duplicate_key_last_one_wins_with_a_warning(tmp_path, caplog):
    text = shipped_with(
        '<add key="LogLevel" value="Info" />',
        '<add key="LogLevel" value="Info" />\n    <add key="loglevel" value="Error" />',
    )
    first = line_of(text, 'key="LogLevel"')

    with caplog.at_level(logging.WARNING, logger="agent.config"):
        settings = read_settings(write(tmp_path, text))

    assert settings.log_level == "Error"
    assert f"also on line {first}" in caplog.text
    assert f"on line {first + 1}, wins" in caplog.text


def test_unknown_keys_are_kept_in_settings(tmp_path):
    text = shipped_with(
        "</appSettings>", '  <add key="ProxyHost" value="x" />\n  </appSettings>'
    )

    assert read_settings(write(tmp_path, text)).unknown_keys == ("ProxyHost",)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("ServiceOrderSyncMinutes", "1", 1),
        ("ServiceOrderSyncMinutes", "1440", 1440),
        ("ServiceOrderSyncMinutes", "+30", 30),
        ("ServiceOrderSyncMinutes", "007", 7),
        ("WebPort", "1024", 1024),
        ("WebPort", "65535", 65535),
        ("LicenseSyncTime", "0:00", time(0, 0)),
        ("LicenseSyncTime", "23:59", time(23, 59)),
        ("KESCloudServer", "Test", "test"),
        ("LogLevel", "warning", "Warning"),
    ],
)
def test_good_values(tmp_path, key, raw, expected):
    text = shipped_with(
        "</appSettings>", f'<add key="{key}" value="{raw}" /></appSettings>'
    )

    settings = read_settings(write(tmp_path, text))

    assert getattr(settings, _FIELDS[key]) == expected


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("ServiceOrderSyncMinutes", "0", "a whole number from 1 to 1440"),
        ("ServiceOrderSyncMinutes", "1441", "a whole number from 1 to 1440"),
        ("ServiceOrderSyncMinutes", "5.0", "a whole number from 1 to 1440"),
        ("ServiceOrderSyncMinutes", "1_0", "a whole number from 1 to 1440"),
        ("ServiceOrderSyncMinutes", "\u0663", "a whole number from 1 to 1440"),
        ("ServiceOrderSyncMinutes", "", "a whole number from 1 to 1440"),
        ("WebPort", "1023", "a whole number from 1024 to 65535"),
        ("WebPort", "65536", "a whole number from 1024 to 65535"),
        ("LicenseSyncTime", "24:00", "a time of day as HH:MM, from 00:00 to 23:59"),
        ("LicenseSyncTime", "12:60", "a time of day as HH:MM, from 00:00 to 23:59"),
        ("LicenseSyncTime", "2am", "a time of day as HH:MM, from 00:00 to 23:59"),
        ("LogLevel", "Verbose", "Error, Warning, Info or Debug"),
        ("KESCloudServer", "prod", "production, beta or test"),
    ],
)
def test_bad_values_name_line_key_and_value(tmp_path, key, raw, expected):
    text = shipped_with(
        "</appSettings>", f'<add key="{key}" value="{raw}" />\n</appSettings>'
    )
    line = line_of(text, f'<add key="{key}" value="{raw}"')

    error = error_of(write(tmp_path, text))

    assert str(error) == f"line {line}: {key} must be {expected}, not {raw!r}"
    assert (error.line, error.key) == (line, key)
    assert error.path == str(tmp_path / "IntegrationUI.exe.config")


_FIELDS = {
    "KESCloudServer": "kes_cloud_server",
    "ServiceOrderSyncMinutes": "service_order_sync_minutes",
    "LicenseSyncTime": "license_sync_time",
    "WebPort": "web_port",
    "LogLevel": "log_level",
}


def test_prod_is_reported_as_the_brief_words_it(tmp_path):
    text = shipped_with(
        "<!-- Minutes", '<add key="KESCloudServer" value="prod" />\n    <!-- Minutes'
    )
    line = line_of(text, 'value="prod"')

    error = error_of(write(tmp_path, text))

    assert str(error) == (
        f"line {line}: KESCloudServer must be production, beta or test, not 'prod'"
    )


def test_every_bad_value_is_found_not_only_the_first(tmp_path):
    text = shipped_with('value="5"', 'value="0"').replace('value="Info"', 'value="x"')

    result = parse_config(text.encode(), "f")

    assert [e.key for e in result.errors] == ["ServiceOrderSyncMinutes", "LogLevel"]
    assert result.settings is None


# Structure errors, as .NET reports them.


def test_appsettings_in_the_wrong_case_is_an_unrecognized_section(tmp_path):
    text = SHIPPED.replace("appSettings>", "appsettings>")

    error = error_of(write(tmp_path, text))

    assert error.line == line_of(text, "<appsettings>")
    assert "unrecognized configuration section <appsettings>" in str(error)


def test_broken_xml_names_the_unclosed_tag_and_its_key(tmp_path):
    text = shipped_with(
        '<add key="WebPort" value="47800" />', '<add key="WebPort" value="47800"'
    )

    error = error_of(write(tmp_path, text))

    assert error.line == line_of(text, 'key="WebPort"')
    assert error.key == "WebPort"
    assert "is not closed: end it with '/>'" in str(error)


def test_a_file_cut_short_is_incomplete(tmp_path):
    text = SHIPPED[: SHIPPED.index("47800")]

    result = parse_config(text.encode(), "f")

    assert result.incomplete
    assert result.errors[0].key == "WebPort"
    assert "ends inside" in str(result.errors[0])


@pytest.mark.parametrize("data", [b"", b"  \n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_an_incomplete_error_never_no_settings(data):
    result = parse_config(data, "f")

    assert result.incomplete
    assert result.settings is None
    assert result.errors[0].line == 1
    assert "empty" in str(result.errors[0])


def test_a_value_error_is_not_incomplete():
    assert not parse_config(SHIPPED.replace('"5"', '"x"').encode(), "f").incomplete


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ('value="Info"', 'valeu="Info"', "unrecognized attribute 'valeu'"),
        ('<add key="WebPort"', '<set key="WebPort"', "unrecognized element <set>"),
        ('<add key="WebPort"', '<add name="WebPort"', "unrecognized attribute 'name'"),
        ('<add key="WebPort"', '<add key=" "', "has no key"),
        ("<appSettings>", '<appSettings file="user.config">', "points at another file"),
        (
            "</appSettings>\n",
            "</appSettings>\n<appSettings/>\n",
            "a second <appSettings>",
        ),
    ],
)
def test_structure_dotnet_refuses_is_refused(tmp_path, old, new, words):
    text = shipped_with(old, new)

    error = error_of(write(tmp_path, text))

    assert words in str(error)
    assert error.line == line_of(text, new.strip().splitlines()[-1])


def test_a_missing_value_attribute_is_a_bad_value_not_the_default(tmp_path):
    text = shipped_with('<add key="WebPort" value="47800" />', '<add key="WebPort" />')

    error = error_of(write(tmp_path, text))

    assert error.key == "WebPort"
    assert "not ''" in str(error)


def test_the_root_must_be_configuration(tmp_path):
    error = error_of(write(tmp_path, "<settings><appSettings/></settings>"))

    assert "must be <configuration>, not <settings>" in str(error)


def test_a_doctype_is_refused(tmp_path):
    text = shipped_with(
        "<configuration>", '<!DOCTYPE configuration [<!ENTITY x "y">]>\n<configuration>'
    )

    assert "DOCTYPE" in str(error_of(write(tmp_path, text)))


def test_no_appsettings_section_means_defaults(tmp_path):
    path = write(tmp_path, "<configuration><startup/></configuration>")

    assert read_settings(path) == Settings()


def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "nowhere.config"

    error = error_of(path)

    assert str(error) == f"file not found: {path}"
    assert error.path == str(path)


# check-config.


def test_check_config_prints_ok_and_the_effective_settings():
    out = io.StringIO()
    path = FIXTURES / "dotnet_sections.config"

    assert check_config(path, out) == 0

    lines = out.getvalue().splitlines()
    assert lines[0] == f"OK: {path}"
    assert "  KESCloudServer = beta" in lines
    assert "  WebPort = 47800" in lines
    line = line_of(path.read_text(encoding="utf-8"), "LegacyReportFolder")
    assert (
        f"  note: line {line}: LegacyReportFolder is not a setting of the agent; it "
        "is kept in the file but not used"
    ) in lines


def test_check_config_prints_every_error_with_line_and_key(tmp_path):
    text = shipped_with('value="5"', 'value="0"').replace('value="Info"', 'value="x"')
    path = write(tmp_path, text)
    out = io.StringIO()

    assert check_config(path, out) == 1

    minutes_line = line_of(text, 'value="0"')
    level_line = line_of(text, 'value="x"')
    assert out.getvalue().splitlines() == [
        f"ERROR: {path}",
        f"  line {minutes_line}: ServiceOrderSyncMinutes must be a whole number "
        "from 1 to 1440, not '0'",
        f"  line {level_line}: LogLevel must be Error, Warning, Info or Debug, not 'x'",
    ]


def test_check_config_prints_to_the_current_stdout(tmp_path, capsys):
    path = write(tmp_path, SHIPPED)

    assert check_config(path) == 0

    assert capsys.readouterr().out.startswith(f"OK: {path}\n  KESCloudServer = ")


def test_check_config_on_a_missing_file(tmp_path):
    out = io.StringIO()

    assert check_config(tmp_path / "gone.config", out) == 1

    assert f"file not found: {tmp_path / 'gone.config'}" in out.getvalue()
