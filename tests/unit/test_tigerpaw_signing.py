"""The TSI signature of Tigerpaw REST requests, against published values."""

from __future__ import annotations

import base64
import calendar

import requests

from agent.tigerpaw.signing import TsiAuth, authorization, http_date, signature, token

# The worked example of Tigerpaw's REST security text (spec source S4).
EXAMPLE_PUBLIC_KEY = "3383259B-9FBA-486E-97A8-E81893741F83"
EXAMPLE_SIGNATURE = "RVg3YCtybLImF68rEumuPLCCApLnPIyNvb0hfxH+ek4="
EXAMPLE_TOKEN = (
    "MzM4MzI1OUItOUZCQS00ODZFLTk3QTgtRTgxODkzNzQxRjgzOlJWZzNZQ3R5YkxJbUY2OHJFdW11"
    "UExDQ0FwTG5QSXlOdmIwaGZ4SCtlazQ9"
)
# RFC 4231 test case 2: HMAC-SHA256 with key "Jefe".
RFC4231_DIGEST = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_the_date_is_rfc_1123_in_gmt() -> None:
    moment = calendar.timegm((2015, 6, 18, 7, 25, 43))
    assert http_date(moment) == "Thu, 18 Jun 2015 07:25:43 GMT"


def test_the_token_matches_the_published_example() -> None:
    assert token(EXAMPLE_PUBLIC_KEY, EXAMPLE_SIGNATURE) == EXAMPLE_TOKEN


def test_the_signature_is_base64_hmac_sha256_of_the_message() -> None:
    expected = base64.b64encode(bytes.fromhex(RFC4231_DIGEST)).decode()
    assert signature("what do ya want for nothing?", "Jefe") == expected


def test_the_message_is_lower_cased_before_signing() -> None:
    upper = signature("GET|/API/Accounts/1|Thu, 18 Jun 2015 07:25:43 GMT", "k")
    lower = signature("get|/api/accounts/1|thu, 18 jun 2015 07:25:43 gmt", "k")
    assert upper == lower


def test_the_private_key_is_used_as_written() -> None:
    # The key is the GUID text itself, so its case changes the signature.
    message = "get|/api/accounts/1|thu, 18 jun 2015 07:25:43 gmt"
    assert signature(message, "ABC-def") != signature(message, "abc-def")


def test_authorization_joins_method_path_and_date() -> None:
    date = "Thu, 18 Jun 2015 07:25:43 GMT"
    header = authorization("get", "/api/accounts/1052932", date, "PUB", "PRIV")
    expected = signature(f"get|/api/accounts/1052932|{date}", "PRIV")
    assert header == "TSI " + token("PUB", expected)


def test_the_auth_signs_the_path_without_host_or_query() -> None:
    moment = calendar.timegm((2015, 6, 18, 7, 25, 43))
    auth = TsiAuth(" PUB ", " PRIV ", clock=lambda: moment)
    prepared = requests.Request(
        "POST",
        "https://tigerpaw.example.com/api/accounts/search?pageRequest.pageSize=5",
    ).prepare()

    auth(prepared)

    date = "Thu, 18 Jun 2015 07:25:43 GMT"
    assert prepared.headers["X-TSI-Date"] == date
    assert prepared.headers["Date"] == date
    expected = authorization("post", "/api/accounts/search", date, "PUB", "PRIV")
    assert prepared.headers["Authorization"] == expected


def test_the_auth_never_shows_the_keys() -> None:
    auth = TsiAuth("public-guid", "private-guid")
    assert "private-guid" not in repr(auth)
    assert "public-guid" not in repr(auth)
