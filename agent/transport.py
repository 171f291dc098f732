"""HTTP for every remote client: timeouts, retries with backoff, and errors in words.

Each client (KSC, Business Hub, Tigerpaw REST and ASMX) builds on
:class:`HttpTransport`, so all of them time out, retry and describe failures alike:
a technician reads "Nothing is listening at 10.0.0.5:13299", never a stack trace.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from agent.errors import (
    AddressNotFound,
    CertificateNameMismatch,
    CertificateNotTrusted,
    ConnectError,
    NothingListening,
    ProxyRefused,
    RateLimited,
    RemoteError,
    ServerError,
    TimedOut,
)

logger = logging.getLogger(__name__)

#: (connect, read) seconds; no call waits longer than this for a byte.
DEFAULT_TIMEOUT = (10.0, 60.0)
#: The longest Retry-After we wait for inside one call; longer waits go to the caller.
MAX_RETRY_WAIT = 30.0
#: Attempts of a safe call that times out: each costs a whole read timeout.
TIMEOUT_ATTEMPTS = 2
#: Methods that only read, so a timed-out one is safe to send again.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# OpenSSL's verify codes for a certificate that names other hosts.
_NAME_MISMATCH_CODES = {62, 64}


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it wraps (causes, contexts, urllib3 reasons, args)."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
        ]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [item for item in linked if isinstance(item, BaseException)]


def describe_address(url: str) -> str:
    """``host:port`` of a URL, as people write it."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.hostname}:{parts.port or default}"


def translate(error: requests.RequestException, system: str, url: str) -> RemoteError:
    """Turn a requests failure into a typed error that says what to do."""
    address = describe_address(url)
    chain = list(exception_chain(error))

    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return _certificate_error(item, system, address)
    if isinstance(error, requests.exceptions.ProxyError):
        if any("407" in str(item) for item in chain):
            return ProxyRefused(
                "The proxy server refused the user name or password: check the "
                "proxy's User name and Password",
                system=system,
                field="proxy_user",
            )
        return ConnectError(
            f"Cannot reach the proxy server for {address}: check the proxy Address",
            system=system,
            field="proxy_address",
        )
    if isinstance(error, requests.Timeout) or any(
        isinstance(item, TimeoutError | socket.timeout) for item in chain
    ):
        return TimedOut(
            f"{system} at {address} did not answer in time: check that the server "
            "runs and is not overloaded",
            system=system,
            field="address",
        )
    if any(isinstance(item, socket.gaierror) for item in chain):
        return AddressNotFound(
            f"The address {urlsplit(url).hostname} was not found: check the spelling "
            "of the server's name",
            system=system,
            field="address",
        )
    if any(isinstance(item, ConnectionRefusedError) for item in chain):
        return NothingListening(
            f"Nothing is listening at {address}: check the address and port, and "
            f"that {system} runs",
            system=system,
            field="address",
        )
    return ConnectError(
        f"The connection to {system} at {address} failed ({_what_broke(chain)}): "
        f"check that {system} runs and that no firewall or proxy between cuts the "
        "connection",
        system=system,
        field="address",
    )


def _what_broke(chain: list[BaseException]) -> str:
    """A connection failure's cause in words, from the deepest error that says."""
    for item in reversed(chain):
        if isinstance(item, ConnectionResetError | http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(item, ConnectionAbortedError):
            return "the connection was cut"
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
    return type(chain[-1]).__name__ if chain else "no reason given"


def _certificate_error(
    error: ssl.SSLCertVerificationError, system: str, address: str
) -> RemoteError:
    host = address.rsplit(":", 1)[0]
    if error.verify_code in _NAME_MISMATCH_CODES:
        return CertificateNameMismatch(
            f"The certificate of {system} does not name the address {host}: connect "
            "with a name the certificate holds (often the server's host name), or "
            "reissue the certificate with this address",
            system=system,
            field="address",
        )
    return CertificateNotTrusted(
        f"The certificate of {system} at {address} is not trusted "
        f"({error.verify_message}): choose the server's certificate file or accept "
        "its fingerprint",
        system=system,
        field="certificate",
    )


def retry_after_seconds(response: requests.Response, default: float = 1.0) -> float:
    """The wait a 429 or 503 asks for, in seconds (number or HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return default
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


class HttpTransport:
    """A pooled HTTP session with timeouts, safe retries and typed errors."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        verify: bool | str = True,
        proxy_url: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = 4,
        backoff: float = 0.5,
        pool_size: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        #: A call timed out and nothing has answered since: a hung server.
        self.hung = False
        self.session = requests.Session()
        # Proxies come only from the setup, never from the machine's environment.
        self.session.trust_env = False
        self.session.verify = verify
        if proxy_url:
            self.session.proxies = {"http": proxy_url, "https": proxy_url}
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def url(self, path: str) -> str:
        """The full address of ``path``."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        retry: bool = True,
        retry_timeout: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; retry transient failures when ``retry`` says it is safe.

        429 and 5xx answers are retried (when safe) and then raised as RateLimited
        or ServerError; every other answer is returned for the caller to read.
        A timeout is retried only for a read (``retry_timeout``; by default a GET,
        since a POST or PUT that timed out may have been done), at most once, and
        not while the server has answered nothing since an earlier timeout: a hung
        server holds each try for a whole read timeout.
        """
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        attempts = self.attempts if retry else 1
        if retry_timeout is None:
            retry_timeout = method.upper() in READ_METHODS
        retry_timeout = retry_timeout and retry
        timeouts = 0

        for attempt in range(1, attempts + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.RequestException as err:
                lost = translate(err, self.system, url)
                if isinstance(lost, TimedOut):
                    timeouts += 1
                    again = self._retry_timeout(retry_timeout, timeouts)
                    self.hung = True
                else:
                    again = lost.transient
                if not (again and attempt < attempts):
                    raise lost from err
                self._wait(attempt, None, lost)
                continue

            self.hung = False
            refused = self.status_error(response)
            if refused is None:
                return response
            asked = getattr(refused, "retry_after", None)
            if attempt >= attempts or (asked or 0) > MAX_RETRY_WAIT:
                # A long Retry-After goes to the scheduler instead of blocking here.
                raise refused
            self._wait(attempt, asked, refused)
        raise AssertionError("unreachable: the loop returns or raises")

    def _retry_timeout(self, allowed: bool, timeouts: int) -> bool:
        """Whether a call that timed out ``timeouts`` times may be sent again."""
        return allowed and timeouts < TIMEOUT_ATTEMPTS and not self.hung

    def status_error(self, response: requests.Response) -> RemoteError | None:
        """The typed error for a 429 or 5xx answer, else None."""
        address = describe_address(response.url or self.base_url)
        if response.status_code == 429:
            wait = retry_after_seconds(response)
            return RateLimited(
                f"{self.system} at {address} asks to slow down for {wait:.0f} s",
                system=self.system,
                retry_after=wait,
            )
        if response.status_code >= 500:
            return ServerError(
                f"HTTP {response.status_code} from {address}: {self.system} failed; "
                "the agent tries again later",
                system=self.system,
                status=response.status_code,
            )
        return None

    def _wait(self, attempt: int, asked: float | None, failure: RemoteError) -> None:
        if asked is not None:
            delay = min(asked, MAX_RETRY_WAIT)
        else:
            # Full jitter keeps many agents (or threads) from retrying in step.
            delay = random.uniform(0, self.backoff * 2 ** (attempt - 1))
        logger.debug("%s; retry %d in %.2f s", failure, attempt, delay)
        self.sleep(delay)
