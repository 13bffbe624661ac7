"""The objects view (patches): one tile per object of an object query, a crop of its
image with its box (and a TP's matched partner), sortable through the query's order by;
a tile opens its item with that box highlighted."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.web.conftest import COMMITTED_RUN, EVIL, Site, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect

PREDS = f'type = prediction and run = "{COMMITTED_RUN}"'


def _objects(page: Any, site: Site, query: str = "", ds: str | None = None,
             extra: str = "") -> None:
    q = f"&q={quote(query)}" if query else ""
    page.goto(f"{site.url}/datasets/{ds or site.ds}?target=objects{q}{extra}")
    page.wait_for_selector(".object-tile")


def _api_ids(site: Site, query: str, ds: str | None = None) -> list[str]:
    out, cursor = [], None
    while True:
        page = site.service.query_objects(ds or site.ds, query, page_size=500, cursor=cursor)
        out += [o["id"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def _all_tiles(page: Any, n: int) -> list[str]:
    page.locator("#tile-size").fill("96")
    while page.locator(".object-tile").count() < n:
        before = page.locator(".object-tile").count()
        page.mouse.wheel(0, 100_000)
        expect(page.locator(".object-tile")).not_to_have_count(before)
    return [t.get_attribute("data-object") for t in page.locator(".object-tile").all()]


def test_tiles_follow_the_api_order_by_iou(page: Any, site: Site) -> None:
    query = f"{PREDS} order by iou asc"
    expected = _api_ids(site, query)
    assert len(expected) > 60  # more than one page
    _objects(page, site, query)
    # The total is counted apart, after the first tiles (grid.js countObjects).
    expect(page.locator("#result-count")).to_have_text(
        re.compile(rf"^{len(expected)} objects"))
    assert _all_tiles(page, len(expected)) == expected
    ious = [float(t.split()[1]) for t in page.locator(".object-tile .facts span:nth-child(2)")
            .all_inner_texts()]
    assert ious == sorted(ious)
    expect(page.locator("#sort")).to_have_value("iou asc")


def test_tile_is_a_crop_with_its_box_and_partner(page: Any, site: Site) -> None:
    _objects(page, site, f"{PREDS} and status = tp")
    tile = page.locator(".object-tile").first
    obj = site.service.query_objects(site.ds, f"{PREDS} and status = tp",
                                     page_size=1)["objects"][0]
    assert tile.get_attribute("data-object") == obj["id"]
    # The crop centres the object and its partner with a margin, in image pixels.
    x, y, side, _ = map(float, tile.locator("svg.boxes.patch-svg").get_attribute("viewBox").split())
    g = obj["geometry"]
    assert x < g["x"] and y < g["y"] and x + side > g["x"] + g["width"]
    assert side < 640
    focus = tile.locator("rect.focus")
    assert focus.get_attribute("class") == "box pred tp focus"
    partner = tile.locator("rect.partner")
    assert partner.get_attribute("data-annotation") == obj["match"]["id"]
    assert partner.get_attribute("class") == "box gt tp partner"
    expect(tile.locator("image")).to_have_attribute("href", f"/api/v1/items/{obj['item_id']}/"
                                                    "thumbnail?size=512")
    facts = tile.locator(".facts").inner_text()
    assert "TP" in facts and f"IoU {obj['iou']:.2f}" in facts
    assert f"conf {obj['confidence']:.2f}" in facts


def test_sort_select_rewrites_the_order_by(page: Any, site: Site) -> None:
    _objects(page, site, f"{PREDS} and status = fp order by iou asc")
    page.select_option("#sort", "confidence desc")
    expect(page.locator("#query")).to_have_value(f"{PREDS} and status = fp "
                                                  "order by confidence desc")
    expected = _api_ids(site, f"{PREDS} and status = fp order by confidence desc")
    assert expected != _api_ids(site, f"{PREDS} and status = fp order by iou asc")
    # Same objects, another order: wait for the new first tile, then compare all.
    expect(page.locator(".object-tile").first).to_have_attribute("data-object", expected[0])
    expect(page.locator(".object-tile")).to_have_count(len(expected))
    assert [t.get_attribute("data-object") for t in page.locator(".object-tile").all()] == \
        expected
    assert "confidence+desc" in page.url or "confidence%20desc" in page.url
    page.select_option("#sort", "")
    expect(page.locator("#query")).to_have_value(f"{PREDS} and status = fp")


def test_screenshot(page: Any, site: Site) -> None:
    _objects(page, site, f"{PREDS} order by confidence desc", extra=f"&run={COMMITTED_RUN}")
    page.locator("#tile-size").fill("176")
    page.locator("#tile-size").blur()
    page.wait_for_load_state("networkidle")
    shoot(page, "patches")
    assert not page.js_errors


def test_items_objects_toggle_keeps_the_scope(page: Any, site: Site) -> None:
    val = quote('metadata.split = "val"')
    page.goto(f"{site.url}/datasets/{site.ds}?q={val}")
    page.wait_for_selector(".tile[data-item]")
    page.locator('[data-target="objects"]').click()
    expect(page.locator("#query")).to_have_value('item(metadata.split = "val")')
    expect(page.locator(".object-tile").first).to_be_visible()
    n = site.service.query_objects(site.ds, 'item(metadata.split = "val")',
                                   page_size=1, with_total=True)["total"]
    expect(page.locator("#result-count")).to_have_text(re.compile(rf"^{n} objects"))
    assert "target=objects" in page.url
    page.reload()
    expect(page.locator('[data-target="objects"]')).to_have_attribute("aria-pressed", "true")
    page.locator('[data-target="items"]').click()
    expect(page.locator("#query")).to_have_value('has(item(metadata.split = "val"))')


def test_tile_opens_its_item_with_the_box_highlighted(page: Any, site: Site) -> None:
    query = f"{PREDS} and status = fp order by confidence desc"
    _objects(page, site, query)
    tile = page.locator(".object-tile").first
    obj_id = tile.get_attribute("data-object")
    tile.click()
    page.wait_for_selector("#item-view[data-ready=true]")
    assert f"box={obj_id}" in page.url and f"run={COMMITTED_RUN}" in page.url
    picked = page.locator(f'.stage rect[data-annotation="{obj_id}"]')
    expect(picked).to_have_class(re.compile(r"\bfp\b.*\bpicked\b"))
    expect(page.locator(f'.annotations li[data-annotation="{obj_id}"]')).to_have_class(
        re.compile(r"\bpicked\b"))
    assert page.locator(".picked").count() == 2
    shoot(page, "patches-item")
    page.locator("#back-link").click()
    page.wait_for_selector(".object-tile")
    assert "target=objects" in page.url
    expect(page.locator("#query")).to_have_value(query)


def test_ground_truth_tiles_and_html_as_text(page: Any, site: Site) -> None:
    _objects(page, site, ds=site.evil)
    tile = page.locator(".object-tile")
    expect(tile).to_have_count(1)
    assert tile.locator(".label-name").inner_text() == EVIL
    assert tile.get_attribute("title").startswith(EVIL)
    assert page.locator("img[src=x]").count() == 0
    assert not page.js_errors


def test_an_object_slice_link_shows_its_objects(page: Any, site: Site) -> None:
    """The URL other pages link to: an object slice (the run's missed ground truth)."""
    missed = next(s for s in site.service.list_slices(site.ds) if s["name"] == "missed")
    page.goto(f"{site.url}/datasets/{site.ds}?target=objects&slice={missed['id']}"
              f"&run={COMMITTED_RUN}")
    page.wait_for_selector(".object-tile")
    n = site.service.query_objects(site.ds, "", slice=missed["id"], page_size=1,
                                   with_total=True)["total"]
    assert n > 0
    expect(page.locator("#result-count")).to_have_text(re.compile(rf"^{n} objects"))
    assert set(page.locator(".object-tile .facts .status").all_inner_texts()) == {"FN"}
    assert not page.js_errors


@pytest.mark.parametrize(("query", "order", "expected"), [
    ('label = "order by x"', "iou asc", 'label = "order by x" order by iou asc'),
    ("status = fp order by iou asc", "area desc", "status = fp order by area desc"),
    ("status = fp ORDER  BY confidence desc limit 5", "", "status = fp limit 5"),
    ("status = fp limit 5", "iou desc", "status = fp order by iou desc limit 5"),
    ("order by iou", "", ""),
])
def test_sort_rewrites_only_the_order_by(page: Any, site: Site, query: str, order: str,
                                          expected: str) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    got = page.evaluate("""async ([q, o]) => {
        const m = await import("/static/objects.js");
        return [m.withOrder(q, o), m.orderOf(m.withOrder(q, o))];
    }""", [query, order])
    assert got == [expected, order]
