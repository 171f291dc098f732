"""Tigerpaw REST under ``/api/``: request signing, rights and the reply envelope.

Every reply is JSON with ``Success`` and ``Message``, errors too. A request is signed
as ``Authorization: TSI base64(publicKey:signature)``, where the signature is the
base64 HMAC-SHA256 of ``method|path|date`` (lower-cased) keyed with the rep's
private key; the date comes from ``X-TSI-Date`` or else ``Date`` and may be at most
:data:`MAX_CLOCK_SKEW` seconds off. Statuses: 401 bad keys or date, 403 a missing
right (the Message names it, such as "Service orders: create"), 404 unknown record
or route, 405 wrong method, 409 a duplicate, 411 no Content-Length, 423 a locked
service order, 400 anything else wrong with the request.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import hmac
import logging
import threading
from typing import Any

from agent.sandbox import (
    tigerpaw_rest_catalog,
    tigerpaw_rest_orders,
    tigerpaw_rest_tables,
)
from agent.sandbox.server import Request, Response
from agent.sandbox.tigerpaw_rest_base import Call, RestError, Route
from agent.sandbox.tigerpaw_state import Rep, TigerpawWorld, WorldError, utcnow

logger = logging.getLogger(__name__)

#: How far the request's date may be from the server's clock, in seconds.
MAX_CLOCK_SKEW = 300
KEYS_ADVICE = (
    "Generate the keys in Tigerpaw (Master Tables > Account Reps > Admin tab > "
    "REST API Security) and copy both."
)


def envelope(status: int, payload: dict[str, Any], headers: dict | None = None):
    """A JSON reply with ``Success`` and ``Message`` always present."""
    body = {"Success": status < 400, "Message": "", **payload}
    if status >= 400:
        body["Success"] = False
    return Response.json(body, status, headers)


def error_reply(status: int, message: str, headers: dict | None = None) -> Response:
    """A failed REST reply."""
    return envelope(status, {"Message": message}, headers)


class TigerpawRest:
    """Authenticates, routes and answers REST calls against the world."""

    def __init__(self, world: TigerpawWorld, lock: threading.RLock) -> None:
        self.world = world
        self.lock = lock
        self.routes: list[Route] = [
            *tigerpaw_rest_tables.routes.routes,
            *tigerpaw_rest_catalog.routes.routes,
            *tigerpaw_rest_orders.routes.routes,
        ]

    def handle(self, request: Request) -> Response:
        """Answer one ``/api/`` request."""
        try:
            if request.method in ("POST", "PUT") and not request.header(
                "Content-Length"
            ):
                raise RestError("POST and PUT need a Content-Length header.", 411)
            rep = self.authenticate(request)
            route, args = self._route(request)
            if route.right and route.right not in rep.rights:
                raise RestError(
                    f"The security role of rep '{rep.name}' lacks the right "
                    f"'{route.right}'. Grant '{route.right}' to the role in Tigerpaw "
                    "(Master Tables > Security Roles).",
                    403,
                )

            with self.lock:
                call = Call(request, self.world, rep, args, utcnow())
                payload = route.handler(call)
            return envelope(200, payload)
        except RestError as err:
            return error_reply(err.status, str(err), err.headers)
        except WorldError as err:
            return error_reply(err.status, str(err))

    def _route(self, request: Request) -> tuple[Route, tuple[str, ...]]:
        path = request.path.rstrip("/") or "/"
        allowed = []
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == request.method:
                return route, found.groups()
            allowed.append(route.method)
        if allowed:
            raise RestError(
                f"{request.method} is not allowed on {request.path}; "
                f"use {', '.join(sorted(set(allowed)))}.",
                405,
                {"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise RestError(f"No API resource matches {request.path}.", 404)

    def authenticate(self, request: Request) -> Rep:
        """The rep whose keys signed the request; 401 errors say what is wrong."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "tsi" or not token.strip():
            raise _unauthorized(
                "The request is not signed: send 'Authorization: TSI <token>' made "
                "with the rep's REST public and private keys."
            )
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise _unauthorized(
                "The Authorization token is not base64 of 'publicKey:signature'."
            ) from err
        public_key, _, signature = decoded.partition(":")
        if not public_key or not signature:
            raise _unauthorized(
                "The Authorization token is not base64 of 'publicKey:signature'."
            )

        with self.lock:
            rep = self.world.rep_by_key(public_key)
        if rep is None or rep.private_key is None:
            raise _unauthorized(
                f"Tigerpaw does not know the REST public key {public_key}. "
                + KEYS_ADVICE
            )
        if not rep.active:
            raise _unauthorized(
                f"The REST keys belong to rep '{rep.name}', who is inactive. "
                "Use the keys of an active rep."
            )

        date_text = request.header("X-TSI-Date") or request.header("Date")
        self._check_date(date_text)
        message = f"{request.method}|{request.path}|{date_text}".lower()
        digest = hmac.new(
            rep.private_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256
        ).digest()
        expected = base64.b64encode(digest).decode("ascii")
        if not hmac.compare_digest(expected, signature.strip()):
            raise _unauthorized(
                "The request signature does not match: the REST private key is "
                "wrong for this public key. " + KEYS_ADVICE
            )
        return rep

    @staticmethod
    def _check_date(date_text: str | None) -> None:
        if not date_text:
            raise _unauthorized(
                "The request has no Date or X-TSI-Date header; Tigerpaw needs the "
                "date that was signed."
            )
        try:
            sent = email.utils.parsedate_to_datetime(date_text)
        except (TypeError, ValueError) as err:
            raise _unauthorized(
                f"The request date '{date_text}' is not an RFC 1123 date such as "
                "'Thu, 18 Jun 2015 07:25:43 GMT'."
            ) from err
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=dt.UTC)
        skew = abs((utcnow() - sent).total_seconds())
        if skew > MAX_CLOCK_SKEW:
            raise _unauthorized(
                f"The request date '{date_text}' is {int(skew)} seconds away from the "
                f"Tigerpaw server's clock (at most {MAX_CLOCK_SKEW} allowed): the "
                "clock is off. Set this computer's date, time and time zone right."
            )


def _unauthorized(message: str) -> RestError:
    return RestError(message, 401, {"WWW-Authenticate": "TSI"})
