"""The compare page in a real browser: two committed runs' numbers (overall and per class)
equal the REST API's, the fixed and broken grids hold exactly the API's items (every
page), the runs and slice survive a reload, run names are text, and a run that cannot be
compared is refused with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.web.conftest import COMMITTED_RUN, EVIL, N_ITEMS, OPEN_RUN, Site, _boxes, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect

# A second committed run, made in this module only (the site is this module's own, and
# the run is deleted afterwards).
SECOND = "detector-c"


def _predictions() -> list[Any]:
    """Every ground-truth box exactly (dogs too) but the person on every item i with
    i % 8 == 3, plus a background box on every item with i % 5 == 1. Against
    detector-a this fixes most items it gets wrong (dogs missed, cars off, background
    boxes), breaks some it gets right, and finds fewer people."""
    from ocula.core.types import BoxPrediction

    preds = []
    for i in range(N_ITEMS):
        w, h = (480, 640) if i % 5 == 4 else (640, 480)
        ref = f"img_{i:03d}"
        preds += [BoxPrediction(label, x, y, bw, bh, reference_id=ref, confidence=0.9)
                  for label, x, y, bw, bh in _boxes(i, w, h)
                  if not (label == "person" and i % 8 == 3)]
        if i % 5 == 1:
            preds.append(BoxPrediction("car", 0, h - 40, 40, 40, reference_id=ref,
                                       confidence=0.6))
    return preds


def _committed_run(site: Site, name: str) -> str:
    model = next(m for m in site.service.list_models() if m["name"] == "detector")["id"]
    run = site.service.create_run(model, site.ds, name, _predictions())["id"]
    site.service.commit_run(run)
    return run


@pytest.fixture(scope="module")
def second(site: Site) -> Iterator[str]:
    run = _committed_run(site, SECOND)
    yield run
    site.service.delete_run(run)


def _run_id(site: Site, name: str) -> str:
    return next(r["id"] for r in site.service.list_runs(site.ds) if r["name"] == name)


def _api(page: Any, site: Site, a: str, b: str, slice: str = "") -> dict[str, Any]:  # noqa: A002
    """The REST API's comparison (all ids), asked with the page's own session."""
    params = {"run_a": _run_id(site, a), "run_b": _run_id(site, b)}
    if slice:
        params["slice"] = slice
    answer = page.request.get(f"{site.url}/api/v1/compare?{urlencode(params)}")
    assert answer.ok, answer.text()
    return answer.json()


def _open(page: Any, site: Site, **choice: str) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}/compare?{urlencode(choice)}")
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")


def _signed(delta: float) -> str:
    if abs(delta) < 0.0005:
        return f"±{abs(delta):.3f}"
    return ("+" if delta > 0 else "−") + f"{abs(delta):.3f}"


def _grid_refs(page: Any, section: str) -> list[str]:
    """Every item reference of one grid, showing all its pages first."""
    more = page.locator(f"#{section} .more")
    while more.is_visible():
        shown = page.locator(f"#{section} .tile").count()
        more.click()
        expect(page.locator(f"#{section} .tile")).not_to_have_count(shown)
    expect(page.locator(f"#{section}")).to_have_attribute("data-ready", "true")
    return [t.get_attribute("data-ref") for t in page.locator(f"#{section} .tile").all()]


def test_one_committed_run_is_not_enough(page: Any, site: Site) -> None:
    # First in this module: the second committed run (the `second` fixture) is not made yet.
    assert [r["name"] for r in site.service.list_runs(site.ds) if r["committed"]] == [
        COMMITTED_RUN]
    page.goto(f"{site.url}/datasets/{site.ds}/compare")
    expect(page.locator("#compare-message")).to_have_text(
        "Comparing needs two committed runs; this dataset has fewer.")
    expect(page.locator("#compare-body")).to_be_hidden()
    assert "?" not in page.url and not page.js_errors


def test_numbers_equal_the_api(page: Any, site: Site, second: str) -> None:
    _open(page, site, a=COMMITTED_RUN, b=SECOND)
    diff = _api(page, site, COMMITTED_RUN, SECOND)
    assert len(diff["stats_a"]) == 12
    for key, a in diff["stats_a"].items():
        cells = page.locator(f'#overall td[data-metric="{key}"]')
        b, delta = diff["stats_b"][key], diff["delta"][key]
        assert float(cells.nth(0).get_attribute("data-value")) == a
        assert float(cells.nth(1).get_attribute("data-value")) == b
        assert cells.nth(0).inner_text() == (f"{a:.3f}" if a >= 0 else "—")
        assert cells.nth(1).inner_text() == (f"{b:.3f}" if b >= 0 else "—")
        if a >= 0 and b >= 0:
            assert float(cells.nth(2).get_attribute("data-value")) == delta
            assert cells.nth(2).inner_text() == _signed(delta)
            kind = "same" if abs(delta) < 0.0005 else "better" if delta > 0 else "worse"
            assert kind in cells.nth(2).get_attribute("class")
    # B finds every box, so it is better overall, shown in the "better" colour.
    ap = page.locator('#overall td.delta[data-metric="AP"]')
    assert diff["delta"]["AP"] > 0 and "better" in ap.get_attribute("class")
    better = ap.evaluate("e => getComputedStyle(e).color")
    # Per class: the API's rows, largest change first.
    rows = page.locator("#per-class tbody tr")
    labels = [r.get_attribute("data-label") for r in rows.all()]
    by_label = {r["label"]: r for r in diff["per_class"]}
    assert sorted(labels) == sorted(by_label)

    def change(r: dict[str, Any]) -> float:
        return max(abs(r["delta"][k] or 0) for k in ("ap", "ap50", "ar"))

    assert [change(by_label[x]) for x in labels] == sorted(
        (change(r) for r in diff["per_class"]), reverse=True)
    for label in labels:
        row, want = page.locator(f'#per-class tr[data-label="{label}"]'), by_label[label]
        pairs, deltas = row.locator("td.pair"), row.locator("td.delta")
        for k, key in enumerate(("ap", "ap50", "ar")):
            assert float(pairs.nth(k).get_attribute("data-a")) == want["a"][key]
            assert float(pairs.nth(k).get_attribute("data-b")) == want["b"][key]
            assert pairs.nth(k).inner_text() == f"{want['a'][key]:.3f} → {want['b'][key]:.3f}"
            assert float(deltas.nth(k).get_attribute("data-value")) == want["delta"][key]
    # Dogs: detector-a never finds one, B finds all: the largest change, on top. B
    # finds fewer people: a change for the worse, in the other colour.
    assert labels[0] == "dog"
    worse = page.locator('#per-class tr[data-label="person"] td.delta').nth(2)
    assert by_label["person"]["delta"]["ar"] < 0 and "worse" in worse.get_attribute("class")
    assert worse.evaluate("e => getComputedStyle(e).color") != better
    for img in page.locator("#fixed .tile img").all()[:8]:
        expect(img).to_have_js_property("complete", True)
    shoot(page, "web-compare")
    # The other way round, B is worse: the same delta, negative, in the other colour.
    _open(page, site, a=SECOND, b=COMMITTED_RUN)
    assert ap.inner_text() == _signed(-diff["delta"]["AP"])
    assert "worse" in ap.get_attribute("class")
    assert ap.evaluate("e => getComputedStyle(e).color") != better
    assert not page.js_errors


def test_grids_show_exactly_the_api_items(page: Any, site: Site, second: str) -> None:
    _open(page, site, a=COMMITTED_RUN, b=SECOND)
    diff = _api(page, site, COMMITTED_RUN, SECOND)
    assert diff["only_b_right"] and diff["only_a_right"]
    # More fixed items than one page holds: "Show more" reads the next.
    assert len(diff["only_b_right"]) > page.locator("#fixed .tile").count()
    fixed, broken = _grid_refs(page, "fixed"), _grid_refs(page, "broken")
    assert sorted(fixed) == diff["only_b_right"] and len(set(fixed)) == len(fixed)
    assert sorted(broken) == diff["only_a_right"] and len(set(broken)) == len(broken)
    assert page.locator("#fixed .count").inner_text() == f"({len(diff['only_b_right'])})"
    # Each tile draws both runs' predictions, A's and B's in their own line styles.
    tile = page.locator("#fixed .tile").first
    ref = tile.get_attribute("data-ref")
    item = site.service.get_item(site.ds, reference_id=ref)["item"]["id"]
    for run in (COMMITTED_RUN, SECOND):
        want = site.service.query_objects(
            site.ds, f'item(id = "{item}") and type = prediction and run = {_quoted(run)}')
        drawn = tile.locator("rect.pred").evaluate_all(
            "(els, run) => els.filter((e) => e.dataset.run === run).length", run)
        assert drawn == len(want["objects"]) > 0
    dash = "(els, run) => getComputedStyle(els.find((e) => e.dataset.run === run))" \
           ".strokeDasharray"
    rects = tile.locator("rect.pred")
    assert rects.evaluate_all(dash, COMMITTED_RUN) != rects.evaluate_all(dash, SECOND)
    # A tile opens its item with the ground truth and both runs as layers.
    tile.locator("a").click()
    page.wait_for_url(f"**/items/{item}?*")
    assert parse_qs(urlsplit(page.url).query)["layers"] == [
        "gt", f"run:{COMMITTED_RUN}", f"run:{SECOND}"]
    expect(page.locator(f'#layers input[data-run="{SECOND}"]')).to_be_checked()
    expect(page.locator(f'#layers input[data-run="{COMMITTED_RUN}"]')).to_be_checked()
    assert not page.js_errors


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_url_round_trip(page: Any, site: Site, second: str) -> None:
    val = next(s for s in site.service.list_slices(site.ds) if s["name"] == "val split")
    _open(page, site, a=COMMITTED_RUN, b=SECOND)
    page.select_option("#slice", val["id"])
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    page.locator("#swap").click()
    expect(page).to_have_url(f"{site.url}/datasets/{site.ds}/compare?" + urlencode(
        {"a": SECOND, "b": COMMITTED_RUN, "slice": val["id"]}))
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    page.reload()
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    assert page.locator("#run-a").input_value() == SECOND
    assert page.locator("#run-b").input_value() == COMMITTED_RUN
    assert page.locator("#slice").input_value() == val["id"]
    diff = _api(page, site, SECOND, COMMITTED_RUN, val["id"])
    assert float(page.locator('#overall td[data-metric="AP"]').nth(0)
                 .get_attribute("data-value")) == diff["stats_a"]["AP"]
    assert sorted(_grid_refs(page, "fixed")) == diff["only_b_right"]
    assert sorted(_grid_refs(page, "broken")) == diff["only_a_right"]
    # Back: the comparison before the swap (same slice), from history.
    page.go_back()
    expect(page.locator("#run-a")).to_have_value(COMMITTED_RUN)
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    assert page.locator("#slice").input_value() == val["id"]
    assert not page.js_errors


def test_run_names_are_text(page: Any, site: Site, second: str) -> None:
    evil = f"better {EVIL}"
    run = _committed_run(site, evil)
    try:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        _open(page, site, a=COMMITTED_RUN, b=evil)
        assert page.locator("#run-b option:checked").inner_text() == evil
        assert evil in page.locator("#legend").inner_text()
        assert page.locator("img[src=x]").count() == 0 and not dialogs
        diff = _api(page, site, COMMITTED_RUN, evil)
        assert sorted(_grid_refs(page, "fixed")) == diff["only_b_right"]
        # Its tiles open the item with the run's layer, its name read back from the URL.
        page.locator("#broken .tile a").first.click()
        expect(page.locator(f'#layers input[data-run="{evil}"]')).to_be_checked()
        assert not page.js_errors
    finally:
        site.service.delete_run(run)


def test_a_run_that_cannot_be_compared_is_refused(page: Any, site: Site, second: str) -> None:
    # Only committed runs are offered.
    page.goto(f"{site.url}/datasets/{site.ds}/compare")
    options = page.locator("#run-a option").all_inner_texts()
    assert OPEN_RUN not in options and COMMITTED_RUN in options
    _open_refused(page, site, a=COMMITTED_RUN, b=OPEN_RUN)
    text = page.locator("#compare-message").inner_text()
    assert f"“{OPEN_RUN}” is not committed" in text and "Commit it" in text
    expect(page.locator("#compare-body")).to_be_hidden()
    shoot(page, "compare-refused")
    _open_refused(page, site, a="no such run", b=SECOND)
    assert "no run “no such run”" in page.locator("#compare-message").inner_text()
    _open_refused(page, site, a=SECOND, b=SECOND)
    assert "two different runs" in page.locator("#compare-message").inner_text()
    assert not page.js_errors


def _open_refused(page: Any, site: Site, **choice: str) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}/compare?{urlencode(choice)}")
    expect(page.locator("#compare-message")).to_be_visible()


def test_sidebar_link_opens_two_committed_runs(page: Any, site: Site, second: str) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.locator(".compare-link").click()
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"a": [COMMITTED_RUN], "b": [SECOND]}
    assert not page.js_errors
