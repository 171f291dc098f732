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
    assert label.text_content() == "Select all 2 accounts waiting for approval"
    assert select_all.getparent().get("hidden") is not None, "shown by the script"
    # Not the bottom button's words: a search by name finds either one alone.
    assert [b.text for b in buttons] == ["Approve ticked accounts"]
    assert buttons[0].get("type") == "submit"


def test_with_one_account_left_the_top_controls_go(world: World) -> None:
    path = f"/integrations/{world.integration_id}/billing"
    store = world.agent.store
    assert store is not None
    first = store.list_tenants(world.integration_id)[0]
    world.post(path, {"approve": str(first.id)}, status=302)

    boxes, buttons = top_controls(world.get(path))

    assert boxes == [] and buttons == []
