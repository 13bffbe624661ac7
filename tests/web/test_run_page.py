"""The runs list and the run page in the browser: the API's numbers on the page, charts
drawn, scope and label version kept in the URL, confusion cells and failure numbers that
open exactly their objects, an uncommitted run, and markup in names shown as text."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from ocula.core.types import BoxAnnotation, payload_to_annotation
from tests.web.conftest import COMMITTED_RUN, EVIL, OPEN_RUN, Site, count_objects, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect
STATS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


@pytest.fixture(scope="module", autouse=True)
def _more(site: Site) -> None:
    """A second label version (more dogs: the run misses them), so version 1 and the
    current labels score differently; and the run of the dataset named with markup
    committed, so its page draws charts with that label."""
    site.service.annotate(site.ds, [
        BoxAnnotation("dog", 20, 300, 90, 90, reference_id=f"img_{i:03d}")
        for i in range(1, 40, 6)])
    evil_run = site.service.list_runs(site.evil)[0]["id"]
    site.service.commit_run(evil_run)


def _run_id(site: Site, name: str, ds: str | None = None) -> str:
    return next(r["id"] for r in site.service.list_runs(ds or site.ds) if r["name"] == name)


def _slice_id(site: Site, name: str) -> str:
    return next(s["id"] for s in site.service.list_slices(site.ds) if s["name"] == name)


def _metrics(page: Any, site: Site, run: str, **params: str) -> dict[str, Any]:
    """The metrics as the API gives them (over HTTP, with the page's session)."""
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items() if v)
    answer = page.context.request.get(f"{site.url}/api/v1/runs/{run}/metrics?{query}")
    assert answer.ok, answer.text()
    return answer.json()


def _count(page: Any, site: Site, query: str, slice_id: str | None) -> int:
    return count_objects(page, site, site.ds, query, slice_id)


def _f(value: float) -> str:
    return "—" if value < 0 else f"{value:.3f}"


def _open_run(page: Any, site: Site, search: str = "") -> None:
    page.goto(f"{site.url}/datasets/{site.ds}/runs/{COMMITTED_RUN}{search}")
    expect(page.locator("#run-page")).to_have_attribute("data-loaded", re.compile(".*"))


def _shown_stats(page: Any) -> dict[str, str]:
    return {t.get_attribute("data-key"): t.locator(".stat-value").inner_text()
            for t in page.locator(".stat-tile").all()}


def test_runs_list_shows_the_apis_numbers(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.click("#runs-link")
    expect(page).to_have_url(f"{site.url}/datasets/{site.ds}/runs")
    run = _run_id(site, COMMITTED_RUN)
    row = page.locator(f'.run-row[data-run-id="{run}"]')
    expect(row.locator('[data-key="AP"]')).not_to_have_text("…")
    m = _metrics(page, site, run)
    for key in ("AP", "AP50", "AP75", "AR100"):
        expect(row.locator(f'[data-key="{key}"]')).to_have_text(_f(m["stats"][key]))
    for key in ("tp", "fp", "fn"):
        expect(row.locator(f'[data-key="{key}"]')).to_have_text(str(m["operating_point"][key]))
    open_row = page.locator(f'.run-row[data-run-id="{_run_id(site, OPEN_RUN)}"]')
    expect(open_row).to_contain_text("Not committed")
    # On a slice: the URL names it and the numbers are the slice's.
    val = _slice_id(site, "val split")
    page.select_option("#scope-slice", val)
    expect(page).to_have_url(re.compile(f"slice={val}"))
    mv = _metrics(page, site, run, slice=val)
    assert mv["stats"]["AP"] != m["stats"]["AP"] or mv["operating_point"] != m["operating_point"]
    expect(row.locator('[data-key="fn"]')).to_have_text(str(mv["operating_point"]["fn"]))
    expect(row.locator('[data-key="AP"]')).to_have_text(_f(mv["stats"]["AP"]))
    # The run's link carries the scope.
    assert f"slice={val}" in row.locator(".run-link").evaluate("a => a.href")
    assert not page.js_errors


def test_run_page_numbers_and_charts(page: Any, site: Site) -> None:
    _open_run(page, site)
    m = _metrics(page, site, _run_id(site, COMMITTED_RUN))
    assert _shown_stats(page) == {k: _f(m["stats"][k]) for k in STATS}
    rows = page.locator("#per-class tbody tr")
    expect(rows).to_have_count(len(m["per_class"]))
    for r in m["per_class"]:
        cells = page.locator(f'#per-class tr[data-label="{r["label"]}"] td')
        assert cells.nth(3).inner_text() == _f(r["ap"])
        assert cells.nth(6).inner_text() == str(r["at_threshold"]["tp"])
    for chart in ("#pr-chart", "#threshold-chart", "#confusion-chart"):
        canvas = page.locator(f"{chart} canvas").first
        expect(canvas).to_be_attached()
        painted = canvas.evaluate("""c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""")
        assert painted > 1000, chart
    best = m["best_f1"]
    expect(page.locator("#best-f1")).to_contain_text(f"{best['score_threshold']:.3f}")
    assert not page.js_errors
    shoot(page, "web-run")


def _shows(page: Any, loaded: str, metrics: dict[str, Any]) -> None:
    """The page has drawn the scope ``loaded`` ("slice|version|query") with these
    metrics' 12 numbers."""
    expect(page.locator("#run-page")).to_have_attribute("data-loaded", loaded)
    assert _shown_stats(page) == {k: _f(metrics["stats"][k]) for k in STATS}


def test_scope_and_version_live_in_the_url(page: Any, site: Site) -> None:
    run = _run_id(site, COMMITTED_RUN)
    _open_run(page, site)
    current = _metrics(page, site, run)
    page.select_option("#scope-version", "1")
    expect(page).to_have_url(re.compile(r"version=1"))
    v1 = _metrics(page, site, run, annotation_version="1")
    assert v1["stats"] != current["stats"]  # the dogs added later are not in version 1
    _shows(page, "|1|", v1)
    val = _slice_id(site, "val split")
    page.select_option("#scope-slice", val)
    both = _metrics(page, site, run, slice=val, annotation_version="1")
    assert both["stats"] != v1["stats"]
    _shows(page, f"{val}|1|", both)
    page.reload()
    _shows(page, f"{val}|1|", both)
    assert page.locator("#scope-slice").input_value() == val
    assert page.locator("#scope-version").input_value() == "1"
    page.go_back()
    _shows(page, "|1|", v1)
    assert page.locator("#scope-slice").input_value() == ""
    # An item query as scope: in the URL, and the API's numbers for it.
    query = 'metadata.split = "val" and has(label = "dog")'
    page.fill("#scope-query", query)
    page.click("#scope-bar button[type=submit]")
    scoped = _metrics(page, site, run, query=query, annotation_version="1")
    assert scoped["stats"] != v1["stats"]
    _shows(page, f"|1|{query}", scoped)
    assert parse_qs(urlsplit(page.url).query)["q"] == [query]
    page.reload()
    _shows(page, f"|1|{query}", scoped)
    assert page.locator("#scope-query").input_value() == query
    # A bad query is an error on the page, not a broken page.
    page.fill("#scope-query", "label = ")
    page.click("#scope-bar button[type=submit]")
    expect(page.locator("#run-status")).to_have_class(re.compile("error"))
    assert not page.js_errors


@pytest.mark.parametrize("slice_name,query", [(None, None), ("val split", None),
                                              (None, 'metadata.split = "train"')])
def test_confusion_cells_open_exactly_their_objects(page: Any, site: Site,
                                                    slice_name: str | None,
                                                    query: str | None) -> None:
    slice_id = _slice_id(site, slice_name) if slice_name else ""
    search = "&".join(([f"slice={slice_id}"] if slice_id else []) +
                      ([f"q={quote(query)}"] if query else []))
    _open_run(page, site, f"?{search}" if search else "")
    cells = json.loads(page.locator("#confusion-chart").get_attribute("data-cells"))
    linked = [c for c in cells if c["href"] and c["count"] > 0]
    # Matches, confusions with background both ways: every non-empty cell has a link here.
    assert len(linked) == len([c for c in cells if c["count"] > 0]) >= 3
    base = page.url
    for cell in linked:
        page.locator("#confusion-chart").scroll_into_view_if_needed()
        box = page.locator("#confusion-chart").bounding_box()
        page.mouse.click(box["x"] + cell["x"], box["y"] + cell["y"])
        page.wait_for_url(re.compile(r".*target=objects.*"))
        url = urlsplit(page.url)
        assert url.path == f"/datasets/{site.ds}"
        params = parse_qs(url.query)
        assert params["run"] == [COMMITTED_RUN]
        assert params.get("slice", [""]) == [slice_id]
        assert _count(page, site, params["q"][0], slice_id or None) == cell["count"], cell
        page.goto(base)
        expect(page.locator("#run-page")).to_have_attribute("data-loaded", re.compile(".*"))


def test_failure_numbers_open_their_objects(page: Any, site: Site) -> None:
    _open_run(page, site)
    links = page.locator("#failures a.failure-n")
    assert links.count() >= 2
    for i in range(links.count()):
        link = links.nth(i)
        q = parse_qs(urlsplit(link.get_attribute("href")).query)["q"][0]
        assert _count(page, site, q, None) == int(link.inner_text().replace(",", ""))
    # A zero is shown, not linked.
    assert page.locator("#failures span.failure-n").count() >= 1


def test_uncommitted_run_asks_for_a_commit(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}/runs/{OPEN_RUN}")
    expect(page.locator("#not-committed")).to_be_visible()
    expect(page.locator("#not-committed")).to_contain_text("Commit this run")
    assert page.locator("#stats").count() == 0
    assert page.locator(".error").count() == 0
    assert not page.js_errors


def test_commit_now_shows_the_metrics(page: Any, site: Site) -> None:
    """A run of its own (the shared ones stay as they are): committed from its page,
    which then shows its metrics, equal to the API's."""
    preds = site.service.list_predictions(_run_id(site, OPEN_RUN))
    model = site.service.list_models()[0]["id"]
    run = site.service.create_run(model, site.ds, "fresh run", [
        payload_to_annotation(p, prediction=True) for p in preds])["id"]
    page.goto(f"{site.url}/datasets/{site.ds}/runs/fresh%20run")
    page.click("#commit-run")
    expect(page.locator("#run-page")).to_have_attribute("data-loaded", "||", timeout=60_000)
    _shows(page, "||", _metrics(page, site, run))
    assert site.service.run_info(run)["committed"]
    assert not page.js_errors


def test_markup_in_run_and_label_names_is_text(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.evil}/runs")
    expect(page.locator(".run-link")).to_have_text(EVIL)
    page.click(".run-link")
    expect(page.locator("#run-page")).to_have_attribute("data-loaded", re.compile(".*"))
    expect(page.locator("#run-name")).to_have_text(EVIL)
    expect(page.locator("#per-class tbody tr td").first).to_have_text(f" {EVIL}")
    cells = json.loads(page.locator("#confusion-chart").get_attribute("data-cells"))
    assert EVIL in {c["row"] for c in cells}
    assert page.locator("img[src=x]").count() == 0
    assert not page.js_errors
