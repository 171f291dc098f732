"""Timeouts in the shared transport: a write that timed out is not sent again, a read
is sent at most twice, and a server that hung gets no more retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.errors import TimedOut
from agent.sandbox.server import Emulator, Request, Response
from agent.transport import TIMEOUT_ATTEMPTS, HttpTransport


class Hanging(Emulator):
    """Answers every request with its path, unless told to hang."""

    name = "hanging"

    def handle(self, request: Request) -> Response:
        """The request's path as JSON."""
        return Response.json({"path": request.path})


@pytest.fixture
def server() -> Iterator[Hanging]:
    """An emulator that hangs on every request until the test ends."""
    made = Hanging().start()
    made.faults.hang = True
    yield made
    made.faults.hang = False
    made.stop()


def transport(url: str) -> HttpTransport:
    """A transport with a short read timeout and four attempts per safe call."""
    return HttpTransport(
        "Test server", url, timeout=(1, 0.3), attempts=4, sleep=lambda _: None
    )


def sent(server: Hanging, what: str) -> int:
    """How many times the server received ``what`` ("PUT /x")."""
    with server.lock:
        return server.calls[what]


def test_a_write_that_timed_out_is_sent_once_though_retries_are_allowed(
    server: Hanging,
) -> None:
    """A PUT may be retried on a 5xx, but one that timed out may have been done."""
    client = transport(server.url)

    with pytest.raises(TimedOut):
        client.request("PUT", "/record", retry=True, data=b"{}")

    assert sent(server, "PUT /record") == 1


def test_a_read_that_timed_out_is_sent_at_most_twice(server: Hanging) -> None:
    """A GET is tried again once, not as often as the attempts allow."""
    client = transport(server.url)

    with pytest.raises(TimedOut):
        client.request("GET", "/list")

    assert sent(server, "GET /list") == TIMEOUT_ATTEMPTS == 2


def test_a_search_sent_as_a_post_is_a_read_when_the_caller_says_so(
    server: Hanging,
) -> None:
    """``retry_timeout`` marks a POST that only reads."""
    client = transport(server.url)

    with pytest.raises(TimedOut):
        client.request("POST", "/search", retry_timeout=True)

    assert sent(server, "POST /search") == 2


def test_after_a_timeout_a_hung_server_gets_no_retries_until_it_answers(
    server: Hanging,
) -> None:
    """Once a call timed out, the next reads are sent once; an answer resets it."""
    client = transport(server.url)
    with pytest.raises(TimedOut):
        client.request("GET", "/first")

    with pytest.raises(TimedOut):
        client.request("GET", "/second")
    assert sent(server, "GET /second") == 1

    server.faults.hang = False
    assert client.request("GET", "/third").json() == {"path": "/third"}
    server.faults.hang = True
    with pytest.raises(TimedOut):
        client.request("GET", "/fourth")
    assert sent(server, "GET /fourth") == 2
