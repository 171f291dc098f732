"""The Tigerpaw emulator's tsiWS ASMX service, driven by zeep from the served WSDL."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.transports import Transport

from agent.sandbox.certs import make_certificate
from agent.sandbox.tigerpaw import TigerpawEmulator
from tests.integration.tigerpaw_support import NAMES, emulator_fixture, reset_faults

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


tigerpaw = emulator_fixture(seed=5)


@pytest.fixture(autouse=True)
def no_faults(tigerpaw: TigerpawEmulator) -> Iterator[None]:
    """Each test ends without injected faults."""
    yield
    reset_faults(tigerpaw)


@pytest.fixture(scope="module")
def client(tigerpaw: TigerpawEmulator) -> zeep.Client:
    """A zeep client built from the WSDL the emulator serves."""
    return zeep.Client(f"{tigerpaw.asmx_url}?WSDL")


def auth(user: str, password: str) -> dict[str, Any]:
    """The AuthHeader SOAP header, as zeep takes it."""
    return {"AuthHeader": {"UserName": user, "Password": password}}


def post_get_accounts(tigerpaw: TigerpawEmulator, envelope: str) -> requests.Response:
    """Post a hand-written SOAP 1.1 GetAccounts envelope, as a raw client does."""
    return requests.post(
        tigerpaw.asmx_url,
        data=envelope,
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": '"http://www.tigerpawsoftware.com/GetAccounts"',
        },
        timeout=5,
    )


@pytest.fixture(scope="module")
def main_auth(tigerpaw: TigerpawEmulator) -> dict[str, Any]:
    """The AuthHeader of the main tsiWS user."""
    described = tigerpaw.describe()
    return auth(described["soap_user"], described["soap_password"])


def params(agreement: int, *charges: dict[str, Any]) -> str:
    """A Params string of the sandbox's model."""
    root = etree.Element("AdditionalCharges")
    etree.SubElement(root, "AgreementNumber").text = str(agreement)
    for charge in charges:
        element = etree.SubElement(root, "Charge")
        for name, value in charge.items():
            etree.SubElement(element, name).text = str(value)
    return etree.tostring(root, encoding="unicode")


def submit(client: zeep.Client, headers: dict[str, Any], text: str) -> etree._Element:
    """Call SubmitAgreementAdditionalCharges and parse its Result."""
    result = client.service.SubmitAgreementAdditionalCharges(
        Params=text, _soapheaders=headers
    )
    return etree.fromstring(result.encode("utf-8"))


def rest_charges(tigerpaw: TigerpawEmulator, agreement: int) -> list[dict[str, Any]]:
    """An agreement's additional charges read through signed REST."""
    keys = tigerpaw.describe()
    path = f"/api/agreements/{agreement}/additionalcharges"
    date = email.utils.format_datetime(dt.datetime.now(dt.UTC), True)
    message = f"get|{path}|{date}".lower().encode("utf-8")
    digest = hmac.new(keys["private_key"].encode(), message, hashlib.sha256).digest()
    token = f"{keys['public_key']}:{base64.b64encode(digest).decode()}"
    headers = {
        "Authorization": "TSI " + base64.b64encode(token.encode()).decode(),
        "Date": date,
    }
    reply = requests.get(tigerpaw.url + path, headers=headers, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()["AdditionalCharges"]


def agreement_of(tigerpaw: TigerpawEmulator, account: int) -> int:
    """The number of the account's Managed Security agreement."""
    agreements = requests.get(f"{tigerpaw.url}/_sandbox/state", timeout=5).json()
    return next(
        g["number"]
        for g in agreements["agreements"]
        if g["account"] == account and g["type"] == "Managed Security"
    )


# The WSDL and listing accounts.


def test_wsdl_loads_in_zeep(client: zeep.Client, tigerpaw: TigerpawEmulator) -> None:
    operations = {name for name, _proxy in client.service}
    assert {"GetAccounts", "SubmitAgreementAdditionalCharges"} <= set(operations)

    lower = requests.get(f"{tigerpaw.asmx_url}?wsdl", timeout=5)
    assert lower.status_code == 200 and b"wsdl:definitions" in lower.content
    page = requests.get(tigerpaw.asmx_url, timeout=5)
    assert "SubmitAgreementAdditionalCharges" in page.text


def test_get_accounts_shows_cross_references(client, main_auth) -> None:
    accounts = client.service.GetAccounts(_soapheaders=main_auth)
    assert [a.AccountName for a in accounts] == NAMES
    flags = [a.CrossReferenced for a in accounts]
    assert flags == [True] * (len(NAMES) - 2) + [False, False]
    assert accounts[0].ExternalId


def test_wsdl_over_https_points_at_https(tmp_path) -> None:
    identity = make_certificate(tmp_path, "tigerpaw")
    emulator = TigerpawEmulator(NAMES[:4], seed=2, tls=identity).start()
    try:
        session = requests.Session()
        # The environment's REQUESTS_CA_BUNDLE would override Session.verify.
        session.trust_env = False
        session.verify = str(identity.cert_path)
        secure = zeep.Client(
            f"{emulator.asmx_url}?wsdl", transport=Transport(session=session)
        )
        described = emulator.describe()
        headers = auth(described["soap_user"], described["soap_password"])
        assert len(secure.service.GetAccounts(_soapheaders=headers)) == 4
    finally:
        emulator.stop()


def test_soap_12_works_too(client, main_auth) -> None:
    soap12 = client.bind("tsiWS", "tsiWSSoap12")
    assert len(soap12.GetAccounts(_soapheaders=main_auth)) == len(NAMES)


# Faults for who is calling.


def test_wrong_password_is_a_fault(client, tigerpaw: TigerpawEmulator) -> None:
    with pytest.raises(Fault) as caught:
        client.service.GetAccounts(_soapheaders=auth("kaspersky", "wrong"))
    assert "Invalid user name or password" in caught.value.message
    assert caught.value.code == "soap:Client"

    # The same on the wire: HTTP 500 with a soap:Fault, as ASMX answers.
    envelope = (
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body>'
        '<GetAccounts xmlns="http://www.tigerpawsoftware.com"/>'
        "</soap:Body></soap:Envelope>"
    )
    reply = post_get_accounts(tigerpaw, envelope)
    assert reply.status_code == 500
    fault = etree.fromstring(reply.content).find(f".//{{{SOAP11}}}Fault")
    assert "AuthHeader" in fault.findtext("faultstring")


def test_auth_header_needs_the_trailing_slash(tigerpaw: TigerpawEmulator) -> None:
    described = tigerpaw.describe()
    envelope = (
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Header>'
        '<AuthHeader xmlns="http://www.tigerpawsoftware.com">'
        f"<UserName>{described['soap_user']}</UserName>"
        f"<Password>{described['soap_password']}</Password></AuthHeader>"
        "</soap:Header><soap:Body>"
        '<GetAccounts xmlns="http://www.tigerpawsoftware.com"/>'
        "</soap:Body></soap:Envelope>"
    )
    reply = post_get_accounts(tigerpaw, envelope)
    assert reply.status_code == 500
    assert b"trailing slash" in reply.content


def test_inactive_user_is_a_fault(client, tigerpaw: TigerpawEmulator) -> None:
    user = tigerpaw.describe()["test_users"]["soap_inactive"]
    with pytest.raises(Fault) as caught:
        client.service.GetAccounts(
            _soapheaders=auth(user["soap_user"], user["soap_password"])
        )
    assert "is not active" in caught.value.message


def test_user_without_list_right_cannot_list(client, tigerpaw: TigerpawEmulator):
    user = tigerpaw.describe()["test_users"]["soap_no_list_right"]
    headers = auth(user["soap_user"], user["soap_password"])
    with pytest.raises(Fault) as caught:
        client.service.GetAccounts(_soapheaders=headers)
    assert "may not list accounts" in caught.value.message

    # Billing does not need the right.
    agreement = agreement_of(tigerpaw, 1004)
    charge = {"ItemId": "KL-KSWS", "Quantity": 2}
    result = submit(client, headers, params(agreement, charge))
    assert result.findtext("Success") == "true"


# Additional charges.


def test_charges_are_set_not_added(client, main_auth, tigerpaw) -> None:
    agreement = agreement_of(tigerpaw, 1001)
    workstations = {"Action": "Create", "ItemId": "KL-KESB-WS", "Quantity": 12}
    servers = {"ItemId": "KL-KESB-SRV", "Quantity": 3, "Description": "Servers"}
    created = submit(client, main_auth, params(agreement, workstations, servers))
    assert created.findtext("Success") == "true"
    lines = created.findall("Charge")
    assert [line.findtext("Status") for line in lines] == ["Created", "Created"]
    ws_id, srv_id = (int(line.findtext("DetailId")) for line in lines)
    assert srv_id > ws_id

    by_id = {c["DetailId"]: c for c in rest_charges(tigerpaw, agreement)}
    assert (
        by_id[ws_id]["Quantity"] == 12 and by_id[ws_id]["SpecialItemId"] == "KL-KESB-WS"
    )
    assert by_id[srv_id]["ItemDescription"] == "Servers"

    for _ in range(2):
        update = {"DetailId": ws_id, "Quantity": 15}
        assert (
            submit(client, main_auth, params(agreement, update)).findtext("Success")
            == "true"
        )
    charges = rest_charges(tigerpaw, agreement)
    assert [c["Quantity"] for c in charges if c["DetailId"] == ws_id] == [15]

    again = submit(client, main_auth, params(agreement, workstations))
    assert again.findtext("Success") == "false"
    assert again.find("Charge").findtext("DetailId") == str(ws_id)
    assert "already has" in again.find("Charge").findtext("Message")
    assert len(rest_charges(tigerpaw, agreement)) == len(charges)

    delete = {"Action": "Delete", "DetailId": srv_id}
    deleted = submit(client, main_auth, params(agreement, delete))
    assert deleted.find("Charge").findtext("Status") == "Deleted"
    remaining = [c["DetailId"] for c in rest_charges(tigerpaw, agreement)]
    assert srv_id not in remaining and ws_id in remaining


def test_a_wrong_line_changes_nothing(client, main_auth, tigerpaw) -> None:
    agreement = agreement_of(tigerpaw, 1002)
    before = rest_charges(tigerpaw, agreement)
    good = {"ItemId": "KL-KSO365", "Quantity": 40}
    unknown = {"ItemId": "NO-SUCH-ITEM", "Quantity": 1}
    result = submit(client, main_auth, params(agreement, good, unknown))
    assert result.findtext("Success") == "false"
    statuses = [line.findtext("Status") for line in result.findall("Charge")]
    assert statuses == ["NotProcessed", "Error"]
    assert rest_charges(tigerpaw, agreement) == before


def test_account_not_cross_referenced_is_refused(client, main_auth, tigerpaw) -> None:
    last_account = 1000 + len(NAMES)
    agreement = agreement_of(tigerpaw, last_account)
    with pytest.raises(Fault) as caught:
        submit(
            client, main_auth, params(agreement, {"ItemId": "KL-KSWS", "Quantity": 1})
        )
    assert "not cross-referenced" in caught.value.message
    assert rest_charges(tigerpaw, agreement) == []

    # Once someone cross-references the account, billing goes through.
    requests.post(
        f"{tigerpaw.url}/_sandbox/events",
        json={"cross_reference": [last_account]},
        timeout=5,
    )
    result = submit(
        client, main_auth, params(agreement, {"ItemId": "KL-KSWS", "Quantity": 1})
    )
    assert result.findtext("Success") == "true"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("<AdditionalCharges><AgreementNumber>5001", "not well-formed"),
        ("<Charges/>", "<AdditionalCharges>"),
        ("", "Params is empty"),
        (
            "<AdditionalCharges><AgreementNumber>5001</AgreementNumber><Charge>"
            "<ItemId>KL-KSWS</ItemId><Quantity>many</Quantity></Charge>"
            "</AdditionalCharges>",
            "Quantity 'many'",
        ),
        (
            "<AdditionalCharges><AgreementNumber>5001</AgreementNumber><Charge>"
            "<Qty>1</Qty></Charge></AdditionalCharges>",
            "<Qty>",
        ),
        (
            "<AdditionalCharges><AgreementNumber>98765</AgreementNumber>"
            "<Charge><DetailId>1</DetailId></Charge></AdditionalCharges>",
            "does not exist",
        ),
    ],
)
def test_bad_params_fault_names_the_problem(client, main_auth, text, named) -> None:
    with pytest.raises(Fault) as caught:
        submit(client, main_auth, text)
    assert named in caught.value.message


def test_ended_agreement_is_refused(client, main_auth, tigerpaw) -> None:
    state = requests.get(f"{tigerpaw.url}/_sandbox/state", timeout=5).json()
    ended = next(g["number"] for g in state["agreements"] if not g["active"])
    with pytest.raises(Fault) as caught:
        submit(client, main_auth, params(ended, {"ItemId": "KL-KSWS", "Quantity": 1}))
    assert "ended on" in caught.value.message


# Injected faults look like IIS.


def test_injected_faults_on_the_asmx_path(client, main_auth, tigerpaw) -> None:
    faults = f"{tigerpaw.url}/_sandbox/faults"
    prefix = "/api/rmm/"
    requests.post(
        faults,
        json={"next_errors": 1, "error_status": 503, "path_prefix": prefix},
        timeout=5,
    )
    reply = requests.post(
        tigerpaw.asmx_url, data=b"<x/>", headers={"Content-Type": "text/xml"}, timeout=5
    )
    assert reply.status_code == 503
    assert reply.headers["Content-Type"].startswith("text/html")

    requests.post(
        faults,
        json={"next_errors": 1, "error_status": 500, "path_prefix": prefix},
        timeout=5,
    )
    with pytest.raises(Fault) as caught:
        client.service.GetAccounts(_soapheaders=main_auth)
    assert "Server was unable to process request" in caught.value.message
    assert len(client.service.GetAccounts(_soapheaders=main_auth)) == len(NAMES)
