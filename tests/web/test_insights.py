"""The Insights tab: the insights API of the current scope as ECharts charts; clicking a
bar shows exactly that bar's rows (items or objects) in the grid."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.web.conftest import COMMITTED_RUN, EVIL, Site, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect


def _insights(page: Any, site: Site, search: str = "", ds: str | None = None) -> None:
    sep = "&" if search else ""
    page.goto(f"{site.url}/datasets/{ds or site.ds}?{search}{sep}tab=insights")
    page.wait_for_selector("#insights[data-ready=true]")


def _api(site: Site, slice: str | None = None, query: str | None = None) -> dict[str, Any]:
    return site.service.insights(site.ds, slice=slice, query=query)


def _click_bar(page: Any, chart: str, category: int, series: int = 0) -> None:
    """A real mouse click in the middle of a bar, found through the chart's own
    coordinate conversion (the bars are canvas pixels, not elements)."""
    el = page.locator(f'[data-chart="{chart}"]')
    el.scroll_into_view_if_needed()
    point = el.evaluate("""(el, [cat, series]) => {
        const c = el.echart, opt = c.getOption();
        const horizontal = opt.yAxis[0].type === "category";
        const value = opt.series[series].data[cat].value;
        let before = 0;  // stacked series start where the earlier ones end
        if (opt.series[series].stack) {
          for (let s = 0; s < series; s++) before += (opt.series[s].data[cat] || {}).value || 0;
        }
        const mid = before + value / 2;
        return c.convertToPixel({ seriesIndex: series }, horizontal ? [mid, cat] : [cat, mid]);
    }""", [category, series])
    box = el.bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])


def _shown_count(page: Any) -> int:
    """The total the grid shows (an object query's arrives after its first tiles)."""
    expect(page.locator("#result-count")).to_have_text(
        re.compile(r"^[\d,]+ (objects?|results?)\b"))
    return int(page.locator("#result-count").inner_text().split()[0].replace(",", ""))


@pytest.mark.parametrize(("search", "slice_name", "query"), [
    (f"run={COMMITTED_RUN}", None, None),  # a run adds its predictions to the labels
    ("slice={slice}", "val split", None),
    ("q=" + quote('metadata.split = "train"'), None, 'metadata.split = "train"'),
])
def test_every_chart_renders_for_each_scope(page: Any, site: Site, search: str,
                                             slice_name: str | None, query: str | None) -> None:
    slice_id = next((s["id"] for s in site.service.list_slices(site.ds)
                     if s["name"] == slice_name), "")
    _insights(page, site, search.format(slice=slice_id))
    expected = _api(site, slice=slice_name, query=query)
    assert page.locator(".insights-scope").inner_text().startswith(
        f"{expected['scope']['items']} items")
    for name in ["labels", "per-item", "area", "aspect", f"run:{COMMITTED_RUN}",
                 "metadata.split", "metadata.index"]:
        chart = page.locator(f'[data-chart="{name}"]')
        expect(chart.locator("canvas")).to_have_count(1)
        bars = chart.evaluate("el => el.echart.getOption().series.map("
                              "s => s.data.reduce((n, d) => n + ((d && d.value) || 0), 0))")
        assert sum(bars) > 0, name
    labels = page.locator('[data-chart="labels"]').evaluate(
        "el => el.echart.getOption().series[0].data.map(d => d.value)")
    assert labels == [b["count"] for b in expected["labels"]["annotations"]]
    assert page.locator('[data-panel="run:detector-b"]').inner_text().endswith(
        "Not committed: no match results yet.")
    if search.startswith("run="):
        assert page.locator('[data-chart="labels"]').evaluate(
            "el => el.echart.getOption().series.length") == 2
        shoot(page, "insights")
    assert not page.js_errors


def test_label_bar_shows_its_objects(page: Any, site: Site) -> None:
    _insights(page, site)
    bucket = _api(site)["labels"]["annotations"][1]
    _click_bar(page, "labels", 1)
    expect(page.locator("#insights")).to_be_hidden()
    expect(page.locator(".object-tile").first).to_be_visible()
    assert _shown_count(page) == bucket["count"]
    assert page.locator("#result-count").inner_text().split()[1] == "objects"
    assert "target=objects" in page.url and "tab=" not in page.url
    assert page.input_value("#query") == bucket["query"]
    labels = set(page.locator(".object-tile .label-name").all_inner_texts())
    assert labels == {bucket["label"]}
    page.reload()
    expect(page.locator(".object-tile").first).to_be_visible()
    assert _shown_count(page) == bucket["count"]
    expect(page.locator('[data-target="objects"]')).to_have_attribute("aria-pressed", "true")


def test_item_bar_shows_its_items_within_a_slice(page: Any, site: Site) -> None:
    slice_id = next(s["id"] for s in site.service.list_slices(site.ds)
                    if s["name"] == "val split")
    _insights(page, site, f"slice={slice_id}")
    buckets = _api(site, slice="val split")["annotations_per_item"]
    _click_bar(page, "per-item", 0)
    expect(page.locator(".tile[data-item]").first).to_be_visible()
    assert _shown_count(page) == buckets[0]["count"]
    assert "target=" not in page.url and f"slice={slice_id}" in page.url
    assert page.input_value("#query") == buckets[0]["query"]


def test_run_bar_shows_its_false_positives(page: Any, site: Site) -> None:
    query = 'metadata.split = "train" order by metadata.index desc'
    _insights(page, site, "q=" + quote(query))
    classes = _api(site, query=query)["runs"][COMMITTED_RUN]["classes"]
    i = next(i for i, c in enumerate(classes) if c["fp"])
    _click_bar(page, f"run:{COMMITTED_RUN}", i, series=1)  # TP, FP, FN stacked
    expect(page.locator(".object-tile").first).to_be_visible()
    assert _shown_count(page) == classes[i]["fp"]
    assert set(page.locator(".object-tile .facts .status").all_inner_texts()) == {"FP"}


def test_tab_is_in_the_url_and_survives_reload(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    page.locator('[data-tab="insights"]').click()
    page.wait_for_selector("#insights[data-ready=true]")
    assert "tab=insights" in page.url
    page.reload()
    page.wait_for_selector("#insights[data-ready=true]")
    expect(page.locator('[data-tab="insights"]')).to_have_attribute("aria-selected", "true")
    expect(page.locator("#grid-view")).to_be_hidden()
    page.go_back()
    expect(page.locator("#grid-view")).to_be_visible()


def test_html_in_labels_and_metadata_is_text(page: Any, site: Site) -> None:
    _insights(page, site, ds=site.evil)
    labels = page.locator('[data-chart="labels"]').evaluate(
        "el => el.echart.getOption().yAxis[0].data")
    assert labels == [EVIL]
    assert page.locator(f'[data-panel="metadata.{EVIL}"] h3').inner_text() == f"metadata.{EVIL}"
    # The tooltip is built as text: hovering a bar adds no element from the label.
    chart = page.locator('[data-chart="labels"]')
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = chart.locator(".chart-tooltip")
    expect(tip).to_contain_text(EVIL)
    assert tip.locator("img").count() == 0
    assert page.locator("img[src=x]").count() == 0
    assert not page.js_errors
