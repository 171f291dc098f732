"""The tsiWS account list: the CrossReferenced flag read as yes, no or not said."""

from __future__ import annotations

import pytest

from agent.errors import ProtocolError
from agent.tigerpaw.asmx import _account


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), (None, None)],
)
def test_cross_referenced_flag(value: object, expected: bool | None) -> None:
    row = {"AccountNumber": "1020", "AccountName": "Wingtip Dental"}
    if value is not None:
        row["CrossReferenced"] = value

    account = _account(row)

    assert account.number == 1020
    assert account.cross_referenced is expected


def test_account_without_number_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="without AccountNumber"):
        _account({"AccountName": "Nameless"})
