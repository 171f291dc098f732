"""The Tigerpaw emulator: the tsiWS ASMX service and the REST API on one server.

``/api/rmm/tsiWS.asmx`` goes to :mod:`agent.sandbox.tigerpaw_asmx`, the rest of
``/api/`` to :mod:`agent.sandbox.tigerpaw_rest`. Injected faults answer in the shape
the real server would: the REST envelope under ``/api/``, a SOAP fault for a failing
SOAP call, and IIS's HTML error page otherwise (a 503 for the ASMX path is HTML).
``POST /_sandbox/events`` plays the people at the Tigerpaw desk: see
:meth:`TigerpawEmulator.add_events`.
"""

from __future__ import annotations

import http
import logging
import threading
from typing import Any

from agent.sandbox.certs import TlsIdentity
from agent.sandbox.server import (
    BadRequest,
    Emulator,
    Request,
    Response,
    html_error_page,
)
from agent.sandbox.tigerpaw_asmx import ASMX_PATH, TigerpawAsmx, fault_reply
from agent.sandbox.tigerpaw_rest import TigerpawRest, error_reply
from agent.sandbox.tigerpaw_seed import MAIN_PRODUCT, build_world
from agent.sandbox.tigerpaw_state import SERVICE_ORDERS, WorldError, iso, utcnow

logger = logging.getLogger(__name__)

#: The rep who opens, locks and closes orders when tests play a person.
DESK_REP = 2
EVENT_KINDS = ("lock", "unlock", "close", "cross_reference", "remove_cross_reference")


class TigerpawEmulator(Emulator):
    """Tigerpaw's ASMX and REST APIs over one seeded world."""

    name = "tigerpaw"

    def __init__(
        self,
        account_names: list[str],
        *,
        seed: int = 0,
        tls: TlsIdentity | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(tls=tls, host=host, port=port, seed=seed)
        self.world, self.credentials = build_world(list(account_names), seed)
        self.rest = TigerpawRest(self.world, self.lock)
        self.asmx = TigerpawAsmx(self.world, self.lock)
        self._current = threading.local()

    def start(self) -> TigerpawEmulator:
        """Listen and serve; returns the emulator."""
        super().start()
        return self

    @property
    def asmx_url(self) -> str:
        """The address of the tsiWS service."""
        return f"{self.url}/api/rmm/tsiWS.asmx"

    def describe(self) -> dict[str, Any]:
        """Addresses, the fully entitled credentials, and users for negative tests."""
        creds = self.credentials
        return {
            "url": self.url,
            "asmx_url": self.asmx_url,
            "soap_user": creds.soap_user,
            "soap_password": creds.soap_password,
            "public_key": creds.public_key,
            "private_key": creds.private_key,
            "test_users": creds.test_users,
        }

    # Requests.

    def dispatch(self, request: Request) -> Response | None:
        """Remember the request on this thread, so faults know their shape."""
        self._current.request = request
        try:
            return super().dispatch(request)
        finally:
            self._current.request = None

    def handle(self, request: Request) -> Response:
        """Send the request to the ASMX service or the REST API."""
        path = request.path.lower()
        if path.startswith(ASMX_PATH):
            return self.asmx.handle(request, self.url)
        if path.startswith("/api/"):
            return self.rest.handle(request)
        return html_error_page(404, "Not Found")

    def _shape(self) -> tuple[str, Request | None]:
        request = getattr(self._current, "request", None)
        path = request.path.lower() if request else ""
        if path.startswith(ASMX_PATH):
            return "asmx", request
        return ("rest" if path.startswith("/api/") else "html"), request

    def fault_response(self, status: int, retry_after: int | None = None) -> Response:
        """An injected failure, answered as the real server would."""
        shape, request = self._shape()
        phrase = http.HTTPStatus(status).phrase
        if shape == "rest":
            if status == 429:
                message = (
                    f"Too many requests: Tigerpaw asks to wait {retry_after} seconds "
                    "before the next one."
                )
            else:
                message = f"The Tigerpaw API failed: {status} {phrase}."
            response = error_reply(status, message)
        elif shape == "asmx" and status == 500 and request and request.method == "POST":
            response = fault_reply(
                "Server was unable to process request. ---> The Tigerpaw database "
                "did not answer in time.",
                sender=False,
            )
        else:
            response = html_error_page(status, phrase)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def bad_request(self, message: str) -> Response:
        """An unreadable request, in the shape of the API it was sent to."""
        shape, _ = self._shape()
        if shape == "rest":
            return error_reply(400, message)
        if shape == "asmx":
            return fault_reply(message)
        return html_error_page(400, "Bad Request")

    # The sandbox's own endpoints.

    def state(self) -> dict[str, Any]:
        """Accounts, agreements with charges, service orders with their details."""
        world = self.world
        labels = {
            d.id: f"{d.category}/{d.label}" for d in world.fields_of(SERVICE_ORDERS)
        }
        return {
            "accounts": len(world.accounts),
            "cross_referenced": [
                a.number for a in world.accounts if a.link_for(MAIN_PRODUCT)
            ],
            "agreements": [
                {
                    "number": g.number,
                    "account": g.account_number,
                    "type": g.type,
                    "active": g.active_at(utcnow()),
                    "charges": [
                        {
                            "detail_id": c.detail_id,
                            "item_id": c.item_id,
                            "description": c.description,
                            "quantity": c.quantity,
                            "price": c.price,
                        }
                        for c in g.charges
                    ],
                }
                for g in world.agreements
            ],
            "service_orders": [self._order_state(o, labels) for o in world.orders],
        }

    def _order_state(self, order: Any, labels: dict[int, str]) -> dict[str, Any]:
        data = order.data
        status_entry = self.world.entry("statuses", data.get("Status") or "")
        return {
            "number": order.number,
            "account": order.account_number,
            "status": data.get("Status"),
            "closed": bool(status_entry and status_entry.extra.get("Closed")),
            "brief": data.get("BriefDescription"),
            "reference": data.get("Reference"),
            "priority": data.get("Priority"),
            "type": data.get("ServiceOrderType"),
            "board": data.get("DispatchBoardNumber"),
            "locked": order.locked_by is not None,
            "custom_fields": {
                labels.get(k, str(k)): v for k, v in order.custom.items()
            },
            "notes": [
                {
                    "topic": n.topic,
                    "text": n.text,
                    "rep": n.rep_number,
                    "created": iso(n.created),
                }
                for n in order.notes
            ],
        }

    def add_events(self, payload: Any) -> dict[str, Any]:
        """Play people at the Tigerpaw desk.

        ``{"lock": [n]}`` opens orders on a screen (the API may not change them),
        ``{"unlock": [n]}`` closes the screen, ``{"close": [n]}`` closes orders by
        hand with a note (releasing the lock); each item may be a number or
        ``{"number": n, "rep": r}``. ``{"cross_reference": [account]}`` and
        ``{"remove_cross_reference": [account]}`` change the accounts'
        cross-reference to the main SOAP user's external product.
        """
        if not isinstance(payload, dict) or not set(payload) <= set(EVENT_KINDS):
            raise BadRequest(f"Send an object with some of: {', '.join(EVENT_KINDS)}")
        if not all(isinstance(payload.get(k) or [], list) for k in EVENT_KINDS):
            raise BadRequest("Each event kind takes a list of numbers")
        items = {
            kind: [_event_item(i) for i in payload.get(kind) or []]
            for kind in EVENT_KINDS
        }
        try:
            for kind in ("lock", "unlock", "close"):
                for number, _rep in items[kind]:
                    self.world.order(number)
            for kind in ("cross_reference", "remove_cross_reference"):
                for number, _rep in items[kind]:
                    if self.world.account(number) is None:
                        raise WorldError(f"Account {number} does not exist.")

            now = utcnow()
            for number, rep in items["lock"]:
                self.world.lock_order(number, rep, now)
            for number, _rep in items["unlock"]:
                self.world.unlock_order(number)
            for number, rep in items["close"]:
                self.world.close_order(number, rep, now)
            for number, _rep in items["cross_reference"]:
                self.world.set_cross_reference(number, MAIN_PRODUCT, True)
            for number, _rep in items["remove_cross_reference"]:
                self.world.set_cross_reference(number, MAIN_PRODUCT, False)
        except WorldError as err:
            raise BadRequest(str(err)) from err
        return {kind: [number for number, _ in found] for kind, found in items.items()}


def _event_item(item: Any) -> tuple[int, int]:
    """(number, rep) from ``n`` or ``{"number": n, "rep": r}``."""
    try:
        if isinstance(item, dict):
            return int(item["number"]), int(item.get("rep", DESK_REP))
        return int(item), DESK_REP
    except (KeyError, TypeError, ValueError) as err:
        raise BadRequest(f"Not an order or account number: {item!r}") from err
