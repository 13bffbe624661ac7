"""The pages in a real browser: datasets, the grid with its query bar, the item view."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from tests.web.conftest import EVIL, N_ITEMS, Site, shoot

# The pages' CSP forbids eval, so waits are locator expectations, not wait_for_function.
pw = __import__("pytest").importorskip("playwright.sync_api")
expect = pw.expect


def _tiles(page: Any, n: int) -> None:
    expect(page.locator(".tile")).to_have_count(n)


def _grid(page: Any, site: Site, query: str = "") -> None:
    q = f"?q={quote(query)}" if query else ""
    page.goto(f"{site.url}/datasets/{site.ds}{q}")
    page.wait_for_selector(".tile img")
    for i in range(min(8, page.locator(".tile img").count())):
        expect(page.locator(".tile img").nth(i)).to_have_js_property("complete", True)


def test_datasets_page_lists_counts(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    row = page.locator(f'tr[data-dataset="{site.ds}"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[0].startswith("street scenes")
    # items, annotations, labels, slices, runs
    n_ann = site.service.dataset_info(site.ds)["annotation_count"]
    assert cells[1:6] == [str(N_ITEMS), str(n_ann), "3", "3", "2"]
    shoot(page, "datasets")
    assert not page.js_errors


def test_grid_draws_tiles_with_boxes(page: Any, site: Site) -> None:
    _grid(page, site)
    assert page.locator("#result-count").inner_text().startswith(f"{N_ITEMS} results")
    first = page.locator('.tile[data-item]').first
    # Item 0 has a person, a car and a dog.
    assert first.locator("rect.box").count() == 3
    box = first.locator("svg.boxes").get_attribute("viewBox")
    assert box == "0 0 640 480"
    shoot(page, "dataset-grid")
    page.locator("#tile-size").fill("320")
    expect(page.locator(".tile").first).to_have_css("width", re.compile(r"3[2-9]\d(\.\d+)?px"))
    assert not page.js_errors


def test_grid_loads_more_as_it_scrolls(page: Any, site: Site) -> None:
    page.set_viewport_size({"width": 1280, "height": 500})
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    page.locator("#tile-size").fill("384")
    page.mouse.wheel(0, 100_000)
    _tiles(page, N_ITEMS)
    refs = page.locator(".tile .caption").all_inner_texts()
    assert refs == [f"img_{i:03d}" for i in range(N_ITEMS)]  # a stable order, no repeats


def test_query_round_trip(page: Any, site: Site) -> None:
    _grid(page, site)
    query = 'has(label = "dog")'
    page.fill("#query", query)
    page.press("#query", "Enter")
    expected = len(range(0, N_ITEMS, 3))
    _tiles(page, expected)
    assert page.locator("#result-count").inner_text().startswith(f"{expected} results")
    assert "dog" in page.locator("#query-status .reading").inner_text()
    assert f"q={quote(query, safe='')}" in page.url.replace("%20", "+") or \
        "q=has" in page.url
    page.reload()
    _tiles(page, expected)
    assert page.input_value("#query") == query
    shoot(page, "dataset-query")
    # A bad query: its error in place, with the line, the column and what was expected.
    page.fill("#query", "count() >")
    page.press("#query", "Enter")
    status = page.locator("#query-status.error")
    status.wait_for()
    assert re.search(r"line 1, col \d+", status.inner_text())
    assert "expected" in status.inner_text()
    assert status.locator("pre.caret").inner_text().endswith("^")
    shoot(page, "dataset-query-error")
    # The grid still shows the last good query's results.
    assert page.locator(".tile").count() == expected


def test_label_filter_in_sidebar(page: Any, site: Site) -> None:
    _grid(page, site)
    page.locator('.label-filter[data-label="car"]').click()
    _tiles(page, N_ITEMS // 2)
    assert page.input_value("#query") == 'has(label = "car")'


def test_item_page_and_arrow_keys(page: Any, site: Site) -> None:
    query = 'metadata.split = "val"'
    _grid(page, site, query)
    page.locator(".tile").nth(1).click()
    page.wait_for_selector("#item-view[data-ready=true]")
    assert "/items/" in page.url and "q=" in page.url
    assert page.locator(".details .ref").inner_text() == "img_004"
    assert page.locator("#annotations li").count() == len(
        site.service.get_item(site.ds, reference_id="img_004")["annotations"]["box"])
    assert '"split": "val"' in page.locator("#metadata").inner_text()
    assert page.locator("#position").inner_text() == "2 of 10"
    # Hovering a box tells its label.
    page.locator(".figure.full rect.box").first.hover()
    assert "person" in page.locator("#tooltip").inner_text()
    shoot(page, "item")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"/items/"))
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_008"
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("#item-view[data-ready=true]")
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_000"
    assert page.locator("#prev").get_attribute("aria-disabled") == "true"
    assert not page.js_errors


def test_shared_item_link_finds_its_place(page: Any, site: Site) -> None:
    """Without the grid's record (a link from someone else), the page reads the pages."""
    item = site.service.get_item(site.ds, reference_id="img_039")["item"]
    page.goto(f"{site.url}/datasets/{site.ds}/items/{item['id']}")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator("#position").inner_text() == f"{N_ITEMS} of {N_ITEMS}"
    assert page.locator("#next").get_attribute("aria-disabled") == "true"
    page.goto(f"{site.url}/datasets/{site.ds}/items/img_001")  # by reference id
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator("#position").inner_text() == f"2 of {N_ITEMS}"


def test_html_in_names_labels_and_metadata_is_text(page: Any, site: Site) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(site.url + "/")
    assert page.get_by_text(EVIL, exact=True).first.is_visible()
    page.goto(f"{site.url}/datasets/{site.evil}")
    page.wait_for_selector(".tile")
    assert page.locator(".ds-name").inner_text() == EVIL
    assert page.locator(".label-filter .label-name").inner_text() == EVIL
    assert page.locator(".tile .caption").inner_text() == EVIL
    assert page.locator(".slice-filter .label-name").nth(1).inner_text() == EVIL
    # A run named with markup: chosen (its name quoted into a query), its box drawn.
    page.select_option("#run", EVIL)
    expect(page.locator(".tile rect.pred")).to_have_count(1)
    assert "run=" in page.url and "slice=" not in page.url
    page.locator(f'.slice-filter[data-slice]:has-text("{EVIL}")').click()
    expect(page.locator(".tile")).to_have_count(1)
    page.locator(".tile").click()
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == EVIL
    # The annotation and, with the run kept from the grid, the run's prediction.
    assert page.locator("#annotations .label-name").all_inner_texts() == [EVIL, EVIL]
    assert page.locator("#layers input[data-run]").is_checked()
    assert EVIL in page.locator("#metadata").inner_text()
    assert page.locator('img[src="x"]').count() == 0
    assert not dialogs and not page.js_errors


def test_a_name_two_datasets_share_opens_a_page_that_links_both(page: Any, site: Site
                                                                  ) -> None:
    """Dataset names are labels (two may share one): a page addressed by a shared name
    answers 409 with a link to each dataset, the name shown as text."""
    name = f"twin {EVIL}"
    ids = [site.service.create_dataset(name)["id"] for _ in range(2)]
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        for path in ("", "/runs", "/compare"):
            answer = page.goto(f"{site.url}/datasets/{quote(name, safe='')}{path}")
            assert answer.status == 409
            assert page.locator("h1").inner_text() == "Several datasets have this name"
            assert name in page.locator(".error").inner_text()
            assert page.locator(".ambiguous a").all_inner_texts() == ids
        shoot(page, "ambiguous-name")
        page.locator(".ambiguous a").nth(1).click()
        page.wait_for_selector(".ds-name")
        assert page.locator(".ds-name").inner_text() == name
        assert page.url.endswith(f"/datasets/{ids[1]}")
        assert page.locator('img[src="x"]').count() == 0
        assert not dialogs and not page.js_errors
    finally:
        for ds in ids:
            site.service.delete_dataset(ds)
