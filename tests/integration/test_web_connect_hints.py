"""The Connect and Tigerpaw pages: each hint says what its field accepts, and each
error is written once, beside its field, with one short summary linking to it."""

from __future__ import annotations

from lxml import html as lxml_html

from tests.integration.test_web_guesses_without_agreement import HOST, Setup, setup

__all__ = ["setup"]

KSC_FIELDS = {
    "source": "ksc",
    "ksc_user": "admin",
    "ksc_password": "Some-password-1",
}


def words(element: lxml_html.HtmlElement) -> str:
    """An element's text with its white space folded."""
    return " ".join(element.text_content().split())


def assert_said_once(page: str, field: str) -> str:
    """The field's error, checked to be written once, with a summary linking to the
    field that does not repeat it."""
    tree = lxml_html.fromstring(page)
    said = words(tree.get_element_by_id(f"{field}-error"))
    assert said
    assert " ".join(tree.text_content().split()).count(said) == 1, said
    summary = tree.get_element_by_id("error-summary")
    assert summary.xpath(f".//a[@href='#{field}']"), words(summary)
    assert said not in words(summary)
    assert len(tree.xpath("//*[contains(@class, 'banner') and @role='alert']")) == 1
    return said


def test_ksc_address_hint_and_errors_agree(setup: Setup) -> None:
    page = setup.client.get("/setup/connect", headers=HOST).get_data(as_text=True)
    tree = lxml_html.fromstring(page)
    hint = words(tree.get_element_by_id("ksc_address-hint"))
    assert "https://" in hint and ":port" in hint
    proxy = words(tree.get_element_by_id("proxy_address-hint"))
    assert "http://" in proxy and "not https://" in proxy

    # What the hint allows passes the form (it fails later, only to connect).
    for address, accepted in (
        ("https://127.0.0.1:43235/", True),
        ("http://127.0.0.1:43235", False),
    ):
        reply = setup.post("/setup/connect", {**KSC_FIELDS, "ksc_address": address})
        text = reply.get_data(as_text=True)
        error = lxml_html.fromstring(text).xpath("//*[@id='ksc_address-error']")
        refused = bool(error) and "scheme" in words(error[0])
        assert refused is not accepted, (address, text[:3000])
    said = assert_said_once(text, "ksc_address")
    assert "https://" in said


def test_tigerpaw_address_error_says_what_is_accepted(setup: Setup) -> None:
    path = f"/integrations/{setup.integration}/tigerpaw"
    page = setup.client.get(path, headers=HOST).get_data(as_text=True)
    hint = words(lxml_html.fromstring(page).get_element_by_id("api_url-hint"))
    assert "https:// (or http:// for a server on this network)" in hint

    form = {
        "platform": "Tigerpaw",
        "name": "Tigerpaw",
        "api_url": "tigerpaw.example.com",
        "soap_user": "kaspersky",
        "soap_password": "pw",
        "public_key": "key",
        "private_key": "key",
    }
    reply = setup.post(path, form)
    assert reply.status_code == 400
    said = assert_said_once(reply.get_data(as_text=True), "api_url")
    assert "with https:// (or http:// for a server on this network)" in said

    # A remote error about a field: beside it and in the summary by name, once.
    reply = setup.post(path, {**form, "api_url": "http://127.0.0.1:9"})
    assert reply.status_code == 400
    text = reply.get_data(as_text=True)
    if 'id="api_url-error"' in text:
        assert_said_once(text, "api_url")
    else:
        tree = lxml_html.fromstring(text)
        assert len(tree.xpath("//*[contains(@class, 'banner') and @role='alert']")) == 1
