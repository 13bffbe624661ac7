"""The objects view's selection, in a real browser: picked tiles (click, shift-click) or
all results become an object slice, are added to one or taken out of the one in view,
and the API holds exactly those objects; from an object's item page, ← / → step through
the objects view's objects."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.web.conftest import COMMITTED_RUN, Site, shoot

pw = __import__("pytest").importorskip("playwright.sync_api")
expect = pw.expect

FPS = (f'type = prediction and run = "{COMMITTED_RUN}" and status = fp '
       "order by confidence desc")


def _objects(page: Any, site: Site, query: str = "", slice_id: str = "") -> None:
    params = ["target=objects"] + ([f"q={quote(query)}"] if query else [])
    params += [f"slice={slice_id}"] if slice_id else []
    page.goto(f"{site.url}/datasets/{site.ds}?" + "&".join(params))
    page.wait_for_selector(".object-tile")
    expect(page.locator("#result-count")).to_contain_text("object")


def _api_ids(site: Site, query: str, slice_id: str | None = None) -> list[str]:
    out, cursor = [], None
    while True:
        page = site.service.query_objects(site.ds, query, slice=slice_id, page_size=500,
                                          cursor=cursor)
        out += [o["id"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def _slice(site: Site, name: str) -> dict[str, Any]:
    return next(s for s in site.service.list_slices(site.ds) if s["name"] == name)


def _held(site: Site, slice_id: str) -> set[str]:
    return set(_api_ids(site, "type in [annotation, prediction]", slice_id))


def _new_slice(page: Any, name: str) -> None:
    page.locator("#sel-new").click()
    page.fill("#new-slice-name", name)
    page.locator("#new-slice-form button[type=submit]").click()


def test_picked_tiles_make_an_object_slice_and_leave_it(page: Any, site: Site) -> None:
    expected = _api_ids(site, FPS)
    assert len(expected) >= 4
    _objects(page, site, FPS)
    tiles = page.locator(".object-tile")
    tiles.nth(0).locator(".tile-check").click()
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    # Shift-click on the crop: the range from the last tile, not the item page.
    tiles.nth(2).locator("svg").click(modifiers=["Shift"])
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    assert "/items/" not in page.url
    assert page.locator(".object-tile.selected").evaluate_all(
        "ts => ts.map(t => t.dataset.object)") == expected[:3]
    shoot(page, "objects-selection")

    _new_slice(page, "worst three fps")
    expect(page.locator("#action-message")).to_have_text(
        "Created object slice “worst three fps” with 3 objects.")
    created = _slice(site, "worst three fps")
    assert created["kind"] == "object" and created["length"] == 3
    assert _held(site, created["id"]) == set(expected[:3])

    # In the slice's own view, a picked tile is taken out of it.
    _objects(page, site, slice_id=created["id"])
    expect(page.locator(".object-tile")).to_have_count(3)
    gone = page.locator(".object-tile").nth(1).get_attribute("data-object")
    page.locator(".object-tile").nth(1).locator(".tile-check").click()
    expect(page.locator("#sel-remove")).to_be_visible()
    page.locator("#sel-remove").click()
    expect(page.locator("#action-message")).to_have_text("Removed 1 object from this slice.")
    assert _held(site, created["id"]) == set(expected[:3]) - {gone}
    expect(page.locator(".object-tile")).to_have_count(2)
    assert not page.js_errors


def test_all_results_are_added_to_an_object_slice_by_query(page: Any, site: Site) -> None:
    site.service.create_slice_from_query(site.ds, "fp target", f"{FPS} limit 2",
                                         target="objects")
    target = _slice(site, "fp target")
    query = f'type = prediction and run = "{COMMITTED_RUN}" and status = tp'
    tps = _api_ids(site, query)
    _objects(page, site, query)
    page.locator("#select-all").click()
    expect(page.locator("#selection-count")).to_have_text(
        f"All {len(tps):,} results selected")
    # The chooser offers object slices here, not item slices.
    options = page.locator("#add-slice option").evaluate_all("os => os.map(o => o.value)")
    kinds = {s["id"]: s["kind"] for s in site.service.list_slices(site.ds)}
    assert target["id"] in options and {kinds[o] for o in options if o} == {"object"}
    page.select_option("#add-slice", target["id"])
    page.locator("#sel-add").click()
    expect(page.locator("#action-message")).to_have_text(
        f"Added {len(tps):,} objects to “fp target”.")
    assert _held(site, target["id"]) == set(_api_ids(site, f"{FPS} limit 2")) | set(tps)
    assert not page.js_errors


def test_item_page_steps_through_the_objects(page: Any, site: Site) -> None:
    expected = _api_ids(site, FPS)
    objs = {o["id"]: o for o in site.service.query_objects(site.ds, FPS, page_size=500)[
        "objects"]}
    _objects(page, site, FPS)
    page.locator(".object-tile").first.locator(".tile-link").click()
    page.wait_for_selector("#item-view[data-ready=true]")
    assert f"box={expected[0]}" in page.url
    expect(page.locator("#position")).to_have_text(f"1 of {len(expected)}")
    expect(page.locator("#prev")).to_have_attribute("aria-disabled", "true")
    assert f"box={expected[1]}" in page.locator("#next").get_attribute("href")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**box={expected[1]}**")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert f"/items/{objs[expected[1]]['item_id']}?" in page.url
    expect(page.locator("#position")).to_have_text(f"2 of {len(expected)}")
    picked = page.locator(f'.stage rect[data-annotation="{expected[1]}"]')
    expect(picked).to_have_class(__import__("re").compile(r"\bpicked\b"))
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"**box={expected[0]}**")
    page.wait_for_selector("#item-view[data-ready=true]")
    expect(page.locator("#position")).to_have_text(f"1 of {len(expected)}")
    # Back in the objects view, the query is as it was.
    page.locator("#back-link").click()
    page.wait_for_selector(".object-tile")
    expect(page.locator("#query")).to_have_value(FPS)
    assert not page.js_errors
