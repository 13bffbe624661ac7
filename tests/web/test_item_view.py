"""The item page in a real browser: zoom and pan keep the boxes on their pixels, layers
(ground truth, each run, several at once) kept in the URL, the object list and the boxes
pointing at each other, and ← / → still stepping through the results."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from tests.web.conftest import COMMITTED_RUN, EVIL, OPEN_RUN, Site, shoot

pw = __import__("pytest").importorskip("playwright.sync_api")
expect = pw.expect

# Where each drawn box is on screen, and where the image's own pixels say it must be:
# the image's rect scaled by its natural size, at the geometry the service stored.
RECTS = """(geometry) => {
  const img = document.querySelector('.figure.full img');
  const r = img.getBoundingClientRect();
  const kx = r.width / img.naturalWidth, ky = r.height / img.naturalHeight;
  return [...document.querySelectorAll('.figure.full rect.box')].map((el) => {
    const b = el.getBoundingClientRect();
    const g = geometry[el.dataset.annotation];
    return { id: el.dataset.annotation, drawn: [b.left, b.top, b.width, b.height],
             expected: [r.left + g.x * kx, r.top + g.y * ky, g.width * kx, g.height * ky] };
  });
}"""
SCALE = """() => {
  const img = document.querySelector('.figure.full img');
  return img.getBoundingClientRect().width / img.naturalWidth;
}"""
HOT = re.compile(r"\bhot\b")
IMAGE_RECT = """() => {
  const r = document.querySelector('.figure.full img').getBoundingClientRect();
  return [r.left, r.top, r.width, r.height];
}"""


def _item(site: Site, ref: str) -> dict[str, Any]:
    return site.service.get_item(site.ds, reference_id=ref)


def _geometry(site: Site, item_id: str, runs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every object's stored box, by id: the ground truth and the runs' predictions."""
    query = f'item(id = "{item_id}")'
    objects = site.service.query_objects(site.ds, f"{query} and type = annotation",
                                         page_size=1000)["objects"]
    for run in runs:
        objects += site.service.query_objects(
            site.ds, f'{query} and type = prediction and run = "{run}"', page_size=1000)["objects"]
    return {o["id"]: o["geometry"] for o in objects}


def _open(page: Any, site: Site, ref: str, search: str = "") -> dict[str, Any]:
    detail = _item(site, ref)
    page.goto(f"{site.url}/datasets/{site.ds}/items/{detail['item']['id']}{search}")
    page.wait_for_selector("#item-view[data-ready=true]")
    page.wait_for_function("() => { const i = document.querySelector('.figure.full img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    return detail


def _assert_aligned(page: Any, geometry: dict[str, Any], expect_n: int) -> None:
    rects = page.evaluate(RECTS, geometry)
    assert len(rects) == expect_n
    for r in rects:
        for drawn, want in zip(r["drawn"], r["expected"], strict=True):
            assert abs(drawn - want) < 1.0, r


def _stage_point(page: Any, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#stage").bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def _image_pixel_at(page: Any, x: float, y: float) -> tuple[float, float]:
    left, top, w, h = page.evaluate(IMAGE_RECT)
    nat = page.evaluate("() => { const i = document.querySelector('.figure.full img');"
                        " return [i.naturalWidth, i.naturalHeight]; }")
    return (x - left) * nat[0] / w, (y - top) * nat[1] / h


def test_zoom_keeps_boxes_on_their_pixels(page: Any, site: Site) -> None:
    detail = _open(page, site, "img_000")
    geometry = _geometry(site, detail["item"]["id"])
    n = len(detail["annotations"]["box"])
    _assert_aligned(page, geometry, n)
    fit = page.evaluate(SCALE)
    assert page.locator("#zoom-level").inner_text() == f"{round(fit * 100)}%"
    # The wheel zooms around the cursor: the image pixel under it stays under it.
    x, y = _stage_point(page, 0.3, 0.4)
    page.mouse.move(x, y)
    before = _image_pixel_at(page, x, y)
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => ({SCALE})() > {fit * 1.5}")
    after = _image_pixel_at(page, x, y)
    assert abs(before[0] - after[0]) < 0.5 and abs(before[1] - after[1]) < 0.5
    _assert_aligned(page, geometry, n)
    zoomed = page.evaluate(SCALE)
    assert page.locator("#zoom-level").inner_text() == f"{round(zoomed * 100)}%"
    # Strokes do not grow with the image.
    stroke = page.locator(".figure.full rect.box").first
    assert stroke.evaluate("e => getComputedStyle(e).vectorEffect") == "non-scaling-stroke"
    # Keys and buttons: + zooms in, − out, 0 and Fit back to the whole image.
    page.locator("#stage").click(position={"x": 5, "y": 5})
    page.keyboard.press("+")
    assert abs(page.evaluate(SCALE) / zoomed - 1.25) < 0.01
    _assert_aligned(page, geometry, n)
    page.keyboard.press("-")
    assert abs(page.evaluate(SCALE) - zoomed) < 0.01
    page.keyboard.press("0")
    assert abs(page.evaluate(SCALE) - fit) < 1e-6
    page.click("#zoom-in")
    page.click("#zoom-in")
    assert abs(page.evaluate(SCALE) / fit - 1.5625) < 0.01
    _assert_aligned(page, geometry, n)
    page.click("#zoom-fit")
    assert abs(page.evaluate(SCALE) - fit) < 1e-6
    # A box still tells its label when hovered zoomed in.
    page.click("#zoom-in")
    page.click("#zoom-in")
    page.click("#zoom-in")
    page.locator(".figure.full rect.box.gt").first.hover()
    expect(page.locator("#tooltip")).to_be_visible()
    assert "person" in page.locator("#tooltip").inner_text()
    assert not page.js_errors


def test_drag_pans_image_and_boxes_together(page: Any, site: Site) -> None:
    detail = _open(page, site, "img_002")
    geometry = _geometry(site, detail["item"]["id"])
    for _ in range(4):
        page.click("#zoom-in")
    scale = page.evaluate(SCALE)
    image = page.evaluate(IMAGE_RECT)
    boxes = page.evaluate(RECTS, geometry)
    x, y = _stage_point(page, 0.5, 0.5)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 60, y - 30, steps=4)
    page.mouse.move(x - 120, y - 80, steps=4)
    page.mouse.up()
    moved = page.evaluate(IMAGE_RECT)
    assert abs(moved[0] - (image[0] - 120)) < 0.5 and abs(moved[1] - (image[1] - 80)) < 0.5
    assert page.evaluate(SCALE) == scale  # a pan does not zoom
    after = {r["id"]: r["drawn"] for r in page.evaluate(RECTS, geometry)}
    for r in boxes:
        left, top = after[r["id"]][:2]
        assert abs(left - (r["drawn"][0] - 120)) < 0.5 and abs(top - (r["drawn"][1] - 80)) < 0.5
    _assert_aligned(page, geometry, len(detail["annotations"]["box"]))
    assert not page.js_errors


def test_ground_truth_layer_hides_and_shows(page: Any, site: Site) -> None:
    detail = _open(page, site, "img_000")
    n = len(detail["annotations"]["box"])
    gt = page.locator('#layers input[data-layer="gt"]')
    expect(gt).to_be_checked()
    expect(page.locator(".figure.full rect.gt")).to_have_count(n)
    gt.uncheck()
    expect(page.locator(".figure.full rect.gt")).to_have_count(0)
    expect(page.locator("#annotations li[data-annotation]")).to_have_count(0)
    assert "layers=" in page.url
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    expect(gt).not_to_be_checked()
    expect(page.locator(".figure.full rect.gt")).to_have_count(0)
    gt.check()
    expect(page.locator(".figure.full rect.gt")).to_have_count(n)
    expect(page.locator("#annotations li[data-annotation]")).to_have_count(n)
    assert "layers=" not in page.url  # the default view needs none
    assert not page.js_errors


def _pred_counts(site: Site, item_id: str, run: str) -> Counter[str]:
    objects = site.service.query_objects(
        site.ds, f'item(id = "{item_id}") and type = prediction and run = "{run}"',
        page_size=1000)["objects"]
    return Counter(str(o["status"]) for o in objects)


def _drawn(page: Any, run: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for rect in page.locator(f'.figure.full rect.pred[data-run="{run}"]').all():
        counts[rect.get_attribute("data-status") or "None"] += 1
    return counts


def test_two_runs_at_once_and_reload(page: Any, site: Site) -> None:
    detail = _open(page, site, "img_000")
    item_id = detail["item"]["id"]
    want = {run: _pred_counts(site, item_id, run) for run in (COMMITTED_RUN, OPEN_RUN)}
    assert want[COMMITTED_RUN].keys() == {"tp", "fp"} and want[OPEN_RUN].keys() == {"None"}
    expect(page.locator(".figure.full rect.pred")).to_have_count(0)
    for run in (COMMITTED_RUN, OPEN_RUN):
        page.locator(f'#layers input[data-run="{run}"]').check()
    total = sum(sum(c.values()) for c in want.values())
    expect(page.locator(".figure.full rect.pred")).to_have_count(total)
    for run in (COMMITTED_RUN, OPEN_RUN):
        assert _drawn(page, run) == want[run]
    # Each run's per-item count is shown next to its toggle.
    for run in (COMMITTED_RUN, OPEN_RUN):
        row = page.locator(f'#layers label:has(input[data-run="{run}"]) .n')
        assert row.inner_text() == str(sum(want[run].values()))
    # The runs look different: the second one's boxes are drawn in another line style.
    a = page.locator(f'.figure.full rect.pred.tp[data-run="{COMMITTED_RUN}"]').first
    b = page.locator(f'.figure.full rect.pred[data-run="{OPEN_RUN}"]').first
    style = "e => [getComputedStyle(e).stroke, getComputedStyle(e).strokeDasharray]"
    assert a.evaluate(style) != b.evaluate(style)
    # The run drawn first is drawn wider, so where both runs put the same box (they do
    # here: the uncommitted run's boxes are some of the committed one's) both show.
    width = "e => parseFloat(getComputedStyle(e).strokeWidth)"
    assert a.evaluate(width) > b.evaluate(width)
    # Ground truth is coloured by the committed run's match; the legend tells both kinds.
    expect(page.locator(".figure.full rect.gt.fn")).to_have_count(2)
    legend = page.locator("#legend").inner_text()
    assert "false positive" in legend and "not committed" in legend
    # Tooltip and list name the run a prediction belongs to.
    b.hover()
    assert f"prediction of {OPEN_RUN}" in page.locator("#tooltip").inner_text()
    entry = page.locator(f'#annotations li[data-annotation="{b.get_attribute("data-annotation")}"]')
    expect(entry).to_have_class(HOT)
    assert OPEN_RUN in entry.inner_text()
    # The boxes under the pointer are all told, the smallest first.
    assert f"Also here:\nperson · prediction ({COMMITTED_RUN})" in \
        page.locator("#tooltip").inner_text()
    dog = next(a for a in detail["annotations"]["box"] if a["label"] == "dog")
    page.locator(f'.figure.full rect[data-annotation="{dog["id"]}"]').hover()
    tip = page.locator("#tooltip").inner_text()
    assert "ground truth" in tip and f"{COMMITTED_RUN}: FN" in tip
    # Hovering the list lights the box.
    page.locator("#annotations li.pred").first.hover()
    expect(page.locator(".figure.full rect.pred.hot")).to_have_count(1)
    assert "layers=" in page.url
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    for run in (COMMITTED_RUN, OPEN_RUN):
        expect(page.locator(f'#layers input[data-run="{run}"]')).to_be_checked()
        assert _drawn(page, run) == want[run]
    # Turning one off leaves the other.
    page.locator(f'#layers input[data-run="{COMMITTED_RUN}"]').uncheck()
    expect(page.locator(".figure.full rect.pred")).to_have_count(sum(want[OPEN_RUN].values()))
    expect(page.locator(".figure.full rect.gt.fn")).to_have_count(0)
    assert not page.js_errors


def test_run_parameter_turns_its_layer_on(page: Any, site: Site) -> None:
    detail = _open(page, site, "img_003", f"?run={COMMITTED_RUN}")
    expect(page.locator(f'#layers input[data-run="{COMMITTED_RUN}"]')).to_be_checked()
    expect(page.locator(f'#layers input[data-run="{OPEN_RUN}"]')).not_to_be_checked()
    want = _pred_counts(site, detail["item"]["id"], COMMITTED_RUN)
    assert _drawn(page, COMMITTED_RUN) == want
    # A run the dataset does not have draws nothing and breaks nothing.
    _open(page, site, "img_003", "?run=no-such-run")
    expect(page.locator(".figure.full rect.pred")).to_have_count(0)
    assert not page.js_errors


def test_list_entry_click_centres_its_box(page: Any, site: Site) -> None:
    detail = _open(page, site, "img_000")
    fit = page.evaluate(SCALE)
    dog = next(a for a in detail["annotations"]["box"] if a["label"] == "dog")
    entry = page.locator(f'#annotations li[data-annotation="{dog["id"]}"]')
    entry.click()
    assert page.evaluate(SCALE) > fit
    rect = page.locator(f'.figure.full rect[data-annotation="{dog["id"]}"]').bounding_box()
    stage = page.locator("#stage").bounding_box()
    assert abs(rect["x"] + rect["width"] / 2 - (stage["x"] + stage["width"] / 2)) < 1
    assert abs(rect["y"] + rect["height"] / 2 - (stage["y"] + stage["height"] / 2)) < 1
    _assert_aligned(page, _geometry(site, detail["item"]["id"]), len(detail["annotations"]["box"]))
    # And hovering the box lights its entry.
    page.mouse.move(rect["x"] + 2, rect["y"] + rect["height"] / 2)
    expect(entry).to_have_class(HOT)
    assert not page.js_errors


def test_arrows_still_step_with_layers_and_zoom(page: Any, site: Site) -> None:
    _open(page, site, "img_001")
    page.locator(f'#layers input[data-run="{COMMITTED_RUN}"]').check()
    expect(page.locator(".figure.full rect.pred").first).to_be_attached()
    fit = page.evaluate(SCALE)
    page.keyboard.press("+")  # focus is on the checkbox: keys still reach the page
    assert abs(page.evaluate(SCALE) / fit - 1.25) < 0.01
    page.keyboard.press("ArrowRight")
    page.wait_for_url("**/items/**layers=**")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_002"
    expect(page.locator(f'#layers input[data-run="{COMMITTED_RUN}"]')).to_be_checked()
    item = page.locator("#item-view").get_attribute("data-item")
    assert _drawn(page, COMMITTED_RUN) == _pred_counts(site, item, COMMITTED_RUN)
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("#item-view[data-ready=true]")
    assert page.locator(".details .ref").inner_text() == "img_001"
    assert not page.js_errors


def test_zoomed_screenshot_with_two_runs(page: Any, site: Site) -> None:
    _open(page, site, "img_000", f"?run={COMMITTED_RUN}")
    page.locator(f'#layers input[data-run="{OPEN_RUN}"]').check()
    expect(page.locator(f'.figure.full rect.pred[data-run="{OPEN_RUN}"]').first).to_be_attached()
    fit = page.evaluate(SCALE)
    x, y = _stage_point(page, 0.4, 0.5)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"() => ({SCALE})() > {fit * 1.4}")
    tp = page.locator(".figure.full rect.pred.tp").first.bounding_box()
    page.mouse.move(tp["x"] + tp["width"] / 2, tp["y"] + tp["height"] / 2)
    expect(page.locator("#tooltip")).to_be_visible()
    shoot(page, "item-zoomed")
    assert not page.js_errors


def test_markup_in_run_label_and_metadata_is_text(page: Any, site: Site) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    item = site.service.get_item(site.evil, reference_id=EVIL)["item"]
    page.goto(f"{site.url}/datasets/{site.evil}/items/{item['id']}")
    page.wait_for_selector("#item-view[data-ready=true]")
    toggle = page.locator("#layers input[data-run]")
    assert toggle.get_attribute("data-run") == EVIL
    assert page.locator("#layers label:has(input[data-run]) .label-name").inner_text() == EVIL
    toggle.check()
    expect(page.locator(".figure.full rect.pred")).to_have_count(1)
    page.locator(".figure.full rect.pred").hover()
    tip = page.locator("#tooltip").inner_text()
    assert EVIL in tip and f"prediction of {EVIL}" in tip
    assert page.locator("#annotations .label-name").all_inner_texts() == [EVIL, EVIL]
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    expect(page.locator(".figure.full rect.pred")).to_have_count(1)
    assert page.locator('img[src="x"]').count() == 0
    assert not dialogs and not page.js_errors


def test_two_committed_runs_differ_and_both_judge_ground_truth(page: Any, site: Site) -> None:
    """A second committed run (added here: the other tests name their runs, so they do
    not mind it) draws in another dash pattern, and each ground-truth box tells its
    match in both runs."""
    from ocula.core.types import BoxPrediction

    second = "detector-c"
    gt = {a["label"]: a["geometry"] for a in _item(site, "img_000")["annotations"]["box"]}
    model = next(m for m in site.service.list_models() if m["name"] == "detector")["id"]
    run = site.service.create_run(model, site.ds, second, [
        BoxPrediction(label, g["x"], g["y"], g["width"], g["height"], reference_id="img_000",
                      confidence=0.9) for label, g in gt.items() if label != "dog"])
    site.service.commit_run(run["id"])
    detail = _open(page, site, "img_000", f"?layers=gt&layers=run:{COMMITTED_RUN}"
                                          f"&layers=run:{second}")
    expect(page.locator(f'.figure.full rect.pred[data-run="{second}"]')).to_have_count(2)
    assert _drawn(page, second) == Counter({"tp": 2})
    a = page.locator(f'.figure.full rect.pred.tp[data-run="{COMMITTED_RUN}"]').first
    c = page.locator(f'.figure.full rect.pred.tp[data-run="{second}"]').first
    dashes = "e => getComputedStyle(e).strokeDasharray"
    assert a.evaluate(dashes) != c.evaluate(dashes)
    car = next(x for x in detail["annotations"]["box"] if x["label"] == "car")
    entry = page.locator(f'#annotations li[data-annotation="{car["id"]}"]')
    assert f"{COMMITTED_RUN}: FN" in entry.inner_text() and f"{second}: TP" in entry.inner_text()
    assert f"match in {COMMITTED_RUN}" in page.locator("#legend").inner_text()
    # Keyboard: Tab to the entry, Enter zooms to the car.
    entry.focus()
    page.keyboard.press("Enter")
    rect = page.locator(f'.figure.full rect.gt[data-annotation="{car["id"]}"]').bounding_box()
    stage = page.locator("#stage").bounding_box()
    assert abs(rect["x"] + rect["width"] / 2 - (stage["x"] + stage["width"] / 2)) < 1
    assert not page.js_errors


def test_a_run_deleted_meanwhile_is_switched_off_with_its_error(page: Any, site: Site) -> None:
    model = next(m for m in site.service.list_models() if m["name"] == "detector")["id"]
    run = site.service.create_run(model, site.ds, "short-lived")
    _open(page, site, "img_005")
    site.service.delete_run(run["id"])
    toggle = page.locator('#layers input[data-run="short-lived"]')
    toggle.click()  # not check(): the page unchecks it again once the read fails
    row = page.locator('#layers label:has(input[data-run="short-lived"]) .n')
    expect(row).to_have_text("error")
    assert "unknown run" in row.get_attribute("title")
    expect(toggle).not_to_be_checked()
    assert "short-lived" not in page.url
    # The rest of the page still works.
    expect(page.locator(".figure.full rect.gt")).to_have_count(
        len(_item(site, "img_005")["annotations"]["box"]))
    assert not page.js_errors
