"""Runs and slices in the browser: predictions coloured by match, the legend, the run
and the slice kept in the URL (reload, ← / →), and the grid scoped to a slice."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.web.conftest import COMMITTED_RUN, N_ITEMS, OPEN_RUN, Site, shoot

pw = __import__("pytest").importorskip("playwright.sync_api")
expect = pw.expect


def _statuses(site: Site, query: str) -> Counter[tuple[str, str]]:
    """(item id, status) counts of an object query, from the service (the truth)."""
    page = site.service.query_objects(site.ds, query, page_size=10_000)
    return Counter((o["item_id"], str(o["status"])) for o in page["objects"])


def _grid_with_run(page: Any, site: Site, run: str) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    page.select_option("#run", run)
    expect(page.locator(".tile rect.pred").first).to_be_attached()
    expect(page.locator(".tile")).to_have_count(N_ITEMS)


def _tile_counts(page: Any, selector: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for tile in page.locator(".tile").all():
        item = tile.get_attribute("data-item")
        for status in ("tp", "fp", "fn", "unmatched"):
            n = tile.locator(f"{selector}.{status}").count()
            if n:
                counts[(item, status)] = n
    return counts


def test_committed_run_colours_boxes_by_match(page: Any, site: Site) -> None:
    _grid_with_run(page, site, COMMITTED_RUN)
    assert f"run={COMMITTED_RUN}" in page.url
    preds = _statuses(site, f'type = prediction and run = "{COMMITTED_RUN}"')
    gt = _statuses(site, f'type = annotation and run = "{COMMITTED_RUN}"')
    assert {s for _, s in preds} == {"tp", "fp"} and "fn" in {s for _, s in gt}
    assert _tile_counts(page, "rect.pred") == preds
    drawn_gt = _tile_counts(page, "rect.gt")
    assert drawn_gt == Counter({k: n for k, n in gt.items() if k[1] in ("tp", "fn")})
    legend = page.locator("#legend")
    expect(legend).to_be_visible()
    assert "false positive" in legend.inner_text() and "missed" in legend.inner_text()
    # Colours come from the stylesheet: TP and FP differ, and FN is dashed.
    tp = page.locator(".tile rect.pred.tp").first
    fp = page.locator(".tile rect.pred.fp").first
    assert tp.evaluate("e => getComputedStyle(e).stroke") != \
        fp.evaluate("e => getComputedStyle(e).stroke")
    fn = page.locator(".tile rect.gt.fn").first
    assert fn.evaluate("e => getComputedStyle(e).strokeDasharray") != "none"
    shoot(page, "dataset-grid-run")
    page.reload()
    expect(page.locator(".tile rect.pred").first).to_be_attached()
    assert page.input_value("#run") == COMMITTED_RUN
    expect(page.locator(".tile")).to_have_count(N_ITEMS)
    assert _tile_counts(page, "rect.pred") == preds
    assert not page.js_errors


def test_uncommitted_run_draws_plain_predictions(page: Any, site: Site) -> None:
    _grid_with_run(page, site, OPEN_RUN)
    preds = _statuses(site, f'type = prediction and run = "{OPEN_RUN}"')
    assert {s for _, s in preds} == {"None"}
    assert _tile_counts(page, "rect.pred") == Counter(
        {(item, "unmatched"): n for (item, _), n in preds.items()})
    assert page.locator(".tile rect.gt.fn, .tile rect.pred.tp").count() == 0
    assert "not committed" in page.locator("#legend").inner_text()
    # Back to ground truth only: no predictions, no legend, no run in the URL.
    page.select_option("#run", "")
    expect(page.locator(".tile rect.pred")).to_have_count(0)
    expect(page.locator("#legend")).to_be_hidden()
    assert "run=" not in page.url


def test_item_view_keeps_the_run_and_tells_match(page: Any, site: Site) -> None:
    _grid_with_run(page, site, COMMITTED_RUN)
    page.locator(".tile").first.click()
    page.wait_for_selector("#item-view[data-ready=true]")
    assert f"run={COMMITTED_RUN}" in page.url
    expect(page.locator(f'#layers input[data-run="{COMMITTED_RUN}"]')).to_be_checked()
    item = page.locator("#item-view").get_attribute("data-item")
    preds = _statuses(site, f'item(id = "{item}") and type = prediction '
                            f'and run = "{COMMITTED_RUN}"')
    assert page.locator(".figure.full rect.pred").count() == sum(preds.values())
    expect(page.locator("#legend")).to_be_visible()
    page.locator(".figure.full rect.pred.tp").first.hover()
    tip = page.locator("#tooltip").inner_text()
    assert "confidence" in tip and "IoU" in tip and "status TP" in tip
    shoot(page, "item-run")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**/items/**run={COMMITTED_RUN}*")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_001"
    assert page.locator(".figure.full rect.pred").count() > 0
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_000"
    assert f"run={COMMITTED_RUN}" in page.url
    assert not page.js_errors


def test_slice_scopes_the_grid(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    sl = next(s for s in site.service.list_slices(site.ds) if s["name"] == "val split")
    button = page.locator(f'.slice-filter[data-slice="{sl["id"]}"]')
    assert button.locator(".n").inner_text() == str(sl["length"])
    # An object slice is listed, but cannot scope a grid of items.
    assert "missed" in page.locator(".object-slice").inner_text()
    button.click()
    expect(page.locator(".tile")).to_have_count(sl["length"])
    members = {it["id"] for it in site.service.slice_items(sl["id"])}
    assert {t.get_attribute("data-item") for t in page.locator(".tile").all()} == members
    assert f"slice={sl['id']}" in page.url
    assert page.locator("#result-count").inner_text().startswith(f"{sl['length']} results")
    expect(button).to_have_attribute("aria-pressed", "true")
    assert "val split" in page.locator("#query-status").inner_text()
    shoot(page, "dataset-slice")
    # The slice and a query together; a reload keeps both.
    page.fill("#query", 'has(label = "dog")')
    page.press("#query", "Enter")
    expect(page.locator(".tile")).to_have_count(len(range(0, N_ITEMS, 12)))
    page.reload()
    expect(page.locator(".tile")).to_have_count(len(range(0, N_ITEMS, 12)))
    # ← / → in the item view stay in the slice.
    page.locator(".tile").nth(1).click()
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator("#position").inner_text() == "2 of 4"
    assert "val split" in page.locator("#scope").inner_text()
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_024"
    # All items again.
    page.goto(f"{site.url}/datasets/{site.ds}?slice={sl['id']}")
    page.locator('.slice-filter[data-slice=""]').click()
    expect(page.locator(".tile")).to_have_count(N_ITEMS)
    assert "slice=" not in page.url
    assert not page.js_errors
