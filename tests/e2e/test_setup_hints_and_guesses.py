"""What a technician's trial of the setup pages found, in Debian's chromium: the
Connect page's words about the certificate and the proxy agree with what the agent
does, a wrong certificate file is named as chosen, and a best guess on the mapping
page never ticks billing for an account without an agreement.

One sandboxed agent and one browser (tests/e2e/conftest.py) serve the module; the
tests run in order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.setup_helpers import (
    SIZES,
    assert_fits_and_labelled,
    error_of,
    fill_tigerpaw,
    proceed,
    shot,
    wait_for_agreements,
)

pytestmark = pytest.mark.browser

#: Words that would say a certificate stands in for the KSC account.
CLAIMS_A_CERTIFICATE_LOGIN = re.compile(
    r"not needed when you use a certificate|instead of (a|the) (user|password)|"
    r"certificate replaces",
    re.IGNORECASE,
)


def ksc_address(sandbox: dict[str, Any]) -> str:
    """The sandbox KSC's address as a technician types it: host:port."""
    return str(sandbox["ksc"]["url"]).split("://")[1]


def open_certificate_and_proxy(page: Any) -> None:
    """Show the certificate and proxy sections of the Connect page."""
    page.check("#source-ksc")
    details = page.locator("details.certificate")
    if details.get_attribute("open") is None:
        page.get_by_text("Select Kaspersky Security Center Administration").click()
    page.check("#use_certificate")
    page.check("#use_proxy")


def test_connect_page_words_agree_with_the_login(page, artifacts_dir) -> None:
    open_certificate_and_proxy(page)
    text = page.inner_text("form")
    assert not CLAIMS_A_CERTIFICATE_LOGIN.search(text), text
    assert "certificate too" in page.inner_text("#ksc_user-hint")
    assert "does not replace the user name" in page.inner_text("#certificate-hint")

    proceed(page)
    assert "certificate too" in error_of(page, "ksc_user")
    assert "password" in error_of(page, "ksc_password")
    assert "klserver.cer" in error_of(page, "certificate")
    assert not CLAIMS_A_CERTIFICATE_LOGIN.search(page.inner_text("main"))


def test_proxy_label_says_what_is_accepted(page, artifacts_dir) -> None:
    label = page.inner_text("label[for=proxy_address]")
    hint = page.inner_text("#proxy_address-hint")
    assert "full domain name" not in label
    assert "domain name or IP address" in label
    assert "http://" in hint and ":port" in hint
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        assert_fits_and_labelled(page, "Connect (certificate, proxy)", width, height)
        shot(page, artifacts_dir, f"connect-hints-{width}x{height}")
    page.set_viewport_size({"width": 1280, "height": 800})


def test_no_business_hub_note_in_the_sandbox(page) -> None:
    # The sandbox registers its own Business Hub, so nothing is said there.
    page.check("#source-kbh")
    assert page.locator("#kbh-unknown").count() == 0
    page.check("#source-ksc")


def test_wrong_certificate_file_is_named_as_chosen(page, sandbox, artifacts_dir):
    kbh_cert = Path(sandbox["kbh"]["production"]["cert"]).read_bytes()
    page.fill("#ksc_address", ksc_address(sandbox))
    page.fill("#ksc_user", sandbox["ksc"]["user"])
    page.fill("#ksc_password", sandbox["ksc"]["password"])
    page.uncheck("#use_proxy")
    page.set_input_files(
        "#certificate",
        files=[
            {
                "name": "kbh.cer",
                "mimeType": "application/x-x509-ca-cert",
                "buffer": kbh_cert,
            }
        ],
    )
    proceed(page)

    # The field's error and the banner name kbh.cer, not the agent's own copy
    # (data/certificates/<draft id>.cer).
    said = error_of(page, "certificate") + page.inner_text(".banner.error >> nth=0")
    assert "than the one in kbh.cer" in said, said
    assert "kbh.cer is already chosen" in page.inner_text("#certificate-hint")
    assert "certificates" not in said and ".cer:" not in said.replace("kbh.cer:", "")
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", said), said
    shot(page, artifacts_dir, "wrong-certificate")
    page.uncheck("#use_certificate")


def guess_rows(page: Any) -> dict[str, str]:
    """The rows offering a best guess: tenant id to the account it fills."""
    rows = {}
    for button in page.locator("button[data-fill]").all():
        row = str(button.get_attribute("data-fill")).removeprefix("#account-")
        rows[row] = str(button.get_attribute("data-value"))
    return rows


def test_use_button_keeps_billing_off_without_agreement(
    page, sandbox, artifacts_dir
) -> None:
    # Connect by password (trusting the sandbox's certificate), create, add.
    page.fill("#ksc_password", sandbox["ksc"]["password"])
    proceed(page)
    if page.url.endswith("/setup/certificate"):
        with page.expect_navigation():
            page.get_by_role("button", name="Trust this certificate").click()
    assert page.url.endswith("/setup/integration"), page.inner_text("main")
    fill_tigerpaw(page, sandbox["tigerpaw"])
    proceed(page)
    for label in page.locator("#tenant-list label").all()[:3]:
        label.click()
    proceed(page)

    rows = guess_rows(page)
    assert len(rows) == 3
    lacking_row, lacking_label = next(iter(rows.items()))
    lacking = re.search(r"\((\d+)\)$", lacking_label).group(1)

    def no_agreements(route: Any) -> None:
        """Tigerpaw answers that this one account has no agreement."""
        route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"agreements": []}),
        )

    page.route(re.compile(rf"/agreements\?account={lacking}$"), no_agreements)
    assert page.is_checked(f"#billing-{lacking_row}")
    for button in page.locator("button[data-fill]").all():
        button.click()
    wait_for_agreements(page)

    note = page.locator(f"#no-agreement-{lacking_row}")
    note.wait_for()
    assert note.inner_text() == (
        "No agreement in Tigerpaw: billing off until one is added"
    )
    assert not page.is_checked(f"#billing-{lacking_row}")
    described = page.get_attribute(f"#billing-{lacking_row}", "aria-describedby")
    assert described == f"no-agreement-{lacking_row}"
    others = [row for row in rows if row != lacking_row]
    assert all(page.is_checked(f"#billing-{row}") for row in others)
    assert all(page.locator(f"#no-agreement-{row}").count() == 0 for row in others)

    # Each other row's running agreement is read whole, its number and name.
    for row in others:
        select = page.locator(f"#agreement-{row}")
        chosen = select.locator("option:checked").inner_text()
        assert re.search(r"\D \d{4}", chosen), chosen
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            cut = select.evaluate(
                """s => { const c = document.createElement('canvas').getContext('2d');
                    c.font = getComputedStyle(s).font;
                    return c.measureText(s.options[s.selectedIndex].text).width
                      > s.clientWidth; }"""
            )
            assert not cut, f"{chosen!r} is cut at {width}x{height}"
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        shot(page, artifacts_dir, f"mapping-no-agreement-{width}x{height}")
    page.set_viewport_size({"width": 1280, "height": 800})

    # The row saves as shown: billing off, no agreement asked for.
    with page.expect_navigation():
        page.get_by_role("button", name="Proceed").click()
    assert page.get_by_role("heading", name="Dashboard").is_visible(), page.inner_text(
        "main"
    )
    page.unroute(re.compile(rf"/agreements\?account={lacking}$"))
