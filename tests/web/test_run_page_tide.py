"""The run page's TIDE error breakdown and its "Compare label versions" table in the
browser: the API's numbers drawn, every bar and count a link that opens exactly its
objects, and two label versions (one named, then a label edit) scored side by side with
the pair kept in the URL (?vs=)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from ocula.core.services.analyses import RUN_PAGE_MAX_IDS
from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem
from tests.web.conftest import COMMITTED_RUN, Site, _boxes, _image, count_objects, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect
TYPES = ["cls", "loc", "both", "dupe", "bkg", "miss", "fp", "fn"]
VRUN = "versioned-detector"


def _get(page: Any, site: Site, path: str, **params: str) -> dict[str, Any]:
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items() if v)
    answer = page.context.request.get(f"{site.url}/api/v1{path}?{query}")
    assert answer.ok, answer.text()
    return answer.json()


def _run_id(site: Site, ds: str, name: str) -> str:
    return next(r["id"] for r in site.service.list_runs(ds) if r["name"] == name)


@pytest.fixture(scope="module")
def versioned(site: Site) -> dict[str, Any]:
    """A dataset of its own (the shared one's labels are counted by other tests): a
    committed run that misses every dog, the labels named "original", then one dog
    deleted and one car relabelled dog by ``edit_annotations`` (two new versions)."""
    service = site.service
    # Images must lie under the site's media roots: beside the shared dataset's.
    shared = service.get_item(site.ds, reference_id="img_000")["item"]
    folder = Path(shared["original_image_url"]).parent
    ds = service.create_dataset("label versions")["id"]
    items, anns, preds = [], [], []
    for i in range(12):
        boxes = _boxes(i, 640, 480)
        path = folder / f"v_{i:03d}.jpg"
        _image(path, 640, 480, boxes, 10)
        ref = f"v_{i:03d}"
        items.append(DatasetItem(str(path), ref))
        anns += [BoxAnnotation(label, x, y, w, h, reference_id=ref)
                 for label, x, y, w, h in boxes]
        preds += [BoxPrediction(label, x + 3, y + 2, w, h, reference_id=ref,
                                confidence=0.9 - i / 50)
                  for label, x, y, w, h in boxes if label != "dog"]
    service.append(ds, items)
    service.annotate(ds, anns)
    model = service.list_models()[0]["id"]
    run = service.create_run(model, ds, VRUN, preds)["id"]
    service.commit_run(run)
    original = service.tag_version(ds, "original")["version"]
    gt = service.get_item(ds, reference_id="v_000")["annotations"]["box"]
    dog = next(a for a in gt if a["label"] == "dog")
    car = next(a for a in gt if a["label"] == "car")
    service.edit_annotations(ds, "v_000", [
        {"op": "delete", "id": dog["id"], "expected": dog["version"]},
        {"op": "update", "id": car["id"], "expected": car["version"], "label": "dog"}])
    return {"ds": ds, "run": run, "original": original}


def _open(page: Any, site: Site, ds: str, run: str, search: str = "") -> None:
    page.goto(f"{site.url}/datasets/{ds}/runs/{run}{search}")
    expect(page.locator("#tide-chart")).to_have_attribute("data-loaded", re.compile(".*"))


def _bars(page: Any) -> dict[str, dict[str, Any]]:
    return {b["key"]: b for b in json.loads(page.locator("#tide-chart").get_attribute("data-bars"))}


def test_tide_chart_shows_the_apis_numbers_and_links(page: Any, site: Site) -> None:
    run = _run_id(site, site.ds, COMMITTED_RUN)
    with page.expect_request(lambda r: f"/runs/{run}/errors" in r.url) as asked:
        _open(page, site, site.ds, COMMITTED_RUN)
    # The page asks for the answer the commit keeps (so it opens without scoring).
    assert parse_qs(urlsplit(asked.value.url).query)["max_ids"] == [str(RUN_PAGE_MAX_IDS)]
    out = _get(page, site, f"/runs/{run}/errors")
    want = {**out["errors"], **out["special"]}
    bars = _bars(page)
    assert list(bars) == TYPES
    canvas = page.locator("#tide-chart canvas").first
    painted = canvas.evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""")
    assert painted > 1000
    linked = 0
    for key in TYPES:
        assert bars[key]["count"] == want[key]["count"]
        assert bars[key]["dap"] == pytest.approx(want[key]["delta_ap"])
        count = page.locator(f'#tide-counts li[data-key="{key}"] .failure-n')
        expect(count).to_have_text(f"{want[key]['count']:,}")
        href = bars[key]["href"]
        if not want[key]["count"]:
            assert href is None
            continue
        assert href is not None, key  # 40 items: every list fits in a link
        assert count.get_attribute("href") == href
        q = parse_qs(urlsplit(href).query)
        assert q["run"] == [COMMITTED_RUN] and q["target"] == ["objects"]
        assert count_objects(page, site, site.ds, q["q"][0], None) == want[key]["count"], key
        linked += 1
    assert linked >= 3  # the fixture's runs have FPs (loc, bkg) and misses
    page.locator("#tide-panel").scroll_into_view_if_needed()
    shoot(page, "web-run-tide")
    # A click on a bar opens its objects in the patches view, as many as it counts.
    key = max((k for k in TYPES if bars[k]["href"]), key=lambda k: bars[k]["dap"])
    assert bars[key]["dap"] > 0
    page.locator("#tide-chart").scroll_into_view_if_needed()
    box = page.locator("#tide-chart").bounding_box()
    page.mouse.click(box["x"] + bars[key]["x"], box["y"] + bars[key]["y"])
    expect(page).to_have_url(site.url + bars[key]["href"])
    expect(page.locator("body")).to_contain_text(COMMITTED_RUN)
    assert not page.js_errors


def test_tide_follows_the_pages_scope(page: Any, site: Site) -> None:
    run = _run_id(site, site.ds, COMMITTED_RUN)
    val = next(s["id"] for s in site.service.list_slices(site.ds) if s["name"] == "val split")
    query = 'metadata.index < 20'
    _open(page, site, site.ds, COMMITTED_RUN, f"?slice={val}&q={quote(query)}")
    expect(page.locator("#tide-chart")).to_have_attribute("data-loaded", f"{val}||{query}")
    out = _get(page, site, f"/runs/{run}/errors", slice=val, query=query)
    whole = _get(page, site, f"/runs/{run}/errors")
    assert out["num_ground_truth"] < whole["num_ground_truth"]
    bars = _bars(page)
    for key, e in {**out["errors"], **out["special"]}.items():
        assert bars[key]["count"] == e["count"]
        if bars[key]["href"]:
            q = parse_qs(urlsplit(bars[key]["href"]).query)
            assert q["slice"] == [val]
            assert count_objects(page, site, site.ds, q["q"][0], val) == e["count"]
    assert not page.js_errors


def _row(page: Any, which: str) -> dict[str, str]:
    cells = page.locator(f'#versions-table tr[data-row="{which}"] td')
    return {c.get_attribute("data-key"): c.inner_text() for c in cells.all()}


def _expected(m: dict[str, Any]) -> dict[str, str]:
    point = m["operating_point"]
    out = {k: f"{m['stats'][k]:.3f}" for k in ("AP", "AP50", "AR100")}
    out |= {k: f"{point[k]:.3f}" for k in ("precision", "recall", "f1")}
    return out | {k: f"{point[k]:,}" for k in ("tp", "fp", "fn")}


def test_versions_side_by_side(page: Any, site: Site, versioned: dict[str, Any]) -> None:
    ds, run, original = versioned["ds"], versioned["run"], versioned["original"]
    _open(page, site, ds, VRUN)
    panel = page.locator("#versions-panel")
    expect(panel).to_have_attribute("data-loaded", f"||{original},current")
    # Named versions first, the current labels last.
    options = page.locator("#vs-a option").all_inner_texts()
    assert options[0] == f"Version {original} · original" and options[-1] == "Current labels"
    at_original = _get(page, site, f"/runs/{run}/metrics", annotation_version=str(original))
    current = _get(page, site, f"/runs/{run}/metrics")
    a, b = _row(page, "a"), _row(page, "b")
    assert a == _expected(at_original) and b == _expected(current)
    # The deleted dog is no longer missed; the car relabelled dog: its car box now an FP
    # and the "dog" a miss.
    assert at_original["operating_point"] != current["operating_point"]
    assert a["tp"] != b["tp"] and a["fp"] != b["fp"]
    diff = _row(page, "diff")
    tp = current["operating_point"]["tp"] - at_original["operating_point"]["tp"]
    assert diff["tp"] == (f"+{tp}" if tp > 0 else f"−{-tp}")
    # The other way round: the URL keeps the pair, and a reload shows it again.
    page.select_option("#vs-a", "current")
    expect(page).to_have_url(re.compile(r"vs=current%2Ccurrent"))
    page.select_option("#vs-b", str(original))
    expect(page).to_have_url(re.compile(rf"vs=current%2C{original}"))
    expect(panel).to_have_attribute("data-loaded", f"||current,{original}")
    assert _row(page, "a") == _expected(current) and _row(page, "b") == _expected(at_original)
    page.reload()
    expect(panel).to_have_attribute("data-loaded", f"||current,{original}")
    expect(page.locator("#vs-b")).to_have_value(str(original))
    assert _row(page, "a") == _expected(current)
    assert not page.js_errors


def test_tide_at_a_past_version_links_only_what_a_query_sees(
        page: Any, site: Site, versioned: dict[str, Any]) -> None:
    """At "original", the dog deleted since is a miss no query can select any more: the
    misses get no link (and say why); at the current labels they have one."""
    ds, run, original = versioned["ds"], versioned["run"], versioned["original"]
    _open(page, site, ds, VRUN, f"?version={original}")
    expect(page.locator("#tide-chart")).to_have_attribute("data-loaded", f"|{original}|")
    out = _get(page, site, f"/runs/{run}/errors", annotation_version=str(original))
    bars = _bars(page)
    assert bars["miss"]["count"] == out["errors"]["miss"]["count"] > 0
    assert bars["miss"]["href"] is None and bars["fn"]["href"] is None
    expect(page.locator('#tide-counts li[data-key="miss"]')).to_contain_text("changed since")
    # At the current labels the misses are all still there: linked, and counted right.
    _open(page, site, ds, VRUN)
    now = _get(page, site, f"/runs/{run}/errors")
    for key in ("miss", "cls"):
        bar = _bars(page)[key]
        assert bar["count"] == now["errors"][key]["count"] > 0
        q = parse_qs(urlsplit(bar["href"]).query)
        assert count_objects(page, site, ds, q["q"][0], None) == bar["count"]
    assert not page.js_errors


def test_screenshot_of_the_run_page(page: Any, site: Site, versioned: dict[str, Any]) -> None:
    _open(page, site, versioned["ds"], VRUN)
    expect(page.locator("#versions-panel")).to_have_attribute("data-loaded", re.compile(".+"))
    page.locator("#versions-panel").scroll_into_view_if_needed()
    shoot(page, "web-run-versions")
    assert not page.js_errors




def test_a_dataset_without_label_versions(page: Any, site: Site) -> None:
    """No ground truth at all: no versions to compare (the panel says so), and every
    prediction is a background error, linked."""
    service = site.service
    shared = service.get_item(site.ds, reference_id="img_000")["item"]
    ds = service.create_dataset("no labels")["id"]
    service.append(ds, [DatasetItem(shared["original_image_url"], "only")])
    assert service.list_versions(ds) == []
    run = service.create_run(service.list_models()[0]["id"], ds, "lonely", [
        BoxPrediction("car", 10, 10, 50, 50, reference_id="only", confidence=0.7)])["id"]
    service.commit_run(run)
    _open(page, site, ds, "lonely")
    expect(page.locator("#versions-note")).to_contain_text("No label versions yet")
    expect(page.locator("#vs-a")).to_have_count(0)
    bar = _bars(page)["bkg"]
    assert bar["count"] == 1
    q = parse_qs(urlsplit(bar["href"]).query)
    assert count_objects(page, site, ds, q["q"][0], None) == 1
    assert not page.js_errors


def test_id_queries_quote_as_the_server_does_and_stop_at_the_link_cap(
        page: Any, site: Site) -> None:
    from ocula.core.services.evaluation_links import MAX_LINK_QUERY
    from ocula.core.services.insights_scan import quote as server_quote

    _open(page, site, site.ds, COMMITTED_RUN)
    name = 'run "x" \\ <b>'
    out = page.evaluate("""async ([name]) => {
        const m = await import('/static/runtide.js');
        return { cap: m.MAX_LINK_QUERY, quoted: m.quote(name),
                 short: m.idQuery('prediction', name, ['pred_1', 'pred_2']),
                 long: m.idQuery('prediction', name, Array(400).fill('pred_0123456789abcdef')) };
    }""", [name])
    assert out["cap"] == MAX_LINK_QUERY
    assert out["quoted"] == server_quote(name)
    assert out["short"] == (f"type = prediction and run = {server_quote(name)} and "
                            'id in ["pred_1", "pred_2"]')
    assert out["long"] is None
