"""The page's forms: every blank field named, typed values kept, secrets never."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sandbox.certs import make_certificate
from agent.store import SEVERITIES
from agent.web import forms


def test_ksc_blank_fields_each_get_an_error() -> None:
    result = forms.read_connect({"source": "ksc"}, None)
    assert set(result.errors) == {"ksc_address", "ksc_user", "ksc_password"}


def test_kbh_blank_fields_each_get_an_error() -> None:
    result = forms.read_connect({"source": "kbh", "kbh_email": "x"}, None)
    assert set(result.errors) == {"kbh_email", "kbh_password"}
    assert "email address" in result.errors["kbh_email"]


def test_unknown_solution_is_refused() -> None:
    assert "source" in forms.read_connect({"source": "other"}, None).errors


def test_a_certificate_does_not_replace_user_and_password(tmp_path: Path) -> None:
    """KSC's Open API has no certificate login: the account is asked for with a
    certificate too, and the hint beside the user name says so."""
    identity = make_certificate(tmp_path, "klserver")
    form = {"source": "ksc", "ksc_address": "10.0.0.5", "use_certificate": "on"}
    missing = forms.read_connect(form, None)
    assert set(missing.errors) == {"certificate", "ksc_user", "ksc_password"}
    assert "certificate too" in missing.errors["ksc_user"]
    with_file = forms.read_connect(form, identity.cert_path.read_bytes())
    assert set(with_file.errors) == {"ksc_user", "ksc_password"}

    account = dict(form, ksc_user="admin", ksc_password="pw-1234")
    good = forms.read_connect(account, identity.cert_path.read_bytes())
    assert good.ok and good.parsed.use_certificate
    assert forms.read_connect(account, None, has_certificate=True).ok
    bad = forms.read_connect(account, b"not a certificate")
    assert "That file is not a certificate" in bad.errors["certificate"]


def test_a_bad_certificate_is_named_as_chosen() -> None:
    """The error names the file the person chose, never a copy the agent keeps."""
    form = {
        "source": "ksc",
        "ksc_address": "10.0.0.5",
        "ksc_user": "admin",
        "ksc_password": "pw-1234",
        "use_certificate": "on",
    }
    bad = forms.read_connect(form, b"hello", certificate_name="kbh.cer")
    assert bad.errors["certificate"].startswith("The file kbh.cer is not a certificate")
    large = b"x" * (forms.CERTIFICATE_LIMIT + 1)
    big = forms.read_connect(form, large, certificate_name="kbh.cer")
    assert "kbh.cer is too large" in big.errors["certificate"]


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("proxy.example.com", True),
        ("proxy.example.com:3128", True),
        ("192.168.1.20", True),
        ("192.168.1.20:3128", True),
        ("http://192.168.1.20:3128", True),
        ("http://proxy.example.com", True),
        ("[::1]:3128", True),
        ("https://proxy.example.com:3128", False),
        ("proxy example", False),
        ("proxy.example.com:0", False),
    ],
)
def test_proxy_addresses_the_label_names(address: str, ok: bool) -> None:
    """The proxy box takes what its label says: a domain name or an IP address,
    with an optional port and an optional http://."""
    form = {
        "source": "ksc",
        "ksc_address": "10.0.0.5",
        "ksc_user": "admin",
        "ksc_password": "pw-1234",
        "use_proxy": "on",
        "proxy_address": address,
    }
    errors = forms.read_connect(form, None).errors
    assert ("proxy_address" not in errors) is ok, errors


def test_proxy_fields_when_ticked() -> None:
    form = {
        "source": "ksc",
        "ksc_address": "ksc.example.local:13299",
        "ksc_user": "admin",
        "ksc_password": "pw-1234",
        "use_proxy": "on",
        "proxy_user": "someone",
    }
    result = forms.read_connect(form, None)
    assert set(result.errors) == {"proxy_address", "proxy_password"}
    unticked = dict(form, use_proxy="")
    assert forms.read_connect(unticked, None).ok


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("10.0.0.5", True),
        ("ksc.example.local:13299", True),
        ("https://ksc.example.local/", True),
        ("https://127.0.0.1:43235/", True),
        # KSC's Open API is reached with https:// only: the hint says so.
        ("http://ksc.example.local", False),
        ("ftp://ksc.example.local", False),
        ("[::1]:13299", True),
        ("ksc example", False),
        ("ksc.example.local:99999", False),
        ("ksc.example.local:port", False),
        ("bad_name!", False),
    ],
)
def test_addresses(address: str, ok: bool) -> None:
    assert (forms.address_problem(address, "the address") is None) is ok


def test_saved_secrets_may_stay_blank() -> None:
    form = {"source": "kbh", "kbh_email": "a@b.example"}
    kept = frozenset({"kbh_password"})
    assert forms.read_connect(form, None, kept_secrets=kept).ok


def test_typed_values_come_back_but_secrets_do_not() -> None:
    form = {
        "source": "kbh",
        "kbh_email": "a@b.example",
        "kbh_password": "Secret-1",
        "csrf_token": "token",
    }
    values = forms.read_connect(form, None).values
    assert values["kbh_email"] == "a@b.example"
    assert "kbh_password" not in values and "csrf_token" not in values


def test_tigerpaw_blank_fields_each_get_an_error() -> None:
    result = forms.read_tigerpaw({"platform": "Tigerpaw"})
    assert set(result.errors) == {
        "name",
        "api_url",
        "soap_user",
        "soap_password",
        "public_key",
        "private_key",
    }
    wrong = forms.read_tigerpaw({"platform": "Other", "api_url": "ftp://x"})
    assert "platform" in wrong.errors and "https://" in wrong.errors["api_url"]


def test_tigerpaw_kept_secrets() -> None:
    form = {
        "platform": "Tigerpaw",
        "name": "  Integration   with Tigerpaw ",
        "api_url": "https://tigerpaw.example.com",
        "soap_user": "kaspersky",
        "public_key": "abc",
    }
    kept = frozenset({"tigerpaw_soap_password", "tigerpaw_private_key"})
    result = forms.read_tigerpaw(form, kept_secrets=kept)
    assert result.ok and result.parsed.name == "Integration with Tigerpaw"


def test_config_changes_are_checked_as_the_file_is() -> None:
    current = {
        "KESCloudServer": "production",
        "ServiceOrderSyncMinutes": "5",
        "LicenseSyncTime": "02:00",
        "WebPort": "47800",
        "LogLevel": "Info",
        "MaxLogFileKB": "1024",
    }
    good = forms.read_config(dict(current, LogLevel="Debug"), current)
    assert good.ok and good.parsed == {"LogLevel": "Debug"}
    bad = forms.read_config(dict(current, ServiceOrderSyncMinutes="0"), current)
    assert "ServiceOrderSyncMinutes must be" in bad.errors["ServiceOrderSyncMinutes"]


def test_choices_need_rep_and_statuses_when_a_row_is_on() -> None:
    form = {"event-critical-enabled": "on", "event-critical-lifetime": "3"}
    result = forms.read_choices(form, ["not_protected"], ["KES"], ["server"])
    assert set(result.errors) == {"rep", "new_status", "closed_status"}
    assert result.parsed.events["critical"].lifetime_days == 3

    form.update(
        {
            "rep": "1",
            "new_status": "New",
            "closed_status": "Closed",
            "item::KES": "KL-KESB-WS",
            "item::KES/server": "KL-KESB-SRV",
            "status-critical-not_protected-enabled": "on",
        }
    )
    result = forms.read_choices(form, ["not_protected"], ["KES"], ["server"])
    assert result.ok
    assert result.parsed.price_book_items == {
        "KES": "KL-KESB-WS",
        "KES/server": "KL-KESB-SRV",
    }
    assert result.parsed.device_statuses["critical:not_protected"].enabled
    assert not result.parsed.device_statuses["warning:not_protected"].enabled
    assert set(result.parsed.events) == set(SEVERITIES)


def test_lifetime_out_of_range_is_named() -> None:
    form = {"event-warning-lifetime": "0"}
    result = forms.read_choices(form, [], [], [])
    assert "event-warning-lifetime" in result.errors


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("https://tigerpaw.example.com", True),
        ("http://127.0.0.1:8080", True),
        ("tigerpaw.example.com", False),
        ("ftp://tigerpaw.example.com", False),
    ],
)
def test_tigerpaw_addresses_the_hint_names(address: str, ok: bool) -> None:
    """The Tigerpaw address takes https:// or http://, and its error says both."""
    errors = forms.read_tigerpaw({"platform": "Tigerpaw", "api_url": address}).errors
    assert ("api_url" not in errors) is ok, errors
    if not ok:
        assert (
            "with https:// (or http:// for a server on this network)"
            in (errors["api_url"])
        )
