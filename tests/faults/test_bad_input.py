"""Malformed configs and wizard inputs: blank, spaces only, very long, non-ASCII,
markup and control characters. Each gives a clear error (the config's naming its
line and key, the page's beside its field) and changes nothing: the last good
settings stay in force, and the store and secret store stay as they were.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from agent.app import Agent
from agent.config import ConfigManager, check_config
from tests.faults.test_store_faults import Page, agent  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "IntegrationUI.exe.config").read_text(encoding="utf-8")
GOOD = SHIPPED.replace('value="5" />', 'value="7" />').replace(
    '"WebPort" value="47800"', '"WebPort" value="47811"'
)
KEYS = ("ServiceOrderSyncMinutes", "LicenseSyncTime", "WebPort", "LogLevel")
#: The line of each key's <add> in GOOD.
LINE = {
    key: next(
        n for n, text in enumerate(GOOD.splitlines(), 1) if f'<add key="{key}"' in text
    )
    for key in KEYS
}

# (key, the value as written in the file).
BAD_VALUES = {
    "minutes blank": ("ServiceOrderSyncMinutes", ""),
    "minutes spaces only": ("ServiceOrderSyncMinutes", "    "),
    "minutes very long": ("ServiceOrderSyncMinutes", "5" * 5000),
    "minutes Arabic digits": ("ServiceOrderSyncMinutes", "\u0665"),
    "minutes fullwidth digits": ("ServiceOrderSyncMinutes", "\uff15"),
    "minutes escaped markup": ("ServiceOrderSyncMinutes", "&lt;b&gt;5&lt;/b&gt;"),
    "minutes raw markup": ("ServiceOrderSyncMinutes", "<b>5</b>"),
    "minutes control character": ("ServiceOrderSyncMinutes", "5\x07"),
    "minutes character reference": ("ServiceOrderSyncMinutes", "5&#x1B;"),
    "time blank": ("LicenseSyncTime", ""),
    "time spaces only": ("LicenseSyncTime", "\t \t"),
    "time very long": ("LicenseSyncTime", "02:00" * 1000),
    "time non-ASCII colon": ("LicenseSyncTime", "02\uff1a00"),
    "time tab inside": ("LicenseSyncTime", "02:\t00"),
    "time NUL": ("LicenseSyncTime", "02:00\x00"),
    "port blank": ("WebPort", ""),
    "port very long": ("WebPort", "4" * 4000),
    "port zero-width space": ("WebPort", "478\u200b00"),
    "port escape sequence": ("WebPort", "\x1b[31m47800"),
    "level blank": ("LogLevel", ""),
    "level non-ASCII": ("LogLevel", "D\u00e9bug"),
    "level escaped markup": ("LogLevel", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    "level raw markup": ("LogLevel", "<Info/>"),
    "level very long": ("LogLevel", "Info" * 3000),
    "level DEL": ("LogLevel", "Info\x7f"),
    "level vertical tab": ("LogLevel", "In\x0bfo"),
}


def with_value(key: str, raw: str) -> str:
    """The good file with one key's value replaced by ``raw``, as written."""
    lines = GOOD.splitlines(keepends=True)
    index = LINE[key] - 1
    start = lines[index].index('value="') + len('value="')
    end = lines[index].index('"', start)
    lines[index] = lines[index][:start] + raw + lines[index][end:]
    return "".join(lines)


@pytest.fixture
def manager(tmp_path: Path) -> ConfigManager:
    """A ConfigManager holding the good file's settings."""
    path = tmp_path / "IntegrationUI.exe.config"
    path.write_text(GOOD, encoding="utf-8")
    made = ConfigManager(path)
    settings = made.load()
    assert made.error is None
    assert (settings.service_order_sync_minutes, settings.web_port) == (7, 47811)
    return made


@pytest.mark.parametrize(("key", "raw"), BAD_VALUES.values(), ids=BAD_VALUES)
def test_a_bad_config_names_line_and_key_and_keeps_the_last_good_settings(
    manager: ConfigManager, key: str, raw: str
) -> None:
    """check-config and the running agent both name the line and key."""
    good = manager.settings
    manager.path.write_text(with_value(key, raw), encoding="utf-8")

    settings = manager.load()

    error = manager.error
    assert error is not None
    assert (error.line, error.key) == (LINE[key], key), str(error)
    assert str(error).startswith(f"line {LINE[key]}: ") and key in str(error)
    assert len(str(error)) < 400, "the message quotes too much of the value"
    assert settings == good and manager.settings == good

    out = io.StringIO()
    assert check_config(manager.path, out) == 1
    assert f"line {LINE[key]}: " in out.getvalue() and key in out.getvalue()


# The wizard, through the page.

LONG = "x" * 5000
CONNECT_KSC = {
    "source": "ksc",
    "ksc_address": "127.0.0.1:1",
    "ksc_user": "admin",
    "ksc_password": "Secret-1!",
}
# (field posted, value): the page refuses each before anything is dialled.
BAD_KSC = {
    "address blank": ("ksc_address", ""),
    "address spaces only": ("ksc_address", "   "),
    "address very long": ("ksc_address", "k" * 300 + ".example"),
    "address non-ASCII": (
        "ksc_address",
        "\u0441\u0435\u0440\u0432\u0435\u0440.example",
    ),
    "address markup": ("ksc_address", "<b>ksc</b>"),
    "address control character": ("ksc_address", "10.0.0.1\x00"),
    "user blank": ("ksc_user", " "),
    "user control character": ("ksc_user", "admin\x1b[2J"),
    "proxy address markup": ("proxy_address", "<img src=x>"),
    "proxy address control character": ("proxy_address", "proxy\x01:3128"),
}
BAD_KBH = {
    "email blank": ("kbh_email", ""),
    "email spaces only": ("kbh_email", "    "),
    "email markup": ("kbh_email", "<script>@x.example"),
    "email control character": ("kbh_email", "jo\x00e@x.example"),
    "email not an address": ("kbh_email", "jo\u00eb"),
}
BAD_TIGERPAW = {
    "name blank": ("name", ""),
    "name spaces only": ("name", "     "),
    "name very long": ("name", LONG),
    "name control character": ("name", "Acme\x1b[2J"),
    "name NUL": ("name", "Acme\x00Dental"),
    "address blank": ("api_url", ""),
    "address very long host": ("api_url", "https://" + "t" * 300 + ".example"),
    "address markup": ("api_url", "https://<script>/"),
    "address with a space": ("api_url", "https://tiger paw.example"),
    "address non-ASCII": ("api_url", "https://\u0442\u0438\u0433\u0440.example"),
    "address control character": ("api_url", "https://127.0.0.1\x07/"),
    "SOAP user spaces only": ("soap_user", "   "),
    "SOAP user control character": ("soap_user", "tsi\x00user"),
    "public key header break": ("public_key", "key\r\nX-Injected: 1"),
}


def saved(made: Agent) -> tuple[Any, ...]:
    """Everything the setup may save: integrations, tenants and the secret file."""
    secrets = made.options.data_dir / "secrets.json"
    return (
        made.store.list_integrations(),
        made.store.list_tenants(),
        secrets.read_bytes() if secrets.exists() else None,
    )


def beside(text: str, field: str) -> bool:
    """Whether the page shows an error beside ``field``."""
    return f'id="{field}-error"' in text


@pytest.fixture
def wizard(agent: tuple[Agent, dict[str, Any], dict[str, Any]]):  # noqa: F811
    """The page, with the agent, the Business Hub and Tigerpaw descriptions."""
    made, hub, tigerpaw = agent
    return Page(made), made, hub, tigerpaw


def test_bad_connection_inputs_are_refused_beside_their_field(wizard) -> None:
    """Every bad KSC, proxy or Business Hub field: 400, the error beside it."""
    page, made, hub, _ = wizard
    before = saved(made)
    cases = [({**CONNECT_KSC, f: v}, f) for f, v in BAD_KSC.values()]
    for form, field in cases:
        if field.startswith("proxy"):
            form.update(use_proxy="on", proxy_user="p", proxy_password="p")
    good_kbh = {"source": "kbh", "kbh_email": hub["email"], "kbh_password": "x"}
    cases += [({**good_kbh, f: v}, f) for f, v in BAD_KBH.values()]

    for form, field in cases:
        status, text = page.post("/setup/connect", form)
        assert status == 400, (field, form[field])
        assert beside(text, field), (field, form[field])
        assert saved(made) == before


def test_bad_tigerpaw_inputs_are_refused_beside_their_field(wizard) -> None:
    """Every bad field of the Create integration page: 400, the error beside it,
    nothing saved; the good form then saves."""
    page, made, hub, tigerpaw = wizard
    connect = {
        "source": "kbh",
        "kbh_email": hub["email"],
        "kbh_password": hub["password"],
    }
    assert page.post("/setup/connect", connect)[0] == 302
    good = {
        "platform": "Tigerpaw",
        "name": "Integration with Tigerpaw",
        "api_url": tigerpaw["url"],
        "soap_user": tigerpaw["soap_user"],
        "soap_password": tigerpaw["soap_password"],
        "public_key": tigerpaw["public_key"],
        "private_key": tigerpaw["private_key"],
    }
    before = saved(made)
    calls = sum(made_calls(tigerpaw).values())

    for field, value in BAD_TIGERPAW.values():
        status, text = page.post("/setup/integration", {**good, field: value})
        assert status == 400, (field, value)
        assert beside(text, field), (field, value)
        assert saved(made) == before

    # None of them was sent to Tigerpaw, and the page still works.
    assert sum(made_calls(tigerpaw).values()) == calls
    assert page.post("/setup/integration", good)[0] == 302
    assert [i.name for i in made.store.list_integrations()] == [good["name"]]


def made_calls(tigerpaw: dict[str, Any]) -> dict[str, int]:
    """The calls the Tigerpaw emulator has served."""
    import requests

    reply = requests.get(f"{tigerpaw['url']}/_sandbox/state", timeout=10)
    return dict(reply.json()["calls"])
