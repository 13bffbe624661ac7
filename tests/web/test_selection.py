"""Selecting results on the grid and making slices of them, in a real browser: click,
shift-click and ctrl-click tiles, select all results, then a new slice, add to one,
remove from one; the API holds exactly what was chosen."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from tests.web.conftest import EVIL, N_ITEMS, Site, shoot

pw = __import__("pytest").importorskip("playwright.sync_api")
expect = pw.expect


def _grid(page: Any, site: Site, query: str = "", slice_id: str = "") -> None:
    params = [f"q={quote(query)}"] if query else []
    params += [f"slice={slice_id}"] if slice_id else []
    page.goto(f"{site.url}/datasets/{site.ds}" + ("?" + "&".join(params) if params else ""))
    page.wait_for_selector(".tile")
    expect(page.locator("#result-count")).to_contain_text("result")


def _tile(page: Any, ref: str) -> Any:
    return page.locator(f'.tile[data-ref="{ref}"]')


def _slice(site: Site, name: str) -> dict[str, Any]:
    return next(s for s in site.service.list_slices(site.ds) if s["name"] == name)


def _refs(site: Site, slice_id: str) -> list[str]:
    return [it["reference_id"] for it in site.service.slice_items(slice_id)]


def _total(site: Site, query: str, slice_id: str | None = None) -> int:
    return site.service.query_items(site.ds, query, slice=slice_id, page_size=1,
                                    with_total=True)["total"]


def _new_slice(page: Any, name: str) -> None:
    page.locator("#sel-new").click()
    page.fill("#new-slice-name", name)
    page.locator("#new-slice-form button[type=submit]").click()


def test_click_and_shift_click_make_a_slice(page: Any, site: Site) -> None:
    _grid(page, site)
    _tile(page, "img_002").locator(".tile-check").click()
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    # Shift-click on the image: the range from the last tile clicked, not the item page.
    _tile(page, "img_004").locator("img").click(modifiers=["Shift"])
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    assert "/items/" not in page.url
    # Ctrl-click toggles one tile, in and out again.
    _tile(page, "img_009").locator("img").click(modifiers=["Control"])
    expect(page.locator("#selection-count")).to_have_text("4 selected")
    _tile(page, "img_009").locator("img").click(modifiers=["Control"])
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    assert page.locator(".tile.selected").evaluate_all(
        "ts => ts.map(t => t.dataset.ref)") == ["img_002", "img_003", "img_004"]
    expect(_tile(page, "img_003").locator(".tile-check")).to_have_attribute(
        "aria-checked", "true")
    page.evaluate("() => window.scrollTo(0, 0)")  # clicks scrolled the tiles into view
    _tile(page, "img_006").hover()
    shoot(page, "grid-selection")

    _new_slice(page, "three picked")
    expect(page.locator("#action-message")).to_have_text(
        "Created slice “three picked” with 3 items.")
    created = _slice(site, "three picked")
    assert created["length"] == 3
    assert _refs(site, created["id"]) == ["img_002", "img_003", "img_004"]
    # The sidebar lists it with its count; the selection is cleared.
    entry = page.locator(f'.slice-filter[data-slice="{created["id"]}"]')
    expect(entry.locator(".n")).to_have_text("3")
    expect(page.locator("#slice-count")).to_have_text(str(len(site.service.list_slices(site.ds))))
    expect(page.locator("#selection-bar")).to_be_hidden()
    expect(page.locator(".tile.selected")).to_have_count(0)

    # A taken name: the server's error in place, the selection kept, nothing written.
    _tile(page, "img_010").locator(".tile-check").click()
    _new_slice(page, "three picked")
    expect(page.locator("#selection-error")).to_contain_text("already has a slice named")
    shoot(page, "grid-selection-error")
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    assert _slice(site, "three picked")["length"] == 3
    # A plain click on an image still opens the item.
    _tile(page, "img_011").locator("img").click()
    page.wait_for_url(re.compile(r"/items/"))
    assert not page.js_errors


def test_select_all_results_sends_the_query_not_ids(page: Any, site: Site) -> None:
    query = 'has(label = "car")'
    _grid(page, site, query)
    total = _total(site, query)
    page.locator("#select-all").click()
    expect(page.locator("#selection-count")).to_have_text(f"All {total} results selected")
    expect(page.locator(".tile.selected")).to_have_count(total)
    shoot(page, "grid-select-all")
    page.locator("#sel-new").click()
    page.fill("#new-slice-name", "all cars")
    with page.expect_request(lambda r: r.method == "POST" and "/slices" in r.url) as sent:
        page.locator("#new-slice-form button[type=submit]").click()
    assert sent.value.url.endswith("/slices/from_query")
    assert json.loads(sent.value.post_data) == {"name": "all cars", "query": query,
                                                "slice": None, "target": "items"}
    expect(page.locator("#action-message")).to_contain_text(f"with {total} items")
    made = _slice(site, "all cars")
    assert made["length"] == total == N_ITEMS // 2
    assert _refs(site, made["id"]) == [
        it["reference_id"] for it in site.service.query_items(site.ds, query,
                                                              page_size=1000)["items"]]
    # Unticking one tile of "all results" leaves the others selected.
    page.locator("#select-all").click()
    _tile(page, "img_000").locator(".tile-check").click()
    expect(page.locator("#selection-count")).to_have_text(f"{total - 1} selected")
    page.keyboard.press("Escape")  # clears the selection
    expect(page.locator("#selection-bar")).to_be_hidden()
    expect(page.locator(".tile.selected")).to_have_count(0)


def test_add_to_a_slice(page: Any, site: Site) -> None:
    target = site.service.create_slice(site.ds, "to fill", ["img_039"])
    _grid(page, site)
    _tile(page, "img_000").locator("img").click(modifiers=["Control"])
    _tile(page, "img_001").locator("img").click(modifiers=["Control"])
    page.select_option("#add-slice", label="to fill")
    page.locator("#sel-add").click()
    expect(page.locator("#action-message")).to_have_text("Added 2 items to “to fill”.")
    assert _refs(site, target["id"]) == ["img_000", "img_001", "img_039"]
    expect(page.locator(f'.slice-filter[data-slice="{target["id"]}"] .n')).to_have_text("3")
    # All results of a query within a slice: the slice's val items with index < 20.
    val = _slice(site, "val split")
    _grid(page, site, "metadata.index < 20", val["id"])
    page.locator("#select-all").click()
    page.select_option("#add-slice", label="to fill")
    page.locator("#sel-add").click()
    expect(page.locator("#action-message")).to_contain_text("Added 4 items")
    assert _refs(site, target["id"]) == ["img_000", "img_001", "img_004", "img_008",
                                         "img_012", "img_016", "img_039"]
    # The slice in scope is not offered as a target; once another is, it is.
    assert "val split" not in page.locator("#add-slice option").all_inner_texts()
    page.locator(".slice-filter").filter(has_text="portrait").click()
    expect(page.locator("#add-slice option").filter(has_text="val split")).to_have_count(1)
    expect(page.locator("#add-slice option").filter(has_text="portrait")).to_have_count(0)
    assert not page.js_errors


def test_remove_from_the_slice_in_scope(page: Any, site: Site) -> None:
    refs = [f"img_{i:03d}" for i in range(12)]
    scope = site.service.create_slice(site.ds, "to empty", refs)
    _grid(page, site, "", scope["id"])
    expect(page.locator(".tile")).to_have_count(12)
    _tile(page, "img_001").locator(".tile-check").click()
    _tile(page, "img_003").locator(".tile-check").click(modifiers=["Shift"])
    page.locator("#sel-remove").click()
    expect(page.locator("#action-message")).to_have_text("Removed 3 items from this slice.")
    expect(page.locator(".tile")).to_have_count(9)  # the grid shows the slice as it is now
    assert _refs(site, scope["id"]) == [r for r in refs if r not in
                                        ("img_001", "img_002", "img_003")]
    # All results of a query in the slice: out by the query, in the database.
    _grid(page, site, 'metadata.split = "val"', scope["id"])
    n = _total(site, 'metadata.split = "val"', scope["id"])
    page.locator("#select-all").click()
    with page.expect_request(lambda r: "remove_query" in r.url) as sent:
        page.locator("#sel-remove").click()
    assert json.loads(sent.value.post_data) == {"query": 'metadata.split = "val"'}
    expect(page.locator("#action-message")).to_have_text(f"Removed {n} items from this slice.")
    expect(page.locator(".empty")).to_have_text("No items match.")
    assert _slice(site, "to empty")["length"] == 9 - n
    expect(page.locator(f'.slice-filter[data-slice="{scope["id"]}"] .n')).to_have_text(
        str(9 - n))
    # Without a slice in scope there is nothing to remove from.
    _grid(page, site)
    _tile(page, "img_000").locator(".tile-check").click()
    expect(page.locator("#sel-remove")).to_be_hidden()


def test_a_slice_named_with_html_is_text(page: Any, site: Site) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _grid(page, site)
    _tile(page, "img_005").locator(".tile-check").click()
    _new_slice(page, EVIL)
    expect(page.locator("#action-message")).to_have_text(f"Created slice “{EVIL}” with 1 item.")
    made = _slice(site, EVIL)
    entry = page.locator(f'.slice-filter[data-slice="{made["id"]}"]')
    expect(entry.locator(".label-name")).to_have_text(EVIL)
    assert page.locator("#slices img, #add-slice img, .toolbar img").count() == 0
    assert EVIL in page.locator("#add-slice option").all_inner_texts()
    entry.click()
    expect(page.locator(".tile")).to_have_count(1)
    assert not dialogs and not page.js_errors
