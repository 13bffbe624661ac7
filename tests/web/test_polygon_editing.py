"""Editing polygons and lines in the item page, in a real browser: select one, drag a
vertex (at a zoom other than 1: exact image pixels), insert a vertex from an edge's
midpoint handle, remove one (Alt+click, or click then Delete; never below 3 points, 2
for a line), move the whole shape, undo and redo, a stale edit refused with the 409
message, and drawing a new polygon or line point by point. The edits go to a dataset of
this module's own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ocula.core.types import BoxAnnotation, DatasetItem, LineAnnotation, PolygonAnnotation
from tests.web.conftest import EVIL, Site, shoot
from tests.web.test_editing import _drag, _edit_mode, _frame, _saved, _screen

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect

W, H = 640, 480
QUAD = [(200.0, 100.0), (400.0, 120.0), (380.0, 300.0), (180.0, 280.0)]
TRIANGLE = [(100.0, 300.0), (220.0, 320.0), (140.0, 420.0)]
LANE = [(60.0, 60.0), (300.0, 40.0)]
REFS = ("vertex", "insert", "move", "stale", "line", "draw", "shot", "arrows")


def _points(v: list[tuple[float, float]]) -> list[dict[str, float]]:
    return [{"x": x, "y": y} for x, y in v]


@dataclass
class Polys:
    ds: str
    items: dict[str, str]  # reference id -> item id


@pytest.fixture(scope="module")
def polys(site: Site) -> Iterator[Polys]:
    service = site.service
    folder = service.local_roots[0]
    ds = service.create_dataset("polygon editing")["id"]
    items, anns = [], []
    for ref in REFS:
        # The shapes' pixels in the image, so a screenshot shows whether they line up.
        img = Image.new("RGB", (W, H), (48, 52, 60))
        draw = ImageDraw.Draw(img)
        draw.polygon(QUAD, fill=(108, 124, 150))
        draw.polygon(TRIANGLE, fill=(118, 146, 114))
        draw.line(LANE, fill=(150, 122, 112), width=3)
        path = folder / f"poly_{ref}.png"
        img.save(path)
        items.append(DatasetItem(str(path), ref))
        anns += [PolygonAnnotation("roof", QUAD, ref, annotation_id=f"{ref}-quad"),
                 PolygonAnnotation("bush", TRIANGLE, ref, annotation_id=f"{ref}-tri"),
                 LineAnnotation("kerb", LANE, ref, annotation_id=f"{ref}-lane"),
                 BoxAnnotation("sign", 480, 320, 80, 100, ref, annotation_id=f"{ref}-box")]
    service.append(ds, items)
    service.annotate(ds, anns)
    ids = {ref: service.get_item(ds, reference_id=ref)["item"]["id"] for ref in REFS}
    yield Polys(ds, ids)


def _open(page: Any, site: Site, p: Polys, ref: str) -> None:
    page.goto(f"{site.url}/datasets/{p.ds}/items/{p.items[ref]}")
    page.wait_for_selector("#item-view[data-ready=true]")
    page.wait_for_function("() => { const i = document.querySelector('.figure.full img');"
                           " return i && i.complete && i.naturalWidth > 0; }")


def _ann(site: Site, p: Polys, ref: str, name: str) -> dict[str, Any]:
    labels = site.service.get_item(p.ds, reference_id=ref)["annotations"]
    return next(a for anns in labels.values() for a in anns
                if a["annotation_id"] == f"{ref}-{name}")


def _vertices(site: Site, p: Polys, ref: str, name: str) -> list[dict[str, float]]:
    return _ann(site, p, ref, name)["geometry"]["vertices"]


def _select(page: Any, f: dict[str, float], at: tuple[float, float], handles: int) -> None:
    """Click image point ``at`` (on a shape) and wait for its vertex handles."""
    page.mouse.click(*_screen(f, *at))
    expect(page.locator(".edit-layer .edit-vertex")).to_have_count(handles)


def _centre(page: Any, selector: str) -> tuple[float, float]:
    box = page.locator(f".edit-layer {selector}").bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _clear_status(page: Any) -> None:
    page.locator("#edit-status").evaluate("(el) => { el.textContent = ''; }")


def test_move_a_vertex_then_reload(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "vertex")
    page.keyboard.press("+")  # a zoom other than 1 and other than the fit
    _edit_mode(page)
    f = _frame(page)
    assert abs(f["scale"] - 1) > 0.05
    quad = _ann(site, polys, "vertex", "quad")
    _select(page, f, (290, 200), 4)
    expect(page.locator(f'svg.boxes polygon[data-annotation="{quad["id"]}"]')).to_have_class(
        re.compile(r"\bselected\b"))
    assert page.locator(".edit-layer .edit-mid").count() == 4  # one per edge
    cx, cy = _centre(page, '.edit-vertex[data-vertex="1"]')
    _drag(page, (cx, cy), (cx + 30 * f["scale"], cy - 20 * f["scale"]))
    _saved(page)
    moved = _points([QUAD[0], (430, 100), *QUAD[2:]])
    assert _vertices(site, polys, "vertex", "quad") == moved
    history = site.service.item_history(polys.ds, "vertex")
    assert history[0]["op"] == "update" and history[0]["author"] == "browser"
    assert history[0]["before"]["geometry"]["vertices"] == _points(QUAD)
    assert history[0]["after"]["geometry"]["vertices"] == moved
    expect(page.locator("#edit-history li").first).to_contain_text("moved/reshaped")
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    # The API the page reads returns the new vertices, and the page draws them.
    answer = page.context.request.get(
        f"{site.url}/api/v1/datasets/{polys.ds}/item?reference_id=vertex")
    (polygon,) = [a for a in answer.json()["annotations"]["polygon"] if a["id"] == quad["id"]]
    assert polygon["geometry"]["vertices"] == moved
    drawn = page.locator(f'svg.boxes polygon[data-annotation="{quad["id"]}"]')
    assert drawn.get_attribute("points") == "200,100 430,100 380,300 180,280"
    assert not page.js_errors


def test_insert_and_delete_vertices_then_undo(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "insert")
    _edit_mode(page)
    f = _frame(page)
    _select(page, f, (290, 200), 4)
    # Drag the first edge's midpoint (300, 110) out by 10 × -30 image pixels.
    mx, my = _centre(page, '.edit-mid[data-mid="0"]')
    _drag(page, (mx, my), (mx + 10 * f["scale"], my - 30 * f["scale"]))
    _saved(page)
    five = _points([QUAD[0], (310, 80), *QUAD[1:]])
    assert _vertices(site, polys, "insert", "quad") == five
    expect(page.locator(".edit-layer .edit-vertex")).to_have_count(5)
    expect(page.locator("#edit-history li").first).to_contain_text("points 4 → 5")
    # A click on a midpoint adds a point right there (the last edge: it closes the shape).
    _clear_status(page)
    page.mouse.click(*_centre(page, '.edit-mid[data-mid="4"]'))
    _saved(page)
    six = [*five, {"x": 190, "y": 190}]
    assert _vertices(site, polys, "insert", "quad") == six
    # Alt+click removes a point.
    _clear_status(page)
    page.keyboard.down("Alt")
    page.mouse.click(*_centre(page, '.edit-vertex[data-vertex="1"]'))
    page.keyboard.up("Alt")
    _saved(page)
    assert _vertices(site, polys, "insert", "quad") == [six[0], *six[2:]]
    # A click picks a point, and Delete removes it (not the polygon).
    _clear_status(page)
    page.mouse.click(*_centre(page, '.edit-vertex[data-vertex="4"]'))
    expect(page.locator(".edit-layer .edit-vertex.active")).to_have_count(1)
    page.keyboard.press("Delete")
    _saved(page)
    assert _vertices(site, polys, "insert", "quad") == _points(QUAD)
    # A triangle has no point to spare: refused in place, nothing sent.
    versions = len(site.service.item_history(polys.ds, "insert"))
    page.keyboard.press("Escape")
    _select(page, f, (150, 340), 3)
    page.keyboard.down("Shift")
    page.mouse.click(*_centre(page, '.edit-vertex[data-vertex="0"]'))
    page.keyboard.up("Shift")
    expect(page.locator("#edit-status.error")).to_contain_text("keeps at least 3 points")
    assert len(site.service.item_history(polys.ds, "insert")) == versions
    assert _vertices(site, polys, "insert", "tri") == _points(TRIANGLE)
    # Undo goes back one edit at a time: the point Delete removed comes back first.
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(versions + 1)
    assert _vertices(site, polys, "insert", "quad") == [six[0], *six[2:]]
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(versions + 2)
    assert _vertices(site, polys, "insert", "quad") == six
    assert not page.js_errors


def test_move_the_whole_shape_undo_redo(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "move")
    _edit_mode(page)
    f = _frame(page)
    before = _ann(site, polys, "move", "quad")
    # Pressed inside a polygon not yet selected: selected and moved in one drag.
    _drag(page, _screen(f, 290, 200), _screen(f, 315, 215))
    _saved(page)
    shifted = _points([(x + 25, y + 15) for x, y in QUAD])
    assert _vertices(site, polys, "move", "quad") == shifted
    # Past the image's edge it stops at the edge.
    _clear_status(page)
    _drag(page, _screen(f, 300, 220), _screen(f, 300, 220 + 1000))
    _saved(page)
    assert max(v["y"] for v in _vertices(site, polys, "move", "quad")) == H
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(3)
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(4)
    after = _ann(site, polys, "move", "quad")
    assert after["geometry"] == before["geometry"] and after["area"] == before["area"]
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#edit-history li")).to_have_count(5)
    assert _vertices(site, polys, "move", "quad") == shifted
    # Relabel and delete work as for a box, and undo brings the polygon back.
    page.keyboard.press("l")
    page.fill("#label-input", EVIL)
    page.keyboard.press("Enter")
    expect(page.locator("#edit-history li")).to_have_count(6)
    assert _ann(site, polys, "move", "quad")["label"] == EVIL
    assert page.locator("#item-view img[src=x]").count() == 0
    qid = before["id"]
    page.keyboard.press("Delete")
    expect(page.locator(f'svg.boxes polygon[data-annotation="{qid}"]')).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator(f'svg.boxes polygon[data-annotation="{qid}"]')).to_have_count(1)
    assert _vertices(site, polys, "move", "quad") == shifted
    assert not page.js_errors


def test_stale_polygon_edit_is_refused(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "stale")
    _edit_mode(page)
    f = _frame(page)
    quad = _ann(site, polys, "stale", "quad")
    _select(page, f, (290, 200), 4)
    # Someone else saves first, behind the page's back.
    site.service.edit_annotations(polys.ds, "stale", [
        {"op": "update", "id": quad["id"], "expected": quad["version"], "label": "shed"}],
        author="someone")
    cx, cy = _centre(page, '.edit-vertex[data-vertex="2"]')
    _drag(page, (cx, cy), (cx + 20 * f["scale"], cy))
    status = page.locator("#edit-status.conflict")
    expect(status).to_contain_text("“shed” with 4 points")
    expect(status.locator("#edit-reload")).to_be_visible()
    assert _vertices(site, polys, "stale", "quad") == _points(QUAD)  # not overwritten
    # The unsaved shape stays on screen until the reload.
    drawn = page.locator(".edit-layer polygon.edit-poly").get_attribute("points")
    assert drawn == "200,100 400,120 400,300 180,280"
    shoot(page, "web-edit-polygon-conflict")
    status.locator("#edit-reload").click()
    page.wait_for_selector("#item-view[data-ready=true]")
    expect(page.locator(f'#annotations li[data-annotation="{quad["id"]}"] .label-name')
           ).to_have_text("shed")
    assert not page.js_errors


def test_line_vertices_keep_two(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "line")
    _edit_mode(page)
    f = _frame(page)
    _select(page, f, (180, 50), 2)  # on the line's stroke
    assert page.locator(".edit-layer .edit-mid").count() == 1  # an open shape: one edge
    page.keyboard.down("Alt")
    page.mouse.click(*_centre(page, '.edit-vertex[data-vertex="0"]'))
    page.keyboard.up("Alt")
    expect(page.locator("#edit-status.error")).to_contain_text("keeps at least 2 points")
    mx, my = _centre(page, '.edit-mid[data-mid="0"]')
    _drag(page, (mx, my), (mx, my + 40 * f["scale"]))
    _saved(page)
    assert _vertices(site, polys, "line", "lane") == _points([LANE[0], (180, 90), LANE[1]])
    _clear_status(page)
    cx, cy = _centre(page, '.edit-vertex[data-vertex="2"]')
    _drag(page, (cx, cy), (cx - 20 * f["scale"], cy + 10 * f["scale"]))
    _saved(page)
    assert _vertices(site, polys, "line", "lane") == _points([LANE[0], (180, 90), (280, 50)])
    assert not page.js_errors


def test_draw_a_polygon_and_a_line(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "draw")
    _edit_mode(page)
    f = _frame(page)
    # Esc drops a shape half drawn: nothing is written.
    page.keyboard.press("p")
    page.mouse.click(*_screen(f, 450, 60))
    page.mouse.click(*_screen(f, 520, 60))
    expect(page.locator(".edit-layer .edit-vertex")).to_have_count(2)
    page.keyboard.press("Escape")
    expect(page.locator(".edit-layer *")).to_have_count(0)
    # Click the points, Enter closes it, then its label.
    page.click("#draw-polygon")
    corners = [(450, 40), (600, 50), (590, 200), (470, 180)]
    for x, y in corners:
        page.mouse.click(*_screen(f, x, y))
    page.mouse.move(*_screen(f, 520, 250))  # the rubber band follows the pointer
    expect(page.locator(".edit-layer .edit-close")).to_have_count(1)
    shoot(page, "web-edit-polygon-drawing")
    page.keyboard.press("Enter")
    expect(page.locator("#label-form")).to_be_visible()
    page.fill("#label-input", "pond")
    page.keyboard.press("Enter")
    _saved(page)
    (pond,) = [a for a in site.service.get_item(polys.ds, reference_id="draw")["annotations"][
        "polygon"] if a["label"] == "pond"]
    assert pond["geometry"]["vertices"] == _points(corners)
    assert site.service.item_history(polys.ds, "draw")[0]["op"] == "add"
    # A line: clicks, and a double-click ends it (without zooming in).
    _clear_status(page)
    zoom = page.locator("#zoom-level").text_content()
    page.keyboard.press("o")
    page.mouse.click(*_screen(f, 40, 440))
    page.mouse.click(*_screen(f, 200, 400))
    page.mouse.dblclick(*_screen(f, 330, 450))
    page.fill("#label-input", "track")
    page.keyboard.press("Enter")
    _saved(page)
    assert page.locator("#zoom-level").text_content() == zoom
    (track,) = site.service.get_item(polys.ds, reference_id="draw")["annotations"]["line"][1:]
    assert track["label"] == "track"
    assert track["geometry"]["vertices"] == _points([(40, 440), (200, 400), (330, 450)])
    page.keyboard.press("Control+z")  # undo an add: the line is deleted
    expect(page.locator(f'svg.boxes polyline[data-annotation="{track["id"]}"]')).to_have_count(0)
    assert not page.js_errors


def test_screenshot_polygon_selected(page: Any, site: Site, polys: Polys) -> None:
    _open(page, site, polys, "shot")
    _edit_mode(page)
    f = _frame(page)
    _select(page, f, (290, 200), 4)
    page.mouse.click(*_centre(page, '.edit-vertex[data-vertex="2"]'))  # a point picked
    expect(page.locator(".edit-layer .edit-vertex.active")).to_have_count(1)
    page.mouse.move(4, 790)
    path = shoot(page, "web-edit-polygon")
    assert path.exists()
    assert not page.js_errors


def test_arrow_keys_move_a_shape_or_its_picked_point(page: Any, site: Site,
                                                    polys: Polys) -> None:
    _open(page, site, polys, "arrows")
    _edit_mode(page)
    f = _frame(page)
    _select(page, f, (290, 200), 4)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowUp")
    _saved(page)
    assert _vertices(site, polys, "arrows", "quad") == _points(
        [(x - 1, y - 10) for x, y in QUAD])
    # A picked point moves alone.
    cx, cy = _centre(page, '.edit-vertex[data-vertex="2"]')
    page.mouse.click(cx, cy)
    expect(page.locator(".edit-layer .edit-vertex.active")).to_have_count(1)
    _clear_status(page)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    _saved(page)
    moved = [(x - 1, y - 10) for x, y in QUAD]
    moved[2] = (moved[2][0], moved[2][1] + 2)
    assert _vertices(site, polys, "arrows", "quad") == _points(moved)
    assert len(site.service.item_history(polys.ds, "arrows")) == 2
    shoot(page, "web-edit-polygon-arrows")
    assert not page.js_errors
