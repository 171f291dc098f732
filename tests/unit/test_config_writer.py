"""Writing values back: only the changed bytes move, and the file is replaced whole."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.config import read_settings, write_settings
from agent.config.writer import remove_stale_temp_files, render_changes
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
FIXTURES = ROOT / "tests" / "fixtures" / "config"
NAME = "IntegrationUI.exe.config"


def save(folder: Path, text: str, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    """Save ``text`` as the config file in ``folder`` and return its path."""
    path = folder / NAME
    path.write_bytes(bom + text.encode(encoding))
    return path


def assert_only_changed(
    before: bytes, after: bytes, old: bytes, new: bytes, at: int | None = None
) -> None:
    """``after`` is ``before`` with ``old`` (first found, or at ``at``) as ``new``."""
    start = before.index(old) if at is None else at
    assert after[:start] == before[:start]
    assert after[start : start + len(new)] == new
    assert after[start + len(new) :] == before[start + len(old) :]


def temp_files(folder: Path) -> list[Path]:
    """Files other than the config itself (temporary files a write left)."""
    return sorted(p for p in folder.iterdir() if p.name != NAME)


# Only the value changes.


def test_changing_a_value_keeps_every_other_byte(tmp_path):
    path = save(tmp_path, SHIPPED)
    before = path.read_bytes()

    write_settings(path, {"WebPort": "48000"})

    assert_only_changed(before, path.read_bytes(), b'"47800"', b'"48000"')
    assert read_settings(path).web_port == 48000


def test_utf8_bom_declaration_comments_and_crlf_are_kept(tmp_path):
    path = save(tmp_path, SHIPPED.replace("\n", "\r\n"), bom=b"\xef\xbb\xbf")
    before = path.read_bytes()

    write_settings(path, {"loglevel": "debug"})

    after = path.read_bytes()
    assert after.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\r\n')
    assert_only_changed(before, after, b'value="Info"', b'value="Debug"')
    assert after.count(b"\r\n") == before.count(b"\r\n")


@pytest.mark.parametrize(
    ("codec", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")]
)
def test_utf16_stays_utf16_with_its_mark(tmp_path, codec, bom):
    text = SHIPPED.replace('encoding="utf-8"', 'encoding="utf-16"')
    path = save(tmp_path, text, encoding=codec, bom=bom)
    before = path.read_bytes()

    write_settings(path, {"LicenseSyncTime": "6:30"})

    after = path.read_bytes()
    assert after.startswith(bom)
    old, new = '"02:00"'.encode(codec), '"06:30"'.encode(codec)
    assert_only_changed(before, after, old, new, at=before.index(old))
    assert read_settings(path).license_sync_time.hour == 6


def test_a_single_byte_encoding_is_kept(tmp_path):
    text = SHIPPED.replace('encoding="utf-8"', 'encoding="windows-1252"')
    text = text.replace("Error, Warning", "Erreur (\u00e9chec), Warning")
    path = save(tmp_path, text, encoding="cp1252")
    before = path.read_bytes()

    write_settings(path, {"ServiceOrderSyncMinutes": "120"})

    assert_only_changed(before, path.read_bytes(), b'value="5"', b'value="120"')
    assert b"\xe9chec" in path.read_bytes()


def test_attribute_order_and_quotes_are_kept(tmp_path):
    path = tmp_path / NAME
    path.write_bytes((FIXTURES / "dotnet_sections.config").read_bytes())
    before = path.read_bytes()

    write_settings(path, {"LogLevel": "Error"})

    assert_only_changed(
        before,
        path.read_bytes(),
        b"<add value='Debug' key='LogLevel' />",
        b"<add value='Error' key='LogLevel' />",
    )


def test_a_tag_over_several_lines_changes_in_place(tmp_path):
    path = tmp_path / NAME
    path.write_bytes((FIXTURES / "dotnet_sections.config").read_bytes())
    before = path.read_bytes()

    write_settings(path, {"ServiceOrderSyncMinutes": "45"})

    assert_only_changed(before, path.read_bytes(), b'value="15"', b'value="45"')


def test_the_value_in_force_is_the_one_changed_when_a_key_repeats(tmp_path):
    text = SHIPPED.replace(
        '<add key="LogLevel" value="Info" />',
        '<add key="LogLevel" value="Info" />\n    <add key="LOGLEVEL" value="Error" />',
    )
    path = save(tmp_path, text)
    before = path.read_bytes()

    write_settings(path, {"LogLevel": "Warning"})

    assert_only_changed(before, path.read_bytes(), b'"Error"', b'"Warning"')


def test_a_value_attribute_is_added_when_the_add_has_none(tmp_path):
    text = SHIPPED.replace('value="47800" />', "/>")
    path = save(tmp_path, text)
    before = path.read_bytes()

    write_settings(path, {"WebPort": "47900"})

    old, new = b'key="WebPort" />', b'key="WebPort" value="47900" />'
    assert_only_changed(before, path.read_bytes(), old, new)


# A missing key becomes a new line.


def test_a_missing_key_is_added_like_its_neighbours(tmp_path):
    path = save(tmp_path, SHIPPED.replace("\n", "\r\n"))
    before = path.read_bytes()

    write_settings(path, {"KESCloudServer": "Beta"})

    anchor = b'<add key="LogLevel" value="Info" />'
    new_line = b'\r\n    <add key="KESCloudServer" value="beta" />'
    at = before.index(anchor) + len(anchor)
    assert_only_changed(before, path.read_bytes(), b"", new_line, at=at)
    assert read_settings(path).kes_cloud_server == "beta"


def test_a_key_removed_by_remove_is_added_after_it(tmp_path):
    path = tmp_path / NAME
    path.write_bytes((FIXTURES / "dotnet_sections.config").read_bytes())

    write_settings(path, {"WebPort": "40001"})

    text = path.read_text()
    assert text.index('<add key="WebPort" value="40001" />') > text.index("<remove")
    assert text.count('value="40000"') == 1
    assert read_settings(path).web_port == 40001


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "  <appSettings>\n  </appSettings>\n",
            '  <appSettings>\n    <add key="WebPort" value="48000" />\n'
            "  </appSettings>\n",
        ),
        (
            "  <appSettings></appSettings>\n",
            '  <appSettings>\n    <add key="WebPort" value="48000" />\n'
            "  </appSettings>\n",
        ),
        (
            "  <appSettings />\n",
            '  <appSettings>\n    <add key="WebPort" value="48000" />\n'
            "  </appSettings>\n",
        ),
        (
            "",
            '  <startup />\n  <appSettings>\n    <add key="WebPort" value="48000" />\n'
            "  </appSettings>\n",
        ),
    ],
)
def test_an_empty_self_closing_or_absent_section_gets_the_key(
    tmp_path, section, expected
):
    text = f"<configuration>\n  <startup />\n{section}</configuration>\n"
    path = save(tmp_path, text)

    write_settings(path, {"WebPort": "48000"})

    assert path.read_text().endswith(f"{expected}</configuration>\n")
    assert read_settings(path).web_port == 48000


# Nothing to change, or something wrong: the file stays as it is.


def test_unchanged_values_and_absent_defaults_do_not_touch_the_file(tmp_path):
    path = save(tmp_path, SHIPPED)
    os.utime(path, (1_000_000, 1_000_000))
    inode = path.stat().st_ino

    write_settings(
        path,
        {"LogLevel": "INFO", "WebPort": " 47800 ", "KESCloudServer": "production"},
    )

    assert path.read_text() == SHIPPED
    assert (path.stat().st_ino, path.stat().st_mtime) == (inode, 1_000_000)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"WebPort": "80"}, "WebPort must be a whole number from 1024 to 65535"),
        ({"KESCloudServer": "prod"}, "must be production, beta or test, not 'prod'"),
        ({"Colour": "red"}, "cannot write the setting 'Colour'"),
    ],
)
def test_bad_changes_raise_and_change_nothing(tmp_path, changes, words):
    path = save(tmp_path, SHIPPED)

    with pytest.raises(ConfigError, match=words):
        write_settings(path, {"LogLevel": "Debug", **changes})

    assert path.read_text() == SHIPPED
    assert temp_files(tmp_path) == []


def test_a_file_that_would_stay_invalid_is_not_written(tmp_path):
    text = SHIPPED.replace('value="5"', 'value="often"')
    path = save(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        write_settings(path, {"LogLevel": "Debug"})

    assert caught.value.key == "ServiceOrderSyncMinutes"
    assert path.read_text() == text


def test_broken_xml_is_not_written(tmp_path):
    text = SHIPPED.replace('value="47800" />', 'value="47800"')
    path = save(tmp_path, text)

    with pytest.raises(ConfigError, match="is not closed"):
        write_settings(path, {"LogLevel": "Debug"})

    assert path.read_text() == text


def test_a_read_only_file_gives_a_clear_error_and_changes_nothing(tmp_path):
    path = save(tmp_path, SHIPPED)
    path.chmod(0o444)

    with pytest.raises(ConfigError, match="the config file is read-only"):
        write_settings(path, {"LogLevel": "Debug"})

    assert path.read_text() == SHIPPED
    assert temp_files(tmp_path) == []


def test_permission_bits_are_kept(tmp_path):
    path = save(tmp_path, SHIPPED)
    path.chmod(0o640)

    write_settings(path, {"LogLevel": "Debug"})

    assert path.stat().st_mode & 0o7777 == 0o640


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        write_settings(tmp_path / NAME, {"LogLevel": "Debug"})


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges")
def test_a_symbolic_link_stays_a_link(tmp_path):
    real = save(tmp_path, SHIPPED)
    (tmp_path / "link").mkdir()
    link = tmp_path / "link" / NAME
    link.symlink_to(real)

    write_settings(link, {"LogLevel": "Debug"})

    assert link.is_symlink()
    assert read_settings(real).log_level == "Debug"


# Atomic replacement.


def test_a_failed_flush_to_disk_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = save(tmp_path, SHIPPED)

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_settings(path, {"LogLevel": "Debug"})

    assert path.read_text() == SHIPPED
    assert temp_files(tmp_path) == []


def test_a_reader_never_sees_a_partial_file_while_writes_loop(tmp_path):
    path = save(tmp_path, SHIPPED)
    stop = threading.Event()
    problems: list[str] = []
    reads = 0

    def read_loop() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                read_settings(path)
            except ConfigError as err:
                problems.append(str(err))
            reads += 1

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for round_ in range(150):
            write_settings(path, {"LogLevel": ("Debug", "Info")[round_ % 2]})
    finally:
        stop.set()
        reader.join(10)

    assert problems == []
    assert reads > 0
    assert temp_files(tmp_path) == []


_WRITE_LOOP = """
import sys
from pathlib import Path
from agent.config import write_settings
path = Path(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    n += 1
    write_settings(path, {"WebPort": str(40000 + n % 20000), "LogLevel": "Debug"})
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_a_kill_mid_write_never_leaves_a_half_written_file(tmp_path):
    path = save(tmp_path, SHIPPED)

    for delay in (0.05, 0.13, 0.21, 0.29):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITE_LOOP, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"ready\n"
        time.sleep(delay)
        writer.kill()
        writer.wait(10)
        writer.stdout.close()

        settings = read_settings(path)
        assert settings.log_level == "Debug"
        assert 40000 <= settings.web_port < 60000

    # Temporary files a kill left are cleaned up once they are old.
    for leftover in temp_files(tmp_path):
        os.utime(leftover, (0, 0))
    remove_stale_temp_files(path)
    assert temp_files(tmp_path) == []


def test_render_changes_is_pure_and_returns_the_same_bytes_when_nothing_changes():
    data = SHIPPED.encode()

    assert render_changes(data, {"WebPort": "47800"}, "f") is data
    assert b'"47801"' in render_changes(data, {"WebPort": "47801"}, "f")
