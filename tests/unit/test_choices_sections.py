"""The Settings page's device status sections and price book rows, as the form reads
them and as saved choices fill them, without a server."""

from __future__ import annotations

from agent.setup_choices import licensed_per_user, problem_rows
from agent.sources.records import (
    DATABASES_OUTDATED,
    NOT_PROTECTED,
    PROBLEM_DESCRIPTIONS,
    LicenseUsage,
)
from agent.store.choices import STATUS_LEVELS, OrderRule, SyncChoices
from agent.sync.licenses import MAILBOXES, price_book_item
from agent.web import forms
from agent.web.views_choices import DEVICE_CATEGORIES, choice_values

ENDPOINT = "Kaspersky Endpoint Security for Business"
OFFICE = "Kaspersky Security for Microsoft Office 365"
GENERAL = {"rep": "1", "new_status": "New", "closed_status": "Closed"}


def usage(product: str, devices: tuple[str, ...] = (), mailboxes: int = 0):
    """One license of ``product`` used by ``devices`` or ``mailboxes``."""
    return LicenseUsage(
        tenant_id="t",
        license_id=f"{product}-{len(devices)}-{mailboxes}",
        product=product,
        kind="commercial",
        state="active",
        seats=50,
        expires=None,
        device_ids=devices,
        mailboxes=mailboxes,
    )


def test_each_section_reads_its_own_rows() -> None:
    """A row's fields are ``status-<level>-<word>-*``; each section keeps its own
    on/off, board, priority and type."""
    form = {
        **GENERAL,
        f"status-warning-{DATABASES_OUTDATED}-enabled": "on",
        f"status-warning-{DATABASES_OUTDATED}-priority": "4 - Low",
        f"status-warning-{DATABASES_OUTDATED}-type": "Maintenance",
        f"status-critical-{NOT_PROTECTED}-enabled": "on",
        f"status-critical-{NOT_PROTECTED}-priority": "2 - High",
        f"status-critical-{NOT_PROTECTED}-board": "Security Operations",
        f"status-critical-{DATABASES_OUTDATED}-type": "Break/Fix",
    }

    result = forms.read_choices(form, list(PROBLEM_DESCRIPTIONS), [], [])

    assert result.ok, result.errors
    rows = result.parsed.device_statuses
    assert set(rows) == {
        f"{level}:{word}" for level in STATUS_LEVELS for word in PROBLEM_DESCRIPTIONS
    }
    assert rows[f"warning:{DATABASES_OUTDATED}"] == OrderRule(
        enabled=True, priority="4 - Low", order_type="Maintenance"
    )
    assert rows[f"critical:{DATABASES_OUTDATED}"] == OrderRule(order_type="Break/Fix")
    assert rows[f"critical:{NOT_PROTECTED}"] == OrderRule(
        enabled=True, priority="2 - High", board="Security Operations"
    )
    assert not rows[f"warning:{NOT_PROTECTED}"].enabled


def test_a_switched_on_status_row_needs_the_general_fields() -> None:
    """A row on in either section opens orders, so rep and statuses are required."""
    form = {f"status-critical-{NOT_PROTECTED}-enabled": "on"}

    result = forms.read_choices(form, [NOT_PROTECTED], [], [])

    assert set(result.errors) == {"rep", "new_status", "closed_status"}


def test_saved_rows_fill_both_sections_and_old_ones_show_in_both() -> None:
    """Rows saved before the sections (by word, or by the description in words)
    show as the same rule in both sections; a row with its section in one."""
    old = OrderRule(enabled=True, priority="3 - Normal")
    choices = SyncChoices(
        device_statuses={
            DATABASES_OUTDATED: old,
            "Protection is not running": OrderRule(enabled=True, board="Security"),
            "critical:not_seen": OrderRule(enabled=True, order_type="Break/Fix"),
        }
    )

    values = choice_values(choices, problem_rows())

    for level in STATUS_LEVELS:
        prefix = f"status-{level}-{DATABASES_OUTDATED}"
        assert values[f"{prefix}-enabled"] == "on"
        assert values[f"{prefix}-priority"] == "3 - Normal"
        assert values[f"status-{level}-{NOT_PROTECTED}-board"] == "Security"
    assert values["status-critical-not_seen-enabled"] == "on"
    assert values["status-critical-not_seen-type"] == "Break/Fix"
    assert values["status-warning-not_seen-enabled"] == ""
    assert values["status-warning-not_seen-type"] == ""


def test_the_form_round_trips_what_the_page_shows() -> None:
    """Posting back the values a page shows gives the same rows."""
    choices = SyncChoices(
        **GENERAL,
        device_statuses={
            f"warning:{word}": OrderRule(enabled=True, priority="4 - Low")
            for word in PROBLEM_DESCRIPTIONS
        },
    )
    shown = {k: v for k, v in choice_values(choices, problem_rows()).items() if v}

    again = forms.read_choices(shown, list(PROBLEM_DESCRIPTIONS), [], [])

    assert again.ok and again.parsed.device_statuses == {
        **{f"critical:{word}": OrderRule() for word in PROBLEM_DESCRIPTIONS},
        **choices.device_statuses,
    }


def test_an_application_is_per_user_when_it_counts_mailboxes_and_no_device() -> None:
    """Office 365 counts mailboxes; an endpoint application counts devices; one
    that counts both is billed by device, and one in use by nothing is unknown."""
    found = licensed_per_user(
        [
            usage(ENDPOINT, ("d1", "d2")),
            usage(ENDPOINT),
            usage(OFFICE, mailboxes=12),
            usage(OFFICE),
            usage("Mixed", ("d3",)),
            usage("Mixed", mailboxes=3),
            usage("Idle"),
            usage(""),
        ]
    )

    assert found == {ENDPOINT: False, OFFICE: True, "Mixed": False, "Idle": False}


def test_a_per_user_application_is_read_as_one_item() -> None:
    """Only its own item is read; device applications read workstations, servers
    and other devices, never mailboxes."""
    assert MAILBOXES not in DEVICE_CATEGORIES
    form = {
        f"item::{ENDPOINT}": "KL-KESB",
        f"item::{ENDPOINT}/server": "KL-KESB-SRV",
        f"item::{ENDPOINT}/mailbox": "KL-ODD",
        f"item::{OFFICE}": "KL-KSO365",
        f"item::{OFFICE}/workstation": "KL-ODD",
    }

    result = forms.read_choices(
        form, [], [ENDPOINT, OFFICE], list(DEVICE_CATEGORIES), frozenset({OFFICE})
    )

    assert result.parsed.price_book_items == {
        ENDPOINT: "KL-KESB",
        f"{ENDPOINT}/server": "KL-KESB-SRV",
        OFFICE: "KL-KSO365",
    }


def test_the_one_row_shows_the_item_billing_uses_for_the_mailboxes() -> None:
    """A mailbox item saved before the one row existed is what the row shows, so
    saving the page bills the mailboxes under the same item as before."""
    saved = SyncChoices(
        price_book_items={OFFICE: "KL-OLD", f"{OFFICE}/mailbox": "KL-KSO365"}
    )

    values = choice_values(saved, [], frozenset({OFFICE}))

    assert values[f"item::{OFFICE}"] == "KL-KSO365"
    shown = {k: v for k, v in values.items() if k.startswith("item::")}
    posted = forms.read_choices(
        shown, [], [OFFICE], list(DEVICE_CATEGORIES), frozenset({OFFICE})
    ).parsed
    assert posted.price_book_items == {OFFICE: "KL-KSO365"}
    for choices in (saved, posted):
        assert price_book_item(choices, OFFICE, MAILBOXES) == "KL-KSO365"
    assert choice_values(SyncChoices(), [], {OFFICE})[f"item::{OFFICE}"] == ""
