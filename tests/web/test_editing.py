"""Editing ground truth in the item page, in a real browser: draw, move and resize at a
zoom other than 1 (exact image pixels), relabel, delete, undo and redo, accept a
prediction as ground truth (then a re-commit scores it a TP), a stale edit refused with
a 409 message, the history panel, and tagging a version. The edits go to a dataset of
this module's own, so the shared site's labels (and other tests' counts) never move."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem
from tests.web.conftest import ARTIFACTS, EVIL, Site, _image, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect

RUN = "edit-run"
W, H = 640, 480
# Per item: its boxes (label, x, y, w, h).
BOXES = {
    "draw": [("person", 100, 100, 120, 200)],
    "move": [("person", 100, 100, 120, 200), ("car", 380, 280, 200, 120)],
    "label": [("dog", 300, 200, 100, 80)],
    "delete": [("car", 200, 150, 160, 100)],
    "accept": [("person", 60, 120, 100, 220)],
    "stale": [("car", 250, 180, 180, 110)],
    "undo": [("person", 80, 100, 120, 220), ("car", 330, 250, 200, 120)],
    "shot": [("person", 90, 110, 130, 240), ("car", 330, 260, 240, 130),
             ("dog", 420, 60, 120, 110)],
}
# On "accept", the run finds the person and a second one nobody labelled (an FP).
MISSED = (420, 90, 90, 230)


@dataclass
class Edits:
    ds: str
    run: str
    items: dict[str, str]  # reference id -> item id
    polygons: str  # a dataset that takes only polygons: a drawn box is refused (422)
    polygon_item: str


@pytest.fixture(scope="module")
def edits(site: Site) -> Iterator[Edits]:
    service = site.service
    folder = service.local_roots[0]
    ds = service.create_dataset("editing")["id"]
    items, anns = [], []
    for ref, boxes in BOXES.items():
        path = folder / f"edit_{ref}.jpg"
        shown = [b for b in boxes] + ([("person", *MISSED)] if ref == "accept" else [])
        _image(path, W, H, shown, 10)
        items.append(DatasetItem(str(path), ref))
        anns += [BoxAnnotation(label, x, y, w, h, reference_id=ref, annotation_id=f"{ref}-{k}")
                 for k, (label, x, y, w, h) in enumerate(boxes)]
    service.append(ds, items)
    service.annotate(ds, anns)
    preds = [BoxPrediction("person", 62, 122, 100, 220, reference_id="accept", confidence=0.9),
             BoxPrediction("person", *MISSED, reference_id="accept", confidence=0.8),
             BoxPrediction("car", 335, 262, 236, 128, reference_id="shot", confidence=0.7)]
    model = service.add_model("editor-model", "editor-model")["id"]
    run = service.create_run(model, ds, RUN, preds)["id"]
    service.commit_run(run)
    ids = {ref: service.get_item(ds, reference_id=ref)["item"]["id"] for ref in BOXES}
    polygons = service.create_dataset("polygons only", allowed_types=["polygon"])["id"]
    service.append(polygons, [DatasetItem(str(folder / "edit_draw.jpg"), "p0")])
    polygon_item = service.get_item(polygons, reference_id="p0")["item"]["id"]
    yield Edits(ds, run, ids, polygons, polygon_item)


def _open(page: Any, site: Site, e: Edits, ref: str, search: str = "") -> None:
    page.goto(f"{site.url}/datasets/{e.ds}/items/{e.items[ref]}{search}")
    page.wait_for_selector("#item-view[data-ready=true]")
    page.wait_for_function("() => { const i = document.querySelector('.figure.full img');"
                           " return i && i.complete && i.naturalWidth > 0; }")


def _labels(site: Site, e: Edits, ref: str) -> list[dict[str, Any]]:
    detail = site.service.get_item(e.ds, reference_id=ref)
    return sorted((a for anns in detail["annotations"].values() for a in anns),
                  key=lambda a: a["id"])


def _ann(site: Site, e: Edits, ref: str, k: int) -> dict[str, Any]:
    """The stored annotation made as ``<ref>-<k>``."""
    return next(a for a in _labels(site, e, ref) if a["annotation_id"] == f"{ref}-{k}")


def _accepted(site: Site, e: Edits) -> list[dict[str, Any]]:
    return [a for a in _labels(site, e, "accept")
            if (a["annotation_id"] or "").startswith("accepted:")]


def _frame(page: Any) -> dict[str, float]:
    """The image's rectangle on screen and its scale (screen px per image px)."""
    return page.evaluate("""(w) => {
      const r = document.querySelector('.figure.full img').getBoundingClientRect();
      return { left: r.left, top: r.top, scale: r.width / w };
    }""", W)


def _screen(f: dict[str, float], x: float, y: float) -> tuple[float, float]:
    return f["left"] + x * f["scale"], f["top"] + y * f["scale"]


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    page.mouse.move(*end)
    page.mouse.up()


def _saved(page: Any) -> None:
    expect(page.locator("#edit-status")).to_contain_text("Saved")


def _edit_mode(page: Any) -> None:
    page.keyboard.press("e")
    expect(page.locator("#edit-bar")).to_be_visible()
    # The edit bar shrinks the stage and a fitted image is fitted again on the resize
    # observer's next call: positions read before then would be at the old scale.
    page.evaluate("() => new Promise((done) => requestAnimationFrame("
                  "() => requestAnimationFrame(done)))")


def _select(page: Any, ann_id: str) -> None:
    box = page.locator(f'svg.boxes rect[data-annotation="{ann_id}"]').bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator(".edit-layer .edit-handle")).to_have_count(8)


def _metrics(page: Any, site: Site, run: str, **params: str) -> dict[str, Any]:
    """The run's metrics as the run page asks the API for them."""
    answer = page.context.request.get(f"{site.url}/api/v1/runs/{run}/metrics?"
                                      + urlencode(params))
    assert answer.ok, answer.text()
    return answer.json()


def test_draw_a_box_then_reload(page: Any, site: Site, edits: Edits) -> None:
    """The box drawn is stored, in the history and there after a reload; the run's
    metrics at the labels before it have not moved, the current ones count one more
    missed box (the run predicts nothing on this item)."""
    version = str(max(v["version"] for v in site.service.list_versions(edits.ds)))
    before = {"then": _metrics(page, site, edits.run, annotation_version=version),
              "now": _metrics(page, site, edits.run)}
    _open(page, site, edits, "draw")
    _edit_mode(page)
    f = _frame(page)
    _drag(page, _screen(f, 300, 50), _screen(f, 380, 170))
    form = page.locator("#label-form")
    expect(form).to_be_visible()
    # The dataset's labels are offered.
    assert "person" in page.locator("#edit-labels option").evaluate_all(
        "(os) => os.map((o) => o.value)")
    page.fill("#label-input", "cyclist")
    shoot(page, "web-edit-label")
    page.keyboard.press("Enter")
    _saved(page)
    expect(page.locator("#edit-history li").first).to_contain_text("added")
    expect(page.locator("#edit-history li").first).to_contain_text("cyclist")
    expect(page.locator("#edit-history li").first).to_contain_text("browser")
    stored = [a for a in _labels(site, edits, "draw") if a["label"] == "cyclist"]
    assert len(stored) == 1
    assert stored[0]["geometry"] == {"x": 300, "y": 50, "width": 80, "height": 120}
    history = site.service.item_history(edits.ds, "draw")
    assert history[0]["op"] == "add" and history[0]["author"] == "browser"
    assert history[0]["after"]["label"] == "cyclist"
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    expect(page.locator(f'svg.boxes rect[data-annotation="{stored[0]["id"]}"]')).to_have_count(1)
    expect(page.locator("#annotations li")).to_have_count(2)
    assert not page.js_errors
    assert _metrics(page, site, edits.run, annotation_version=version) == before["then"]
    now = _metrics(page, site, edits.run)
    assert now["operating_point"]["fn"] == before["now"]["operating_point"]["fn"] + 1
    assert now["operating_point"]["tp"] == before["now"]["operating_point"]["tp"]


def test_refused_edit_shows_why(page: Any, site: Site, edits: Edits) -> None:
    page.goto(f"{site.url}/datasets/{edits.polygons}/items/{edits.polygon_item}")
    page.wait_for_selector("#item-view[data-ready=true]")
    _edit_mode(page)
    f = _frame(page)
    _drag(page, _screen(f, 100, 100), _screen(f, 200, 180))
    page.fill("#label-input", "person")
    page.keyboard.press("Enter")
    status = page.locator("#edit-status.error")
    expect(status).to_contain_text("does not allow 'box'")
    # Nothing written, and nothing typed or drawn is lost: the form and box stay.
    assert site.service.get_item(edits.polygons, reference_id="p0")["annotations"] == {}
    expect(page.locator("#label-input")).to_have_value("person")
    expect(page.locator(".edit-layer .edit-box")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator(".edit-layer .edit-box")).to_have_count(0)
    assert not page.js_errors


def test_move_and_resize_exact_at_zoom(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "move")
    page.keyboard.press("+")  # a zoom other than 1 and other than the fit
    _edit_mode(page)
    f = _frame(page)
    assert abs(f["scale"] - 1) > 0.05
    pid = _ann(site, edits, "move", 0)["id"]
    _select(page, pid)
    # Move by 30 × 20 image pixels, whatever the zoom.
    _drag(page, _screen(f, 160, 200), _screen(f, 190, 220))
    _saved(page)
    person = _ann(site, edits, "move", 0)
    assert person["geometry"] == {"x": 130, "y": 120, "width": 120, "height": 200}
    # Resize by the bottom-right handle: 10 × 15 image pixels.
    handle = page.locator(".edit-layer .handle-se").bounding_box()
    hx, hy = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.locator("#edit-status").evaluate("(el) => { el.textContent = ''; }")
    _drag(page, (hx, hy), (hx + 10 * f["scale"], hy + 15 * f["scale"]))
    _saved(page)
    person = _ann(site, edits, "move", 0)
    assert person["geometry"] == {"x": 130, "y": 120, "width": 130, "height": 215}
    # The box is drawn on those pixels.
    drawn = page.locator(f'svg.boxes rect[data-annotation="{pid}"]').bounding_box()
    # (Its on-screen box includes the line's width: compare centres and sizes loosely.)
    cx, cy = _screen(f, 130 + 130 / 2, 120 + 215 / 2)
    assert abs(drawn["x"] + drawn["width"] / 2 - cx) < 1
    assert abs(drawn["y"] + drawn["height"] / 2 - cy) < 1
    assert abs(drawn["width"] - 130 * f["scale"]) < 5
    # Dragging past the image's edge stops at the edge.
    _drag(page, _screen(f, 190, 220), _screen(f, 190 + 2000 / f["scale"], 220))
    _saved(page)
    person = _ann(site, edits, "move", 0)
    assert person["geometry"]["x"] == W - 130
    # Undo twice: back exactly where it was before the resize.
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(4)
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(5)
    person = _ann(site, edits, "move", 0)
    assert person["geometry"] == {"x": 130, "y": 120, "width": 120, "height": 200}
    assert not page.js_errors


def test_relabel_html_as_text(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "label")
    _edit_mode(page)
    _select(page, _ann(site, edits, "label", 0)["id"])
    page.keyboard.press("l")
    expect(page.locator("#label-input")).to_have_value("dog")
    page.fill("#label-input", EVIL)
    page.keyboard.press("Enter")
    _saved(page)
    assert _labels(site, edits, "label")[0]["label"] == EVIL
    expect(page.locator("#annotations li .label-name").first).to_have_text(EVIL)
    expect(page.locator("#edit-history li").first).to_contain_text(f"dog → {EVIL}")
    assert page.locator("#item-view img[src=x]").count() == 0
    # Escape drops a label being typed: nothing is written.
    page.keyboard.press("l")
    page.fill("#label-input", "never saved")
    page.keyboard.press("Escape")
    expect(page.locator("#label-form")).to_be_hidden()
    assert _labels(site, edits, "label")[0]["label"] == EVIL
    assert not page.js_errors


def test_delete_undo_redo(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "delete")
    before = _labels(site, edits, "delete")
    did = before[0]["id"]
    _edit_mode(page)
    _select(page, did)
    page.keyboard.press("Delete")
    _saved(page)
    assert _labels(site, edits, "delete") == []
    expect(page.locator(f'svg.boxes rect[data-annotation="{did}"]')).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator(f'svg.boxes rect[data-annotation="{did}"]')).to_have_count(1)
    restored = _labels(site, edits, "delete")
    strip = [{k: v for k, v in a.items() if k != "version"} for a in (before, restored)
             for a in a]
    assert strip[0] == strip[1]  # the same annotation, exactly
    page.keyboard.press("Control+Shift+z")
    expect(page.locator(f'svg.boxes rect[data-annotation="{did}"]')).to_have_count(0)
    assert _labels(site, edits, "delete") == []
    page.keyboard.press("Control+z")
    expect(page.locator(f'svg.boxes rect[data-annotation="{did}"]')).to_have_count(1)
    ops = [h["op"] for h in site.service.item_history(edits.ds, "delete")]
    assert ops == ["restore", "delete", "restore", "delete"]
    assert not page.js_errors


def test_accept_prediction_then_recommit(page: Any, site: Site, edits: Edits) -> None:
    query = f'item(id = "{edits.items["accept"]}") and type = prediction and run = "{RUN}"'
    preds = site.service.query_objects(edits.ds, query, page_size=100)["objects"]
    fp = next(p for p in preds if p["status"] == "fp")
    _open(page, site, edits, "accept", f"?layers=gt&layers=run:{RUN}")
    entry = page.locator(f'#annotations li[data-annotation="{fp["id"]}"]')
    entry.locator("button.accept").click()
    _saved(page)
    accepted = [a for a in _accepted(site, edits) if a["annotation_id"] == f"accepted:{fp['id']}"]
    assert len(accepted) == 1 and accepted[0]["geometry"] == fp["geometry"]
    history = site.service.item_history(edits.ds, "accept")
    assert history[0]["op"] == "accept_prediction" and history[0]["prediction_id"] == fp["id"]
    expect(page.locator("#edit-history li").first).to_contain_text("accepted prediction")
    expect(page.locator("#edit-history li").first).to_contain_text(f"from {fp['id']}")
    site.service.commit_run(edits.run)
    after = site.service.query_objects(edits.ds, query, page_size=100)["objects"]
    assert next(p for p in after if p["id"] == fp["id"])["status"] == "tp"
    # Accepting it again (the key `a` over it) is refused: it is ground truth already.
    entry.locator(".label-name").hover()
    page.keyboard.press("a")
    expect(page.locator("#edit-status.conflict")).to_be_visible()
    assert len(_accepted(site, edits)) == 1
    assert not page.js_errors


def test_stale_edit_is_refused(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "stale")
    _edit_mode(page)
    stale = _ann(site, edits, "stale", 0)
    _select(page, stale["id"])
    token = stale["version"]
    # Someone else saves first, behind the page's back.
    site.service.edit_annotations(edits.ds, "stale", [
        {"op": "update", "id": stale["id"], "expected": token, "label": "truck"}], author="someone")
    f = _frame(page)
    _drag(page, _screen(f, 340, 235), _screen(f, 360, 235))
    status = page.locator("#edit-status.conflict")
    expect(status).to_be_visible()
    expect(status).to_contain_text("truck")
    expect(status.locator("#edit-reload")).to_be_visible()
    shoot(page, "web-edit-conflict")
    stored = _labels(site, edits, "stale")[0]
    assert stored["label"] == "truck" and stored["geometry"]["x"] == 250  # not overwritten
    # The unsaved position stays on screen until the reload.
    edit_box = page.locator(".edit-layer .edit-box").bounding_box()
    assert abs(edit_box["x"] - _screen(f, 270, 0)[0]) < 1.5
    status.locator("#edit-reload").click()
    page.wait_for_selector("#item-view[data-ready=true]")
    expect(page.locator("#annotations li .label-name").first).to_have_text("truck")
    assert not page.js_errors


def test_undo_never_overwrites_a_later_change(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "undo")
    person, car = _ann(site, edits, "undo", 0), _ann(site, edits, "undo", 1)
    _edit_mode(page)
    _select(page, person["id"])
    page.keyboard.press("l")
    page.fill("#label-input", "rider")
    page.keyboard.press("Enter")
    _saved(page)
    # Someone else relabels it; the page then reads the labels again (after its next edit).
    mine = _ann(site, edits, "undo", 0)
    site.service.edit_annotations(edits.ds, "undo", [
        {"op": "update", "id": person["id"], "expected": mine["version"], "label": "cyclist"}],
        author="someone")
    _select(page, car["id"])
    page.keyboard.press("Delete")
    _saved(page)
    expect(page.locator(".edit-help")).to_be_visible()
    page.keyboard.press("Control+z")  # restores the car: the page's own last edit
    expect(page.locator(f'svg.boxes rect[data-annotation="{car["id"]}"]')).to_have_count(1)
    page.keyboard.press("Control+z")  # "rider" back to "person": someone has moved on
    expect(page.locator("#edit-status.conflict")).to_contain_text("cyclist")
    assert _ann(site, edits, "undo", 0)["label"] == "cyclist"
    assert not page.js_errors


def test_pan_and_zoom_in_edit_mode(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "shot")
    _edit_mode(page)
    before = _frame(page)
    stage = page.locator("#stage").bounding_box()
    page.mouse.move(stage["x"] + 200, stage["y"] + 200)
    page.mouse.wheel(0, -300)  # the wheel still zooms
    page.wait_for_function("(s) => document.querySelector('.figure.full img')"
                           ".getBoundingClientRect().width > s * 640 + 1", arg=before["scale"])
    zoomed = _frame(page)
    page.keyboard.down(" ")  # space+drag pans and draws nothing
    _drag(page, (stage["x"] + 300, stage["y"] + 300), (stage["x"] + 360, stage["y"] + 340))
    page.keyboard.up(" ")
    panned = _frame(page)
    assert abs(panned["left"] - zoomed["left"] - 60) < 1
    assert abs(panned["top"] - zoomed["top"] - 40) < 1
    expect(page.locator("#label-form")).to_be_hidden()
    assert page.locator(".edit-layer .edit-box").count() == 0
    assert len(_labels(site, edits, "shot")) == 3
    assert not page.js_errors


def test_tag_version(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "draw")
    page.click("#tag-open")
    page.fill("#tag-name", "reviewed")
    page.keyboard.press("Enter")
    expect(page.locator("#tag-status.ok")).to_contain_text("reviewed")
    assert "reviewed" in [v.get("name") for v in site.service.list_versions(edits.ds)]
    page.click("#tag-open")
    page.fill("#tag-name", "reviewed")  # a name already used: refused, in place
    page.keyboard.press("Enter")
    expect(page.locator("#tag-status.error")).to_be_visible()
    assert not page.js_errors


def test_screenshot_edit_mode(page: Any, site: Site, edits: Edits) -> None:
    _open(page, site, edits, "shot", f"?layers=gt&layers=run:{RUN}")
    site.service.edit_annotations(edits.ds, "shot", [
        {"op": "update", "id": _ann(site, edits, "shot", 2)["id"],
         "expected": _ann(site, edits, "shot", 2)["version"],
         "label": "cat"}], author="reviewer")
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    _edit_mode(page)
    sid = _ann(site, edits, "shot", 0)["id"]
    _select(page, sid)
    f = _frame(page)
    _drag(page, _screen(f, 150, 230), _screen(f, 158, 236))
    _saved(page)
    _select(page, sid)
    page.mouse.move(4, 790)  # no tooltip over the selection
    path = shoot(page, "web-edit")
    assert path.exists() and path.parent == ARTIFACTS
    assert not page.js_errors


def test_arrow_keys_nudge_and_resize(page: Any, site: Site, edits: Edits) -> None:
    """Presses in a row are one saved edit (one history entry, one undo step); Shift
    moves ten pixels, Alt resizes; Esc drops presses not yet saved."""
    _open(page, site, edits, "undo")
    _edit_mode(page)
    aid = _ann(site, edits, "undo", 1)["id"]  # the car at 330, 250, 200 × 120
    _select(page, aid)
    before = len(site.service.item_history(edits.ds, "undo"))
    for key in ("ArrowRight", "ArrowRight", "ArrowRight", "Shift+ArrowDown", "ArrowUp"):
        page.keyboard.press(key)
    # Drawn where it will be at once, saved when the keys rest.
    outline = page.locator(".edit-layer rect.edit-box")
    expect(outline).to_have_attribute("x", "333")
    _saved(page)
    expect(page.locator("#edit-status")).to_contain_text("moved by the arrow keys")
    car = _ann(site, edits, "undo", 1)
    assert car["geometry"] == {"x": 333, "y": 259, "width": 200, "height": 120}
    # The pointer is still over the car: no tooltip with its old box is left showing.
    expect(page.locator("#tooltip")).to_be_hidden()
    shoot(page, "web-edit-arrows")
    history = site.service.item_history(edits.ds, "undo")
    assert len(history) == before + 1
    # Alt+arrows resize by the right and bottom edges, stopping at the image's edge.
    page.locator("#edit-status").evaluate("(el) => { el.textContent = ''; }")
    page.keyboard.press("Alt+ArrowLeft")
    page.keyboard.press("Alt+Shift+ArrowDown")
    _saved(page)
    car = _ann(site, edits, "undo", 1)
    assert car["geometry"] == {"x": 333, "y": 259, "width": 199, "height": 130}
    for _ in range(20):
        page.keyboard.press("Alt+Shift+ArrowRight")
    page.locator("#edit-status").evaluate("(el) => { el.textContent = ''; }")
    _saved(page)
    assert _ann(site, edits, "undo", 1)["geometry"]["width"] == W - 333
    # Esc drops presses not yet saved: nothing is written.
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Escape")
    page.wait_for_timeout(900)
    assert _ann(site, edits, "undo", 1)["geometry"]["x"] == 333
    assert len(site.service.item_history(edits.ds, "undo")) == before + 3
    # One undo takes back the whole run of presses of the last edit.
    _select(page, aid)
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(before + 4)
    assert _ann(site, edits, "undo", 1)["geometry"]["width"] == 199
    # Without a selection, ← / → still step through the items.
    page.keyboard.press("Escape")
    expect(page.locator(".edit-layer .edit-handle")).to_have_count(0)
    here = page.url
    page.keyboard.press("ArrowRight")
    page.wait_for_url(lambda url: url != here)
    assert not page.js_errors
