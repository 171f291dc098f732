"""The TSI signature that every Tigerpaw REST request carries.

Tigerpaw's REST security: lower-case ``<method>|<path>|<date>`` (the path without host
or query string, the date in RFC 1123 form), take its HMAC-SHA256 keyed with the rep's
private key, base64 it, and send ``Authorization: TSI base64(<publicKey>:<signature>)``
with the same date in ``X-TSI-Date`` (and ``Date``).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

logger = logging.getLogger(__name__)


def http_date(timestamp: float) -> str:
    """An RFC 1123 date in GMT, such as ``Thu, 18 Jun 2015 07:25:43 GMT``."""
    return email.utils.formatdate(timestamp, usegmt=True)


def signature(message: str, private_key: str) -> str:
    """Base64 of the HMAC-SHA256 of the lower-cased message, keyed with the key."""
    digest = hmac.new(
        private_key.encode("utf-8"),
        message.lower().encode("utf-8"),
        hashlib.sha256,
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def token(public_key: str, signed: str) -> str:
    """The value after ``TSI `` in the Authorization header."""
    return base64.b64encode(f"{public_key}:{signed}".encode()).decode("ascii")


def authorization(
    method: str, path: str, date: str, public_key: str, private_key: str
) -> str:
    """The whole Authorization header value for one request."""
    signed = signature(f"{method}|{path}|{date}", private_key)
    return f"TSI {token(public_key, signed)}"


class TsiAuth(AuthBase):
    """Signs each request as it leaves, so a retried request gets a fresh date."""

    def __init__(
        self,
        public_key: str,
        private_key: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.public_key = public_key.strip()
        self.private_key = private_key.strip()
        self.clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Authorization and date headers to a prepared request."""
        date = http_date(self.clock())
        path = urlsplit(request.url or "").path or "/"
        method = (request.method or "GET").lower()

        request.headers["Authorization"] = authorization(
            method, path, date, self.public_key, self.private_key
        )
        # X-TSI-Date wins on the server; Date goes along for proxies that read it.
        request.headers["X-TSI-Date"] = date
        request.headers["Date"] = date
        return request

    def __repr__(self) -> str:
        # Keys stay out of reprs, which end up in tracebacks and logs.
        return "TsiAuth(public_key=..., private_key=...)"
