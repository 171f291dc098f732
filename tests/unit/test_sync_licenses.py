"""The billing rules: who counts, once, under which price book item."""

from __future__ import annotations

import datetime as dt

from agent.sources import kbh_wire, ksc_records
from agent.sources.records import MOBILE, SERVER, WORKSTATION, LicenseUsage
from agent.store import SyncChoices
from agent.sync.licenses import (
    MAILBOXES,
    OTHER_DEVICES,
    SERVERS,
    WORKSTATIONS,
    ChargeTarget,
    LicenseCounter,
    UsageCounts,
    charge_targets,
    plan_charges,
)
from agent.tigerpaw.models import AdditionalCharge

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
KES = "Kaspersky Endpoint Security for Business Select"
KSWS = "Kaspersky Security for Windows Server"
O365 = "Kaspersky Security for Microsoft Office 365"


def usage(
    product: str,
    devices: tuple[str, ...],
    *,
    kind: str = "commercial",
    state: str = "active",
    expires: dt.datetime | None = NOW + dt.timedelta(days=30),
    mailboxes: int = 0,
    license_id: str = "L",
) -> LicenseUsage:
    """A license used by ``devices``."""
    return LicenseUsage(
        tenant_id="t",
        license_id=license_id,
        product=product,
        kind=kind,
        state=state,
        seats=100,
        expires=expires,
        device_ids=devices,
        mailboxes=mailboxes,
    )


FLEET = {
    "pc1": WORKSTATION,
    "pc2": WORKSTATION,
    "pc3": WORKSTATION,
    "srv1": SERVER,
    "mob1": MOBILE,
}


def count(*usages: LicenseUsage, devices: dict[str, str] = FLEET) -> UsageCounts:
    """Count ``usages`` against ``devices`` as of NOW."""
    return LicenseCounter(NOW).count(usages, devices)


def test_active_commercial_devices_count_per_category() -> None:
    """Devices on an active commercial key count, split by category."""
    found = count(usage(KES, ("pc1", "pc2", "srv1", "mob1")))

    assert found.counts == {
        (KES, WORKSTATIONS): 2,
        (KES, SERVERS): 1,
        (KES, OTHER_DEVICES): 1,
    }


def test_expired_trial_suspended_and_cancelled_keys_count_nothing() -> None:
    """Trial, expired, suspended, cancelled and past-date keys count no device."""
    found = count(
        usage(KES, ("pc1",), license_id="a"),
        usage(KES, ("pc2",), kind="trial", license_id="b"),
        usage(KES, ("pc3",), state="expired", license_id="c"),
        usage(KES, ("srv1",), state="suspended", license_id="d"),
        usage(KES, ("mob1",), expires=NOW - dt.timedelta(seconds=1), license_id="e"),
        usage(KSWS, ("srv1",), state="cancelled", license_id="f"),
        usage(O365, (), state="cancelled", mailboxes=12, license_id="g"),
    )

    assert found.counts == {(KES, WORKSTATIONS): 1}
    assert found.excluded == {KES: 4, KSWS: 1}


def test_cancelled_keys_from_either_console_bill_nothing() -> None:
    """KSC's soft- and hard-cancelled subscriptions and Business Hub's cancelled
    subscription (either spelling) read as cancelled; unknown words bill nothing."""
    later = "2099-01-01T00:00:00Z"
    for state in (ksc_records.SUBSCRIPTION_STATES.keys() - {0, 1}) | {9}:
        row = {
            "KLLIC_SERIAL": f"K-{state}",
            "KLLIC_PROD_NAME": KES,
            "KLLIC_KEY_TYPE": 6,
            "KLLIC_LIMIT_DATE": later,
            "KLLIC_LICTYPE_IS_SUBSCRIPTION": True,
            "KLLIC_SUBSCRINFO_STATE": state,
            "KLLIC_SUBSCRINFO_ENDDATETYPE": 2,
        }
        key = ksc_records.parse_license("vs", row, ("pc1",), NOW)
        assert key.state == ("suspended" if state == 9 else "cancelled"), state
        assert key.kind == "commercial" and not key.billable(NOW)

    for word, read in [
        ("cancelled", "cancelled"),
        ("canceled", "cancelled"),
        ("terminated", "suspended"),
        ("active", "active"),
    ]:
        item = {
            "id": word,
            "product": KES,
            "kind": "commercial",
            "state": word,
            "seats": 5,
            "expires": "2099-01-01T00:00:00Z",
        }
        subscription = kbh_wire.parse_license("c", item, ("pc1",))
        assert subscription.state == read
        assert subscription.billable(NOW) == (read == "active")
    odd = {**item, "kind": "partner"}
    assert kbh_wire.parse_license("c", odd, ()).kind == "trial"


def test_a_device_on_two_keys_of_one_application_counts_once() -> None:
    # A re-imaged machine keeps its stable id and shows under the old and new key.
    """A device id seen under several keys of one application counts once."""
    found = count(
        usage(KES, ("pc1", "pc2"), license_id="old"),
        usage(KES, ("pc2", "pc3", "pc3"), license_id="new"),
        usage(KES, ("pc2",), kind="trial", license_id="trial"),
    )

    assert found.counts == {(KES, WORKSTATIONS): 3}
    assert found.excluded == {}


def test_removed_devices_drop_out() -> None:
    """Device ids the console no longer lists are not counted."""
    found = count(
        usage(KES, ("pc1", "pc2", "gone-1", "gone-2")), devices={"pc1": WORKSTATION}
    )

    assert found.counts == {(KES, WORKSTATIONS): 1}
    assert found.gone == 3


def test_office_365_counts_protected_mailboxes_of_billable_keys() -> None:
    """Office 365 bills protected mailboxes of billable keys only."""
    found = count(
        usage(O365, (), mailboxes=17, license_id="a"),
        usage(O365, (), mailboxes=5, license_id="b"),
        usage(O365, (), mailboxes=40, kind="trial", license_id="c"),
    )

    assert found.counts == {(O365, MAILBOXES): 22}


def test_one_item_per_application_without_categories() -> None:
    """Without categories an application's devices go to its one item."""
    choices = SyncChoices(price_book_items={KES: "KL-KESB", KSWS: "KL-KSWS"})
    found = count(usage(KES, ("pc1", "pc2", "srv1", "mob1")))

    targets, unmapped = charge_targets(found, choices)

    assert [(t.item_id, t.quantity) for t in targets] == [
        ("KL-KESB", 4),
        ("KL-KSWS", 0),
    ]
    assert unmapped == []
    assert "counted once per device id" in targets[0].rule


def test_bill_by_category_splits_items_and_falls_back_to_the_application() -> None:
    """Categories get their own items; one without falls back to the application's."""
    choices = SyncChoices(
        price_book_items={
            KES: "KL-KESB-OTHER",
            f"{KES}/workstation": "KL-KESB-WS",
            f"{KES}/server": "KL-KESB-SRV",
        },
        bill_by_category=True,
    )
    found = count(usage(KES, ("pc1", "pc2", "pc3", "srv1", "mob1")))

    targets, _ = charge_targets(found, choices)

    by_item = {t.item_id: t for t in targets}
    assert {item: t.quantity for item, t in by_item.items()} == {
        "KL-KESB-WS": 3,
        "KL-KESB-SRV": 1,
        "KL-KESB-OTHER": 1,
    }
    assert by_item["KL-KESB-WS"].label == f"{KES} (workstations)"


def test_category_items_are_ignored_unless_billing_by_category() -> None:
    """Category items are not used while billing by category is off."""
    choices = SyncChoices(
        price_book_items={KES: "KL-KESB", f"{KES}/server": "KL-KESB-SRV"},
        bill_by_category=False,
    )

    targets, _ = charge_targets(count(usage(KES, ("pc1", "srv1"))), choices)

    assert {t.item_id: t.quantity for t in targets} == {"KL-KESB": 2, "KL-KESB-SRV": 0}


def test_mailboxes_use_their_own_item_when_chosen() -> None:
    """Mailboxes go to their own item; applications without one are listed."""
    choices = SyncChoices(price_book_items={f"{O365}/mailbox": "KL-KSO365"})

    targets, unmapped = charge_targets(
        count(usage(O365, (), mailboxes=9), usage(KES, ("pc1",), license_id="k")),
        choices,
    )

    assert [(t.item_id, t.quantity) for t in targets] == [("KL-KSO365", 9)]
    assert unmapped == [(KES, WORKSTATIONS, 1)]


def test_plan_sets_quantities_never_adds_and_skips_empty_new_lines() -> None:
    """The plan sets each line to the count; a missing line at 0 is not made."""
    choices = SyncChoices(
        price_book_items={KES: "KL-KESB", KSWS: "KL-KSWS", O365: "KL-KSO365"}
    )
    targets, _ = charge_targets(count(usage(KES, ("pc1", "pc2"))), choices)
    current = [
        AdditionalCharge(detail_id=7, item_id="kl-kesb", description="", quantity=5),
        AdditionalCharge(detail_id=8, item_id="KL-KSWS", description="", quantity=3),
        AdditionalCharge(
            detail_id=9, item_id="MSP-MONITOR", description="", quantity=1
        ),
    ]

    planned = {line.item_id: line for line in plan_charges(targets, current)}

    assert (planned["kl-kesb"].before, planned["kl-kesb"].after) == (5, 2)
    assert planned["kl-kesb"].detail_id == 7 and planned["kl-kesb"].changes
    assert (planned["KL-KSWS"].before, planned["KL-KSWS"].after) == (3, 0)
    assert planned["KL-KSWS"].changes
    assert (planned["KL-KSO365"].before, planned["KL-KSO365"].after) == (None, 0)
    assert not planned["KL-KSO365"].changes
    assert "MSP-MONITOR" not in planned


def test_an_unchanged_count_plans_no_write() -> None:
    """A line already at the count needs no write."""
    choices = SyncChoices(price_book_items={KES: "KL-KESB"})
    targets, _ = charge_targets(count(usage(KES, ("pc1", "pc2"))), choices)
    current = [
        AdditionalCharge(detail_id=7, item_id="KL-KESB", description="", quantity=2)
    ]

    (line,) = plan_charges(targets, current)

    assert not line.changes


def test_an_unused_item_is_named_by_what_it_was_chosen_for() -> None:
    """An item nothing uses is labelled by the choice that names it."""
    choices = SyncChoices(
        price_book_items={f"{KES}/server": "KL-KESB-SRV"}, bill_by_category=True
    )

    (target,) = charge_targets(count(usage(KES, ("pc1",))), choices)[0]

    assert (target.item_id, target.quantity) == ("KL-KESB-SRV", 0)
    assert target.label == f"{KES} (servers)"


def test_rule_says_one_and_many_and_counts_mailboxes_as_mailboxes() -> None:
    """The preview's rule reads "1 server", "2 workstations", "1 mailbox"."""
    target = ChargeTarget(
        item_id="KL",
        quantity=4,
        parts=(
            ("KES", SERVERS, 1),
            ("KES", WORKSTATIONS, 2),
            ("O365", MAILBOXES, 1),
        ),
    )

    assert target.rule == (
        "1 server of KES; 2 workstations of KES on active commercial licenses, "
        "counted once per device id; 1 mailbox of O365 on active commercial "
        "subscriptions, as protected mailboxes"
    )
