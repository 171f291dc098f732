"""The KSC paths of the setup in Debian's chromium: by password, then by certificate
through the proxy, from the first page to a working dashboard.

One sandboxed agent and one browser (tests/e2e/conftest.py) serve the module; the
tests run in order.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.setup_helpers import (
    error_of,
    fill_tigerpaw,
    integrations,
    proceed,
    sandbox_state,
    shot,
    use_every_suggestion,
    value_of,
    wait_for_agreements,
)

pytestmark = pytest.mark.browser


def ksc_address(sandbox) -> str:
    """The sandbox KSC's address as a technician types it: host:port."""
    return sandbox["ksc"]["url"].split("://")[1]


def certificate_fingerprint(path: str) -> str:
    """SHA-256 of a PEM certificate file, as AB:CD:..."""
    with open(path, "rb") as stream:
        der = x509.load_pem_x509_certificate(stream.read()).public_bytes(Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def pick_agreements(page) -> None:
    """Choose the Managed Security agreement where a row has none chosen."""
    wait_for_agreements(page)
    for select in page.locator("select[id^=agreement-]").all():
        if not select.input_value():
            option = select.locator("option", has_text="Managed Security").first
            select.select_option(option.get_attribute("value"))


def test_blank_fields_and_hidden_sections(page, artifacts_dir) -> None:
    assert page.url.endswith("/setup/connect")
    assert page.is_checked("#source-ksc")
    assert not page.is_checked("#use_proxy"), "Use proxy server is cleared by default"
    assert not page.locator("#proxy-fields").is_visible()
    shot(page, artifacts_dir, "1-connect-ksc")

    proceed(page)
    assert "Enter the address" in error_of(page, "ksc_address")
    assert "user name" in error_of(page, "ksc_user")
    assert "password" in error_of(page, "ksc_password")
    shot(page, artifacts_dir, "2-ksc-blank-errors")

    page.check("#use_proxy")
    assert page.locator("#proxy-fields").is_visible()
    page.get_by_text("Select Kaspersky Security Center Administration Server").click()
    page.check("#use_certificate")
    assert page.locator("#certificate").is_visible()
    page.fill("#ksc_address", "ksc.example.local")
    proceed(page)
    assert "domain name or IP address" in error_of(page, "proxy_address")
    assert "klserver.cer" in error_of(page, "certificate")
    assert "certificate too" in error_of(page, "ksc_user"), "no certificate login"
    assert value_of(page, "ksc_address") == "ksc.example.local"
    shot(page, artifacts_dir, "3-proxy-and-certificate-blank-errors")

    page.set_input_files(
        "#certificate",
        files=[{"name": "klserver.cer", "mimeType": "text/plain", "buffer": b"hello"}],
    )
    page.fill("#proxy_address", "proxy.example.local:3128")
    proceed(page)
    assert "klserver.cer is not a certificate" in error_of(page, "certificate")
    page.uncheck("#use_proxy")
    page.uncheck("#use_certificate")


def test_unreachable_address_is_named(page, artifacts_dir) -> None:
    page.fill("#ksc_address", "127.0.0.1:1")
    page.fill("#ksc_user", "someone")
    page.fill("#ksc_password", "Some-password-1")
    proceed(page)
    # The KSC client's words for a refused connection: it names the address.
    assert "127.0.0.1:1" in error_of(page, "ksc_address")
    assert value_of(page, "ksc_user") == "someone"
    assert value_of(page, "ksc_password") == ""
    shot(page, artifacts_dir, "4-nothing-listening")


def test_unknown_certificate_can_be_refused(page, sandbox, artifacts_dir) -> None:
    page.fill("#ksc_address", ksc_address(sandbox))
    page.fill("#ksc_user", sandbox["ksc"]["user"])
    page.fill("#ksc_password", "Wrong-password-1")
    proceed(page)

    assert page.url.endswith("/setup/certificate")
    shown = page.locator("#fingerprint").inner_text().strip()
    assert shown == certificate_fingerprint(sandbox["ksc"]["cert"])
    shot(page, artifacts_dir, "5-certificate-fingerprint")
    with page.expect_navigation():
        page.get_by_role("button", name="Refuse").click()
    assert page.url.endswith("/setup/connect")
    assert "refused: nothing was trusted" in page.inner_text("main")


def test_trusted_certificate_then_wrong_password(page, sandbox, artifacts_dir) -> None:
    page.fill("#ksc_password", "Wrong-password-1")
    proceed(page)
    assert page.url.endswith("/setup/certificate")
    with page.expect_navigation():
        page.get_by_role("button", name="Trust this certificate").click()

    message = error_of(page, "ksc_password") or error_of(page, "ksc_user")
    assert "password" in message.lower(), page.inner_text("main")
    assert "Wrong-password-1" not in page.content()
    shot(page, artifacts_dir, "6-wrong-password")


def test_connect_with_password_and_create(page, agent, sandbox, artifacts_dir) -> None:
    page.fill("#ksc_password", sandbox["ksc"]["password"])
    proceed(page)
    assert page.url.endswith("/setup/integration"), page.inner_text("main")
    assert page.locator(".integration-id").count() == 0, "only Business Hub shows it"
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    assert "/add" in page.url
    saved = integrations(agent)
    assert len(saved) == 1 and saved[0]["source"] == "ksc"
    shot(page, artifacts_dir, "7-add-virtual-servers")


def test_add_servers_and_map(page, agent, artifacts_dir) -> None:
    names = page.locator("#tenant-list label").all_inner_texts()
    assert sorted(names) == [
        "Contoso Dental",
        "Fabrikam Dental",
        "Litware Dental",
        "Northwind Dental",
        "Tailspin Dental",
    ]
    for name in ("Contoso Dental", "Northwind Dental", "Fabrikam Dental"):
        page.get_by_label(name).check()
    proceed(page)

    assert use_every_suggestion(page) == 3
    inputs = page.locator("input[data-agreement]")
    inputs.nth(2).fill(inputs.nth(0).input_value())
    inputs.nth(2).dispatch_event("change")
    pick_agreements(page)
    proceed(page)
    assert "each Tigerpaw account takes one virtual server" in page.inner_text("main")
    shot(page, artifacts_dir, "8-one-to-one")

    page.goto(page.url.split("?")[0])
    use_every_suggestion(page)
    pick_agreements(page)
    proceed(page)
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    tenants = integrations(agent)[0]["tenants"]
    assert sorted(t["account"]["number"] for t in tenants) == [1001, 1002, 1003]
    shot(page, artifacts_dir, "9-dashboard")


def test_certificate_and_proxy(page, agent, sandbox, artifacts_dir) -> None:
    page.get_by_role("link", name="New integration").click()
    page.fill("#ksc_address", ksc_address(sandbox))
    page.fill("#ksc_user", sandbox["ksc"]["user"])
    page.fill("#ksc_password", sandbox["ksc"]["password"])
    page.get_by_text("Select Kaspersky Security Center Administration Server").click()
    page.check("#use_certificate")
    page.set_input_files("#certificate", sandbox["ksc"]["cert"])
    page.check("#use_proxy")
    page.fill("#proxy_address", sandbox["proxy"]["url"].split("://")[1])
    page.fill("#proxy_user", sandbox["proxy"]["user"])
    page.fill("#proxy_password", "Wrong-proxy-1")
    shot(page, artifacts_dir, "10-certificate-and-proxy")
    proceed(page)

    message = error_of(page, "proxy_password") or error_of(page, "proxy_user")
    assert "proxy" in message.lower(), page.inner_text("main")
    assert page.is_checked("#use_certificate") and page.is_checked("#use_proxy")
    assert "already chosen" in page.inner_text("#certificate-box")
    shot(page, artifacts_dir, "11-proxy-refused")

    before = sandbox_state(sandbox["proxy"]["url"])["tunnels_opened"]
    page.fill("#ksc_password", sandbox["ksc"]["password"])
    page.fill("#proxy_password", sandbox["proxy"]["password"])
    proceed(page)
    assert page.url.endswith("/setup/integration"), page.inner_text("main")
    assert sandbox_state(sandbox["proxy"]["url"])["tunnels_opened"] > before

    page.fill("#name", "KSC through the proxy")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    listed = sorted(page.locator("#tenant-list label").all_inner_texts())
    assert listed == ["Litware Dental", "Tailspin Dental"], "taken servers are hidden"
    assert "Not listed: 3 held by another integration" in page.inner_text("main")
    shot(page, artifacts_dir, "12-held-elsewhere-hidden")

    page.check("#select-all")
    proceed(page)
    offered = page.eval_on_selector_all(
        "#accounts option", "options => options.map(o => o.value)"
    )
    assert "Contoso Dental (1001)" not in offered, "a mapped account is not offered"
    use_every_suggestion(page)
    pick_agreements(page)
    proceed(page)
    second = next(
        i for i in integrations(agent) if i["name"] == "KSC through the proxy"
    )
    assert sorted(t["name"] for t in second["tenants"]) == [
        "Litware Dental",
        "Tailspin Dental",
    ]
    assert all(t["account"] for t in second["tenants"])
    shot(page, artifacts_dir, "13-dashboard-two-integrations")


def test_edit_connection_rechecks_before_saving(page, agent, artifacts_dir) -> None:
    page.get_by_role("link", name="KSC through the proxy").click()
    assert "Saved" in page.inner_text("main")
    page.get_by_role("link", name="Edit connection").click()
    assert value_of(page, "ksc_password") == ""
    assert "is saved" in page.inner_text("main")
    page.fill("#ksc_password", "Wrong-password-2")
    proceed(page)
    assert (
        "password"
        in (error_of(page, "ksc_password") + error_of(page, "ksc_user")).lower()
    )
    shot(page, artifacts_dir, "14-edit-connection-refused")

    page.fill("#ksc_password", "")
    proceed(page)
    assert "checked and saved" in page.inner_text("main")
