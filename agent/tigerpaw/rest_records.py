"""What every kind of Tigerpaw REST record shares: its path, its name, its rights.

Accounts, agreements, price book items and service orders are each read at
``<path>/{number}`` (a 404 names "<Name> {number}"), searched at ``<path>/search``,
and accounts and service orders hold custom fields at ``<path>/{number}/customfields``.
:class:`RecordKind` makes those calls once for every kind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.tigerpaw import rest_parse as parse
from agent.tigerpaw.models import Criterion, CustomFieldValue
from agent.tigerpaw.rest import RestApi, rows_of
from agent.wording import plural

logger = logging.getLogger(__name__)

#: A record's custom field, named by its id or by (category, label).
FieldKey = int | tuple[str, str]


def search_body(criteria: Sequence[Criterion]) -> dict[str, Any]:
    """An advanced search body (paging is added by :meth:`RestApi.pages`)."""
    rows = []
    for criterion in criteria:
        row = {
            "SearchType": criterion.search_type,
            "MatchType": criterion.match_type,
            "Criteria": criterion.criteria,
        }
        if criterion.category_name:
            row["CategoryName"] = criterion.category_name
        if criterion.custom_field_name:
            row["CustomFieldName"] = criterion.custom_field_name
        rows.append(row)
    return {"Criteria": rows}


def values_body(values: Mapping[FieldKey, str | None]) -> list[dict[str, Any]]:
    """A custom field PUT body: each field by CustomFieldId or Category + Label."""
    body: list[dict[str, Any]] = []
    for key, value in values.items():
        if isinstance(key, tuple):
            category, label = key
            body.append({"Category": category, "Label": label, "Value": value})
        else:
            body.append({"CustomFieldId": int(key), "Value": value})
    return body


@dataclass(frozen=True)
class RecordKind:
    """A kind of record: where it lives, what people call it, the rights it needs."""

    path: str
    name: str
    read_right: str
    write_right: str | None = None

    def label(self, number: int) -> str:
        """How a message names one record ("Service order 20001")."""
        return f"{self.name} {number}"

    def url(self, number: int, tail: str = "") -> str:
        """The path of one record, or of what it holds (``tail``: ``/notes``)."""
        return f"{self.path}/{int(number)}{tail}"

    def search(
        self, api: RestApi, criteria: Sequence[Criterion], key: str
    ) -> Iterator[dict[str, Any]]:
        """The rows of an advanced search (every record for none), page by page."""
        return api.pages(
            "POST",
            f"{self.path}/search",
            key,
            body=search_body(criteria),
            right=self.read_right,
        )

    def read(self, api: RestApi, number: int, key: str) -> Any:
        """One record, taken out of its ``key`` (a summary) when the reply has it."""
        payload = api.call(
            "GET", self.url(number), right=self.read_right, record=self.label(number)
        )
        return parse.get(payload, key) or payload

    def rows(
        self, api: RestApi, number: int, tail: str, key: str
    ) -> list[dict[str, Any]]:
        """The rows under ``key`` of what a record holds (its notes, its charges)."""
        payload = api.call(
            "GET",
            self.url(number, tail),
            right=self.read_right,
            record=self.label(number),
        )
        return rows_of(payload, key)

    def custom_fields(self, api: RestApi, number: int) -> list[CustomFieldValue]:
        """The custom fields of a record, with their values."""
        rows = self.rows(api, number, "/customfields", "CustomFields")
        return [parse.field_value(row) for row in rows]

    def set_custom_fields(
        self, api: RestApi, number: int, values: Mapping[FieldKey, str | None]
    ) -> list[CustomFieldValue]:
        """Set custom field values of a record (None empties one); all or none.

        Logged at DEBUG: the sync logs the write at INFO with the names people know.
        """
        payload = api.call(
            "PUT",
            self.url(number, "/customfields"),
            body=values_body(values),
            right=self.write_right,
            record=self.label(number),
        )
        logger.debug(
            "Set %s of %s",
            plural(len(values), "custom field"),
            self.label(number).lower(),
        )
        return [parse.field_value(row) for row in rows_of(payload, "CustomFields")]
