"""Contract tests of the Tigerpaw client on a failing server.

Hanging servers, IIS error pages on the ASMX path, rate limits, server errors that
are retried only when a call is safe to repeat, and HTTPS with a self-signed
certificate for the WSDL and the calls alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from agent.errors import (
    CertificateNotTrusted,
    NothingListening,
    ProtocolError,
    RateLimited,
    ServerError,
    TimedOut,
)
from agent.sandbox.certs import make_certificate
from agent.sandbox.tigerpaw import TigerpawEmulator
from tests.integration.emulator_support import fail_next
from tests.integration.tigerpaw_support import (
    NAMES,
    check_error,
    emulator_fixture,
    make_client,
    reset_faults,
    state,
)

ASMX = "/api/rmm/"
WSDL_CALL = "GET /api/rmm/tsiWS.asmx"
SOAP_CALL = "POST /api/rmm/tsiWS.asmx"

tigerpaw = emulator_fixture(seed=13)


@pytest.fixture(autouse=True)
def no_faults(tigerpaw: TigerpawEmulator) -> Iterator[None]:
    """Faults and call counts start empty; hanging requests are let go after."""
    reset_faults(tigerpaw)
    yield
    reset_faults(tigerpaw)


def address(tigerpaw: TigerpawEmulator) -> str:
    """``127.0.0.1:port`` as messages write it."""
    return f"127.0.0.1:{tigerpaw.port}"


# A server that never answers.


def test_a_hanging_wsdl_load_times_out(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps, timeout=(1.0, 0.3), attempts=2)
    tigerpaw.faults.path_prefix = ASMX
    tigerpaw.faults.hang = True

    started = time.monotonic()
    with pytest.raises(TimedOut) as caught:
        client.list_accounts()

    assert time.monotonic() - started < 3
    check_error(caught.value, TimedOut, "api_url", address(tigerpaw), "in time")
    assert tigerpaw.calls[WSDL_CALL] == 2 and len(sleeps) == 1


def test_a_hanging_operation_times_out_too(tigerpaw) -> None:
    client = make_client(tigerpaw, timeout=(1.0, 0.3), attempts=1)
    client.list_accounts()
    tigerpaw.faults.path_prefix = ASMX
    tigerpaw.faults.hang = True

    started = time.monotonic()
    with pytest.raises(TimedOut) as caught:
        client.list_accounts()

    assert time.monotonic() - started < 2
    check_error(caught.value, TimedOut, "api_url", address(tigerpaw))


def test_a_hanging_rest_call_times_out(tigerpaw) -> None:
    client = make_client(tigerpaw, timeout=(1.0, 0.3), attempts=1)
    tigerpaw.faults.path_prefix = "/api/accounts"
    tigerpaw.faults.hang = True

    with pytest.raises(TimedOut) as caught:
        client.get_account(1001)

    check_error(caught.value, TimedOut, "api_url", address(tigerpaw))


def test_nothing_listening(tigerpaw) -> None:
    client = make_client(tigerpaw, api_url="http://127.0.0.1:9", attempts=1)

    with pytest.raises(NothingListening) as caught:
        client.list_accounts()

    check_error(caught.value, NothingListening, "api_url", "127.0.0.1:9")


# IIS error pages on the ASMX path.


def test_html_503_from_the_asmx_is_a_retried_server_error(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps, attempts=3)
    fail_next(tigerpaw, ASMX, 503, 10)

    with pytest.raises(ServerError) as caught:
        client.list_accounts()

    check_error(caught.value, ServerError, None, f"HTTP 503 from {address(tigerpaw)}")
    assert "XML" not in str(caught.value) and "parse" not in str(caught.value)
    assert caught.value.status == 503 and caught.value.transient
    assert len(sleeps) == 2 and tigerpaw.calls[WSDL_CALL] == 3


def test_html_503_then_recovery(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps)
    client.list_accounts()
    fail_next(tigerpaw, ASMX, 503, 2)

    accounts = client.list_accounts()

    assert len(accounts) == len(NAMES) and len(sleeps) == 2


def test_html_404_from_the_asmx_says_the_address_is_wrong(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps)
    fail_next(tigerpaw, ASMX, 404, 5)

    with pytest.raises(ProtocolError) as caught:
        client.list_accounts()

    check_error(
        caught.value,
        ProtocolError,
        "api_url",
        f"HTTP 404 from {address(tigerpaw)}",
        "The address is wrong",
    )
    assert sleeps == [] and tigerpaw.faults.next_errors == 4


def test_html_404_for_an_operation_is_not_retried(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps)
    client.list_accounts()
    fail_next(tigerpaw, ASMX, 404, 5)

    with pytest.raises(ProtocolError) as caught:
        client.list_accounts()

    check_error(caught.value, ProtocolError, "api_url", "The address is wrong")
    assert sleeps == [] and tigerpaw.calls[SOAP_CALL] == 2


def test_a_wrong_explicit_asmx_address_names_that_field(tigerpaw) -> None:
    client = make_client(tigerpaw, asmx_url=f"{tigerpaw.url}/tsi/tsiWS.asmx")

    with pytest.raises(ProtocolError) as caught:
        client.list_accounts()

    check_error(caught.value, ProtocolError, "asmx_url", "tsiWS address")


def test_a_soap_server_fault_is_a_server_error_with_its_message(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps, attempts=2)
    client.list_accounts()
    fail_next(tigerpaw, ASMX, 500, 5)

    with pytest.raises(ServerError) as caught:
        client.list_accounts()

    check_error(
        caught.value,
        ServerError,
        None,
        f"HTTP 500 from {address(tigerpaw)}",
        "did not answer in time",
    )
    assert len(sleeps) == 1


def test_creating_a_charge_is_not_repeated_after_a_server_error(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps)
    agreement = next(
        g["number"] for g in state(tigerpaw)["agreements"] if g["account"] == 1003
    )
    client.list_accounts()
    fail_next(tigerpaw, ASMX, 503, 1)

    with pytest.raises(ServerError):
        client.set_charge_quantity(agreement, "KL-KESB-WS", 9)

    assert sleeps == [] and tigerpaw.calls[SOAP_CALL] == 2
    # The caller's next attempt finds no line yet and creates it once.
    assert client.set_charge_quantity(agreement, "KL-KESB-WS", 9).action == "created"


# Rate limits and REST server errors.


def test_rest_429_honours_retry_after(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps, attempts=3)
    tigerpaw.faults.path_prefix = "/api/accounts"
    tigerpaw.faults.rate_limit_rate = 1.0
    tigerpaw.faults.retry_after = 2

    with pytest.raises(RateLimited) as caught:
        client.get_account(1001)

    check_error(caught.value, RateLimited, None, "slow down")
    assert caught.value.retry_after == 2.0 and sleeps == [2.0, 2.0]


def test_asmx_429_honours_retry_after(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps, attempts=2)
    tigerpaw.faults.path_prefix = ASMX
    tigerpaw.faults.rate_limit_rate = 1.0
    tigerpaw.faults.retry_after = 3

    with pytest.raises(RateLimited) as caught:
        client.list_accounts()

    assert caught.value.retry_after == 3.0 and sleeps == [3.0]


def test_rest_5xx_is_retried_for_reads_and_puts(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps)
    number = client.create_service_order(1002, "Retry check")
    fail_next(tigerpaw, "/api/serviceorders", 503, 2)

    assert client.get_service_order(number).number == number
    tigerpaw.faults.next_errors = 1
    assert client.update_service_order(number, status="Scheduled").status == (
        "Scheduled"
    )
    assert len(sleeps) == 3


def test_rest_creates_are_never_repeated(tigerpaw) -> None:
    sleeps: list[float] = []
    client = make_client(tigerpaw, sleeps=sleeps)
    before = len(state(tigerpaw)["service_orders"])
    fail_next(tigerpaw, "/api/ServiceOrders", 502, 1)

    with pytest.raises(ServerError) as caught:
        client.create_service_order(1002, "Sent once")

    check_error(
        caught.value,
        ServerError,
        None,
        f"HTTP 502 from {address(tigerpaw)}",
        "The Tigerpaw API failed",
    )
    assert sleeps == [] and len(state(tigerpaw)["service_orders"]) == before


# HTTPS with a self-signed certificate.


@pytest.fixture(scope="module")
def secure(tmp_path_factory) -> Iterator[tuple[TigerpawEmulator, str]]:
    """An emulator over HTTPS, and the path of its certificate."""
    identity = make_certificate(tmp_path_factory.mktemp("tls"), "tigerpaw")
    emulator = TigerpawEmulator(NAMES, seed=14, tls=identity).start()
    yield emulator, str(identity.cert_path)
    emulator.stop()


def test_a_self_signed_wsdl_is_not_trusted_silently(secure, monkeypatch) -> None:
    emulator, _ = secure
    # The machine's CA bundle from the environment must not change the outcome.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = make_client(emulator, attempts=1)

    with pytest.raises(CertificateNotTrusted) as caught:
        client.list_accounts()

    check_error(caught.value, CertificateNotTrusted, "certificate", "not trusted")


def test_the_wsdl_and_calls_use_the_chosen_certificate(secure, monkeypatch) -> None:
    emulator, cert_path = secure
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = make_client(emulator, verify=cert_path)

    found = client.check()
    client.set_charge_quantity(
        next(g.number for g in emulator.world.agreements if g.account_number == 1001),
        "KL-KESB-WS",
        4,
    )

    assert found.account_count == len(NAMES)
    assert client.asmx_url.startswith("https://")
    assert emulator.calls["GET /api/rmm/tsiWS.asmx"] == 1
