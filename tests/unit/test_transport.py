"""The shared HTTP transport: retries, Retry-After and errors in words."""

from __future__ import annotations

import socket
import threading

import pytest

from agent.errors import (
    AddressNotFound,
    CertificateNameMismatch,
    CertificateNotTrusted,
    ConnectError,
    NothingListening,
    RateLimited,
    ServerError,
    TimedOut,
)
from agent.sandbox.certs import make_certificate
from agent.sandbox.server import Emulator, Request, Response
from agent.transport import HttpTransport


class Echo(Emulator):
    """Answers every request with its path."""

    name = "echo"

    def handle(self, request: Request) -> Response:
        return Response.json({"path": request.path})


@pytest.fixture
def echo():
    server = Echo().start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def transport(url: str, **kwargs) -> tuple[HttpTransport, list[float]]:
    waits: list[float] = []
    kwargs.setdefault("timeout", (2, 2))
    return HttpTransport("Test server", url, sleep=waits.append, **kwargs), waits


def test_ok_answer_is_returned(echo: Echo) -> None:
    client, waits = transport(echo.url)
    assert client.request("GET", "/hello").json() == {"path": "/hello"}
    assert waits == []


def test_server_errors_are_retried_then_succeed(echo: Echo) -> None:
    echo.faults.next_errors = 2
    client, waits = transport(echo.url)
    assert client.request("GET", "/x").status_code == 200
    assert len(waits) == 2


def test_server_errors_past_the_attempts_raise_with_the_status(echo: Echo) -> None:
    echo.faults.next_errors = 10
    echo.faults.error_status = 503
    client, _ = transport(echo.url, attempts=3)
    with pytest.raises(ServerError) as caught:
        client.request("GET", "/x")
    assert caught.value.status == 503
    assert f"HTTP 503 from 127.0.0.1:{echo.port}" in str(caught.value)


def test_unsafe_requests_are_not_retried(echo: Echo) -> None:
    echo.faults.next_errors = 1
    client, waits = transport(echo.url)
    with pytest.raises(ServerError):
        client.request("POST", "/x", retry=False)
    assert waits == []


def test_retry_after_is_honoured(echo: Echo) -> None:
    echo.faults.rate_limit_rate = 1.0
    echo.faults.retry_after = 7
    client, waits = transport(echo.url, attempts=2)
    with pytest.raises(RateLimited) as caught:
        client.request("GET", "/x")
    assert waits == [7.0]
    assert caught.value.retry_after == 7.0


def test_long_retry_after_goes_to_the_caller_at_once(echo: Echo) -> None:
    echo.faults.rate_limit_rate = 1.0
    echo.faults.retry_after = 600
    client, waits = transport(echo.url)
    with pytest.raises(RateLimited):
        client.request("GET", "/x")
    assert waits == []


def test_nothing_listening_names_the_address() -> None:
    port = free_port()
    client, _ = transport(f"http://127.0.0.1:{port}", attempts=1)
    with pytest.raises(NothingListening) as caught:
        client.request("GET", "/")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert caught.value.field == "address"


def test_unknown_name_is_address_not_found() -> None:
    client, _ = transport("http://no-such-host.invalid:13299", attempts=1)
    with pytest.raises(AddressNotFound) as caught:
        client.request("GET", "/")
    assert "no-such-host.invalid" in str(caught.value)


def test_a_server_that_never_answers_times_out(echo: Echo) -> None:
    echo.faults.hang = True
    client, _ = transport(echo.url, attempts=1, timeout=(1, 0.5))
    try:
        with pytest.raises(TimedOut):
            client.request("GET", "/")
    finally:
        echo.faults.hang = False


def test_self_signed_certificate_is_not_trusted_by_default(tmp_path) -> None:
    identity = make_certificate(tmp_path, "server")
    server = Echo(tls=identity).start()
    try:
        client, _ = transport(server.url, attempts=1)
        with pytest.raises(CertificateNotTrusted):
            client.request("GET", "/")
        trusting, _ = transport(server.url, verify=str(identity.cert_path))
        assert trusting.request("GET", "/").ok
    finally:
        server.stop()


def test_certificate_without_the_ip_address_is_a_name_mismatch(tmp_path) -> None:
    identity = make_certificate(tmp_path, "named", ip_addresses=())
    server = Echo(tls=identity).start()
    try:
        client, _ = transport(server.url, verify=str(identity.cert_path), attempts=1)
        with pytest.raises(CertificateNameMismatch) as caught:
            client.request("GET", "/")
        assert "does not name the address 127.0.0.1" in str(caught.value)
        by_name = server.url.replace("127.0.0.1", "localhost")
        named, _ = transport(by_name, verify=str(identity.cert_path))
        assert named.request("GET", "/").ok
    finally:
        server.stop()


def test_a_connection_closed_without_an_answer_says_so_in_words() -> None:
    """A server that accepts and hangs up (a crashed service, a firewall) is named
    with what happened and what to check, not with a Python class name."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def hang_up() -> None:
        while True:
            try:
                peer, _ = listener.accept()
            except OSError:
                return
            peer.close()

    threading.Thread(target=hang_up, daemon=True).start()
    client, _ = transport(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ConnectError) as caught:
            client.request("GET", "/x")
    finally:
        listener.close()

    message = str(caught.value)
    assert message.startswith(
        f"The connection to Test server at 127.0.0.1:{port} failed (the server "
        "closed the connection without answering): check that Test server runs"
    )
    assert "Error" not in message
