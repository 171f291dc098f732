"""The one interface to Tigerpaw that the sync and the setup page use.

:class:`TigerpawClient` hides which of Tigerpaw's two APIs does what: the tsiWS ASMX
service (SOAP user and password) lists accounts and writes agreement charges; the
REST API (a rep's key pair) does everything else. Every failure is a typed error of
:mod:`agent.errors` with ``system="Tigerpaw"`` and the setup field to fix; paged
lists are iterated lazily. Writes are logged at DEBUG, one line each by numbers: the
caller (the sync, the setup page) logs each at INFO, naming account, object and action.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from agent.errors import (
    PermissionDenied,
    ProtocolError,
    RequestRejected,
    SetupError,
)
from agent.tigerpaw import charges
from agent.tigerpaw import rest_catalog as catalog
from agent.tigerpaw import rest_orders as orders
from agent.tigerpaw import rest_parse as parse
from agent.tigerpaw.asmx import AsmxApi, AsmxHttp
from agent.tigerpaw.models import (
    SERVICE_ORDERS,
    Account,
    AdditionalCharge,
    Agreement,
    ChargeChange,
    ConnectionCheck,
    Criterion,
    CustomFieldCategory,
    CustomFieldDefinition,
    CustomFieldValue,
    MasterTableEntry,
    Note,
    PriceBookItem,
    Rep,
    ServiceOrder,
)
from agent.tigerpaw.rest import RIGHTS_ADVICE, RestApi
from agent.tigerpaw.rest_records import FieldKey
from agent.tigerpaw.wire import SYSTEM
from agent.transport import DEFAULT_TIMEOUT
from agent.wording import plural

logger = logging.getLogger(__name__)

ASMX_PATH = "/api/rmm/tsiWS.asmx"

#: The first row of a search: enough to learn whether the right is there.
_ONE_ROW = {"Criteria": [], "PageSize": 1, "StartRow": 1}
#: Rights the agent reads with: (right, method, path, body).
READ_PROBES: tuple[tuple[str, str, str, Any], ...] = (
    ("Accounts: get", "POST", "/api/accounts/search", _ONE_ROW),
    ("Recurring agreements: get", "POST", "/api/agreements/search", _ONE_ROW),
    ("Price book items: get", "POST", "/api/pricebook/items/search", _ONE_ROW),
    ("Master tables: get", "GET", "/api/mastertables/priorities", None),
    ("Service orders: get", "POST", "/api/serviceorders/search", _ONE_ROW),
    (
        "Custom folders and fields: get",
        "GET",
        "/api/mastertables/customfields/serviceorders",
        None,
    ),
)
#: Rights the agent writes with, probed with bodies that cannot succeed (no account,
#: record 0): a missing right answers 403, a present one a refusal of the body.
WRITE_PROBES: tuple[tuple[str, str, str, Any], ...] = (
    ("Accounts: update", "PUT", "/api/accounts/0/customfields", []),
    ("Service orders: create", "POST", "/api/ServiceOrders", {}),
    ("Service orders: update", "PUT", "/api/serviceorders/0", {}),
    (
        "Custom folders and fields: create",
        "POST",
        "/api/mastertables/customfields/definitions/text",
        {},
    ),
)


def site_url(api_url: str) -> str:
    """The Tigerpaw API site without a trailing slash or ``/api``."""
    url = (api_url or "").strip().rstrip("/")
    if url.lower().endswith("/api"):
        url = url[:-4]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(
            "Enter the Tigerpaw API address as https://host (or https://host:port)",
            field="api_url",
        )
    return url


class TigerpawClient:
    """Tigerpaw's ASMX and REST APIs behind one set of typed methods."""

    def __init__(
        self,
        api_url: str,
        soap_user: str,
        soap_password: str,
        public_key: str,
        private_key: str,
        *,
        asmx_url: str | None = None,
        verify: bool | str = True,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        page_size: int = 100,
    ) -> None:
        self.api_url = site_url(api_url)
        self.asmx_url = (asmx_url or "").strip() or self.api_url + ASMX_PATH
        pair = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        common: dict[str, Any] = {
            "verify": verify,
            "timeout": pair,
            "attempts": attempts,
            "backoff": backoff,
            "sleep": sleep,
        }
        self.rest = RestApi(
            self.api_url,
            public_key,
            private_key,
            clock=clock,
            page_size=page_size,
            **common,
        )
        asmx_http = AsmxHttp(
            self.asmx_url,
            address_field="asmx_url" if asmx_url else "api_url",
            **common,
        )
        self.asmx = AsmxApi(self.asmx_url, soap_user.strip(), soap_password, asmx_http)

    def __repr__(self) -> str:
        return f"TigerpawClient({self.api_url!r})"

    def __enter__(self) -> TigerpawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections of both APIs."""
        self.rest.close()
        self.asmx.http.close()

    # Checks for the setup page.

    def check(self) -> ConnectionCheck:
        """Check both APIs; the first problem raises, naming the field or right."""
        validated = self.rest.call("GET", "/api/diagnostics/validate/user")
        rep_name = parse.text(validated, "RepName")
        missing = self.check_rights()
        if missing:
            rights = plural(len(missing), "right")
            raise PermissionDenied(
                f"The Tigerpaw rep of these REST keys lacks {rights} "
                f"the agent needs: {', '.join(missing)}. For each, {RIGHTS_ADVICE}",
                system=SYSTEM,
                field="public_key",
                right=missing[0],
            )

        accounts = self.list_accounts()
        logger.debug("Tigerpaw check passed for rep %s", rep_name)
        return ConnectionCheck(
            rep_name=rep_name,
            database_version=self._database_version(),
            account_count=len(accounts),
            not_cross_referenced=tuple(
                a for a in accounts if a.cross_referenced is False
            ),
        )

    def check_rights(self) -> list[str]:
        """The rights the agent needs that the rep's security role lacks."""
        missing = []
        for probe in READ_PROBES + WRITE_PROBES:
            right, method, path, body = probe
            # Reads and PUTs may be repeated on a server error; a POST never.
            retry = probe in READ_PROBES or method == "PUT"
            try:
                self.rest.call(
                    method, path, body=body, right=right, record="probe", retry=retry
                )
            except PermissionDenied:
                missing.append(right)
            except RequestRejected:
                # The body was refused after the right was granted: the right is there.
                pass
        logger.debug("Tigerpaw rights missing: %s", missing or "none")
        return missing

    def _database_version(self) -> str | None:
        """The database version Tigerpaw reports, or None if it does not say."""
        try:
            info = self.rest.call("GET", "/api/diagnostics/productInformation")
        except (RequestRejected, ProtocolError):
            return None
        return parse.text(info, "DatabaseVersion")

    # Accounts.

    def list_accounts(self) -> list[Account]:
        """Every account (tsiWS), each saying whether it is cross-referenced."""
        return self.asmx.list_accounts()

    def search_accounts(
        self,
        text: str | None = None,
        *,
        match: str = "Contains",
        criteria: Sequence[Criterion] = (),
    ) -> Iterator[Account]:
        """Accounts whose name matches ``text`` (and the criteria), page by page."""
        found = list(criteria)
        if text:
            found.append(Criterion("AccountName", text, match))
        return catalog.search_accounts(self.rest, found)

    def get_account(self, number: int) -> Account:
        """One account; RecordNotFound when there is none."""
        return catalog.get_account(self.rest, number)

    def account_custom_fields(self, number: int) -> list[CustomFieldValue]:
        """The custom fields of an account with their values."""
        return catalog.account_custom_fields(self.rest, number)

    def set_account_custom_fields(
        self, number: int, values: Mapping[FieldKey, str | None]
    ) -> list[CustomFieldValue]:
        """Set custom fields of an account, keyed by id or (category, label)."""
        return catalog.set_account_custom_fields(self.rest, number, values)

    # Agreements and additional charges.

    def agreements_of_account(
        self, account_number: int, *, active_only: bool = False
    ) -> list[Agreement]:
        """The recurring agreements of an account."""
        return list(
            catalog.account_agreements(
                self.rest, account_number, active_only=active_only
            )
        )

    def get_agreement(self, number: int) -> Agreement:
        """One recurring agreement; RecordNotFound when there is none."""
        return catalog.get_agreement(self.rest, number)

    def agreement_charges(self, agreement_number: int) -> list[AdditionalCharge]:
        """The additional charges of an agreement."""
        return catalog.agreement_charges(self.rest, agreement_number)

    def get_charge(self, agreement_number: int, detail_id: int) -> AdditionalCharge:
        """One additional charge of an agreement."""
        return catalog.get_charge(self.rest, agreement_number, detail_id)

    def set_charge_quantity(
        self,
        agreement_number: int,
        item_id: str,
        quantity: int,
        *,
        account_number: int | None = None,
    ) -> ChargeChange:
        """Set the quantity of an item's charge on an agreement; read back to confirm.

        The line is created if missing; setting the same quantity writes nothing.
        ``account_number`` only names the account in the log line.
        """
        return charges.set_quantity(
            self.rest, self.asmx, agreement_number, item_id, quantity, account_number
        )

    def delete_charge(self, agreement_number: int, detail_id: int) -> None:
        """Remove an additional charge line from an agreement."""
        charges.delete(self.asmx, agreement_number, detail_id)

    # Price book.

    def search_price_book(
        self, text: str | None = None, *, criteria: Sequence[Criterion] = ()
    ) -> Iterator[PriceBookItem]:
        """Price book items whose description contains ``text``, page by page."""
        found = list(criteria)
        if text:
            found.append(Criterion("ItemDescription", text, "Contains"))
        return catalog.search_price_book(self.rest, found)

    def get_price_book_item(self, number: int) -> PriceBookItem:
        """One price book item by its number."""
        return catalog.get_price_book_item(self.rest, number)

    def find_price_book_item(self, item_id: str) -> PriceBookItem | None:
        """The price book item with that item id (part number), or None."""
        found = catalog.search_price_book(
            self.rest, [Criterion("ItemId", item_id, "Equal")]
        )
        wanted = item_id.strip().casefold()
        return next((i for i in found if i.item_id.casefold() == wanted), None)

    # Master tables.

    def priorities(self) -> list[MasterTableEntry]:
        """Service order priorities."""
        return catalog.master_table(self.rest, "priorities")

    def service_order_statuses(self) -> list[MasterTableEntry]:
        """Service order statuses."""
        return catalog.master_table(self.rest, "statuses")

    def service_order_types(self) -> list[MasterTableEntry]:
        """Service order types, each with its own priority."""
        return catalog.master_table(self.rest, "types")

    def dispatch_boards(self) -> list[MasterTableEntry]:
        """Dispatch boards (``id`` is the board number)."""
        return catalog.master_table(self.rest, "dispatch_boards")

    def severities(self) -> list[MasterTableEntry]:
        """Service order severities (``id`` is the severity number)."""
        return catalog.master_table(self.rest, "severities")

    def note_topics(self) -> list[MasterTableEntry]:
        """Service order note topics."""
        return catalog.master_table(self.rest, "note_topics")

    def external_products(self) -> list[MasterTableEntry]:
        """External products accounts can be cross-referenced to."""
        return catalog.master_table(self.rest, "external_products")

    def reps(self, *, active_only: bool = True) -> list[Rep]:
        """Account reps."""
        return catalog.reps(self.rest, active_only=active_only)

    # Custom field categories and definitions.

    def custom_field_categories(
        self, entity: str = SERVICE_ORDERS
    ) -> list[CustomFieldCategory]:
        """Custom field categories of ``accounts`` or ``serviceorders``."""
        return catalog.custom_field_categories(self.rest, entity)

    def create_custom_field_category(self, entity: str, name: str) -> None:
        """Create a category (RequestRejected with status 409 if it exists)."""
        catalog.create_category(self.rest, entity, name)

    def create_text_custom_field(
        self,
        entity: str,
        category: str,
        label: str,
        *,
        max_length: int = 100,
        description: str = "",
    ) -> CustomFieldDefinition:
        """Create a text custom field in a category."""
        return catalog.create_text_field(
            self.rest,
            entity,
            category,
            label,
            max_length=max_length,
            description=description,
        )

    def ensure_service_order_key_field(
        self, category: str, label: str, *, max_length: int = 100
    ) -> CustomFieldDefinition:
        """The service order text field that holds the agent's key, made if missing."""
        return catalog.ensure_text_field(
            self.rest,
            SERVICE_ORDERS,
            category,
            label,
            max_length=max_length,
            description="Kept by the integration agent; do not edit.",
        )

    # Service orders.

    def create_service_order(
        self, account_number: int, brief_description: str, **fields: Any
    ) -> int:
        """Open a service order; its number. Fields: see ``rest_orders.FIELDS``."""
        fields["brief_description"] = brief_description
        return orders.create(self.rest, account_number, fields)

    def get_service_order(self, number: int) -> ServiceOrder:
        """One service order; RecordNotFound when there is none."""
        return orders.get(self.rest, number)

    def update_service_order(self, number: int, **fields: Any) -> ServiceOrder:
        """Change fields (status, priority, ...); RecordLocked if someone has it."""
        return orders.update(self.rest, number, fields)

    def add_service_order_note(
        self, number: int, text: str, *, topic: str = "General"
    ) -> Note:
        """Add a note to a service order."""
        return orders.add_note(self.rest, number, text, topic=topic)

    def service_order_notes(self, number: int) -> list[Note]:
        """The notes of a service order."""
        return orders.notes(self.rest, number)

    def service_order_custom_fields(self, number: int) -> list[CustomFieldValue]:
        """The custom fields of a service order with their values."""
        return orders.custom_fields(self.rest, number)

    def set_service_order_custom_fields(
        self, number: int, values: Mapping[FieldKey, str | None]
    ) -> list[CustomFieldValue]:
        """Set custom fields of a service order, keyed by id or (category, label)."""
        return orders.set_custom_fields(self.rest, number, values)

    def search_service_orders(
        self, criteria: Sequence[Criterion]
    ) -> Iterator[ServiceOrder]:
        """Service orders meeting the criteria, page by page."""
        return orders.search(self.rest, criteria)

    def find_service_orders_by_reference(
        self, reference: str
    ) -> Iterator[ServiceOrder]:
        """Service orders whose Reference is exactly ``reference``."""
        return orders.search(self.rest, [Criterion("Reference", reference)])

    def find_service_orders_by_custom_field(
        self, category: str, label: str, value: str
    ) -> Iterator[ServiceOrder]:
        """Service orders whose custom field ``category/label`` equals ``value``."""
        criterion = Criterion(
            "CustomField",
            value,
            category_name=category,
            custom_field_name=label,
        )
        return orders.search(self.rest, [criterion])

    def service_orders_of_account(
        self, account_number: int, *, statuses: Sequence[str] = ()
    ) -> Iterator[ServiceOrder]:
        """Service orders of an account (only in ``statuses``, if given)."""
        found = [Criterion("AccountNumber", str(int(account_number)))]
        found += [Criterion("Status", status) for status in statuses]
        return orders.search(self.rest, found)

    def service_orders_with_status(self, *statuses: str) -> Iterator[ServiceOrder]:
        """Service orders in any of the statuses."""
        return orders.search(self.rest, [Criterion("Status", s) for s in statuses])
