"""The billing preview with several accounts to approve: a "Select all" box and an
Approve button at the top, so a long list needs no scrolling to approve it."""

from __future__ import annotations

from lxml import html

from tests.integration.test_web_pages import World, berlin_time, world

__all__ = ["berlin_time", "world"]


def top_controls(page: str) -> tuple[list[object], list[object]]:
    """The check boxes and buttons of the form placed before the first preview."""
    tree = html.fromstring(page)
    (form,) = tree.xpath("//form[.//section[@class='preview']]")
    first = form.xpath(".//section[@class='preview']")[0]
    before = [e for e in form.iter() if e.sourceline <= first.sourceline]
    boxes = [e for e in before if e.tag == "input" and e.get("type") == "checkbox"]
    buttons = [e for e in before if e.tag == "button"]
    return boxes, buttons


def test_select_all_and_approve_sit_above_the_list(world: World) -> None:
    path = f"/integrations/{world.integration_id}/billing"

    boxes, buttons = top_controls(world.get(path))

    (select_all,) = boxes
    assert select_all.get("data-select-all") == "approve", "it ticks the Approve boxes"
    assert select_all.get("name") is None, "the box itself approves nothing"
    (label,) = select_all.getparent().xpath(f"label[@for='{select_all.get('id')}']")
    assert label.text_content() == (
        "Select all 2 accounts with billing on waiting for approval"
    )
    assert select_all.getparent().get("hidden") is not None, "shown by the script"
    # One action, one button with one name: the foot of the list repeats none.
    assert [b.text for b in buttons] == ["Approve the ticked accounts"]
    every = html.fromstring(world.get(path)).xpath("//form//button[@type='submit']")
    assert len(every) == 1
    assert buttons[0].get("type") == "submit"


def test_with_one_account_left_the_top_controls_go(world: World) -> None:
    path = f"/integrations/{world.integration_id}/billing"
    store = world.agent.store
    assert store is not None
    first = store.list_tenants(world.integration_id)[0]
    world.post(path, {"approve": str(first.id)}, status=302)

    boxes, buttons = top_controls(world.get(path))

    assert boxes == [] and buttons == []


def test_accounts_with_billing_off_are_not_counted_nor_approved(world: World) -> None:
    path = f"/integrations/{world.integration_id}/billing"
    store = world.agent.store
    assert store is not None
    off, on = store.list_tenants(world.integration_id)[:2]
    store.update_mapping(off.id, billing=False)

    page = html.fromstring(world.get(path))
    assert not page.xpath(f"//input[@id='approve-{off.id}']"), "nothing to approve"
    assert page.xpath(f"//input[@id='approve-{on.id}']")
    (section,) = page.xpath(f"//section[@aria-labelledby='p-{off.id}']")
    said = " ".join(section.text_content().split())
    assert "Billing is off for this account" in said or (
        "No charge: billing is off for this account." in said
    ), said
    assert "no price book item is chosen" not in said
    # One account left to approve: no "Select all" for a list of one.
    assert top_controls(world.get(path)) == ([], [])

    # A form that names both (an old page) approves and counts only billing on.
    world.post(path, {"approve": [str(off.id), str(on.id)]}, status=302)
    shown = world.get(path)
    assert "Approved the billing of 1 account:" in shown
    mapping = store.get_tenant(off.id).mapping
    assert mapping is not None and not mapping.billing_approved
