"""The command line: options in either place, values checked before anything starts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import build_parser, main
from agent.errors import AgentError
from agent.paths import write_json_atomically
from agent.sandbox.runner import refuse_second_sandbox


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "/tmp/a.config", "--data-dir", "/tmp/d", "check-config"],
        ["check-config", "--config", "/tmp/a.config", "--data-dir", "/tmp/d"],
        ["--config", "/tmp/a.config", "status", "--data-dir", "/tmp/d"],
    ],
)
def test_common_options_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.config == Path("/tmp/a.config")
    assert args.data_dir == Path("/tmp/d")


def test_check_config_checks_the_file_named_before_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.config"
    broken.write_text(
        '<?xml version="1.0"?>\n<configuration>\n  <appSettings>\n'
        '    <add key="LogLevel" value="Infoo" />\n  </appSettings>\n</configuration>\n'
    )
    code = main(["--config", str(broken), "--data-dir", str(tmp_path), "check-config"])
    assert code == 1
    assert "line 4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "99999"], "99999 is out of range: use 1024 to 65535"),
        (["--port", "80"], "80 is out of range"),
        (["--port", "http"], "'http' is not a whole number"),
        (["sandbox", "--devices", "0"], "0 is out of range: use 1 to"),
        (["sandbox", "--tenants", "-1"], "-1 is out of range"),
    ],
)
def test_bad_numbers_are_refused_with_the_range(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_port_zero_means_any_free_port() -> None:
    assert build_parser().parse_args(["--port", "0"]).port == 0


def test_a_second_sandbox_in_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        write_json_atomically(tmp_path / "sandbox.json", {"pid": sleeper.pid})
        with pytest.raises(AgentError) as refused:
            refuse_second_sandbox(tmp_path)
        assert f"process {sleeper.pid}" in str(refused.value)
        assert "--data-dir" in str(refused.value)
    finally:
        sleeper.kill()
        sleeper.wait()
    refuse_second_sandbox(tmp_path)  # the owner is gone: a new sandbox may start


@pytest.mark.parametrize(
    "argv", [["--help"], ["sandbox", "--help"], ["status", "--help"]]
)
def test_help_gives_each_default_once_and_never_none(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    text = " ".join(capsys.readouterr().out.split())

    assert "(default: None)" not in text
    assert "(default: False)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)


def test_help_names_the_defaults_that_are_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sandbox", "--help"])
    text = " ".join(capsys.readouterr().out.split())

    assert "companies per console (default: 5)" in text
    assert "(default: beside the program)" in text
