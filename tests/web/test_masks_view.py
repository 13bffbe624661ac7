"""The item page fills masks (ground truth and a run's predictions) on their pixels, in
the colours their boxes would have, toggled with the layers; the mask's hole stays
unfilled, and hovering a mask's pixels points at it; in edit mode a mask is relabelled
or deleted (not moved); in a real browser."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocula.core.services import Service
from ocula.core.types import DatasetItem, MaskAnnotation, MaskPrediction
from ocula.fetch import fetch_url
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background
from tests.web.conftest import Site, shoot
from tests.web.test_editing import _edit_mode

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect

W, H = 640, 480
RUN = "segmenter"
BACKGROUND = (50, 54, 60)


def _disk(cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


BALL = _disk(200, 240, 80)
CAR = _rect(380, 120, 560, 260) & ~_rect(440, 170, 480, 210)  # a hole in it
FOUND = _disk(205, 240, 78)  # the run's ball: a TP
STRAY = _rect(40, 360, 120, 440)  # the run's "car" where there is none: an FP


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Its own catalog: one 640×480 image with two masks and a committed run of two."""
    root = tmp_path_factory.mktemp("masks")
    images = root / "images"
    images.mkdir()
    img = Image.new("RGB", (W, H), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for x in range(30, W, 40):  # never on a pixel the tests read
        draw.line([(x, 0), (x, H)], fill=(62, 66, 74))
    img.save(images / "scene.png")
    service = Service.open(root / "home", local_roots=[images], fetcher=fetch_url)
    key = service.create_key("browser")["key"]
    ds = service.create_dataset("masks")["id"]
    service.append(ds, [DatasetItem(str(images / "scene.png"), "scene")])
    service.annotate(ds, [MaskAnnotation("ball", BALL, "scene", annotation_id="ball"),
                          MaskAnnotation("car", CAR, "scene", annotation_id="car")])
    model = service.add_model("segmenter", "segmenter")["id"]
    run = service.create_run(model, ds, RUN, [
        MaskPrediction("ball", FOUND, "scene", confidence=0.9),
        MaskPrediction("car", STRAY, "scene", confidence=0.6)])["id"]
    service.commit_run(run, iou_type="segm")
    app = create_app(service, settings=ServerSettings(job_workers=1))
    with serve_in_background(app) as url:
        yield Site(url, key, service, ds, ds)
    service.close()


def _open(page: Any, site: Site, search: str = "") -> dict[str, Any]:
    item = site.service.get_item(site.ds, reference_id="scene")["item"]
    page.goto(f"{site.url}/datasets/{site.ds}/items/{item['id']}{search}")
    page.wait_for_selector("#item-view[data-ready=true]")
    page.wait_for_function("() => { const i = document.querySelector('.figure.full img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    return _frame(page)


def _frame(page: Any) -> dict[str, Any]:
    """The image's rectangle on screen and its scale (screen px per image px)."""
    return page.evaluate("""(w) => {
      const r = document.querySelector('.figure.full img').getBoundingClientRect();
      return { left: r.left, top: r.top, scale: r.width / w };
    }""", W)


def _pixel(page: Any, f: dict[str, Any], x: float, y: float) -> tuple[int, int, int]:
    """The colour on screen at image pixel (x, y)."""
    sx, sy = f["left"] + (x + 0.5) * f["scale"], f["top"] + (y + 0.5) * f["scale"]
    png = page.screenshot(clip={"x": int(sx), "y": int(sy), "width": 1, "height": 1})
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((0, 0))


def _ids(site: Site) -> dict[str, str]:
    labels = site.service.get_item(site.ds, reference_id="scene")["annotations"]["mask"]
    return {a["annotation_id"]: a["id"] for a in labels}


def test_masks_are_filled_on_their_pixels(page: Any, site: Site) -> None:
    f = _open(page, site)
    ids = _ids(site)
    expect(page.locator(".figure.full svg.boxes path.mask")).to_have_count(2)
    page.mouse.move(2, 790)
    inside, hole = _pixel(page, f, 200, 240), _pixel(page, f, 460, 190)
    edge_in, edge_out = _pixel(page, f, 120, 240), _pixel(page, f, 118, 240)
    car = _pixel(page, f, 390, 130)
    # Off, the ground-truth layer leaves the image as it is.
    page.locator("input[data-layer=gt]").uncheck()
    expect(page.locator(".figure.full svg.boxes path.mask")).to_have_count(0)
    plain = _pixel(page, f, 200, 240)
    assert max(abs(a - b) for a, b in zip(plain, BACKGROUND, strict=True)) <= 3
    assert max(abs(a - b) for a, b in zip(inside, plain, strict=True)) > 40  # filled
    assert max(abs(a - b) for a, b in zip(car, plain, strict=True)) > 40
    assert inside != car  # each label its own colour
    assert max(abs(a - b) for a, b in zip(hole, plain, strict=True)) <= 3  # the hole is not
    # Exactly on its pixels: the disk's leftmost column is filled, the one before is not.
    assert max(abs(a - b) for a, b in zip(edge_in, plain, strict=True)) > 40
    assert max(abs(a - b) for a, b in zip(edge_out, plain, strict=True)) <= 3
    page.locator("input[data-layer=gt]").check()
    # A mask is pointed at by its pixels (the tooltip, the list), not by its box.
    sx, sy = f["left"] + 200 * f["scale"], f["top"] + 240 * f["scale"]
    page.mouse.move(sx, sy)
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_contain_text("ball")
    expect(tooltip).to_contain_text(f"mask 161×161 at (120, 160), {int(BALL.sum()):,} px")
    expect(page.locator(f'#annotations li[data-annotation="{ids["ball"]}"]')).to_have_class(
        "hot")
    hx, hy = f["left"] + 460 * f["scale"], f["top"] + 190 * f["scale"]
    page.mouse.move(hx, hy)  # inside the car's box, in its hole
    expect(tooltip).to_be_hidden()
    assert not page.js_errors


def test_a_runs_masks_by_match_status_and_screenshot(page: Any, site: Site) -> None:
    f = _open(page, site, f"?layers=gt&layers=run:{RUN}")
    masks = page.locator(".figure.full svg.boxes path.mask")
    expect(masks).to_have_count(4)
    expect(page.locator(".figure.full svg.boxes path.mask.pred.tp")).to_have_count(1)
    expect(page.locator(".figure.full svg.boxes path.mask.pred.fp")).to_have_count(1)
    expect(page.locator(".figure.full svg.boxes path.mask.gt.fn")).to_have_count(1)  # the car
    stray = _pixel(page, f, 80, 400)
    fp = page.evaluate("() => getComputedStyle(document.querySelector("
                       "'svg.boxes path.mask.pred.fp')).fill")
    assert fp == "rgb(255, 61, 127)"  # the stylesheet's FP colour, as an FP box's line
    assert stray[0] > stray[1] + 40  # red-magenta over the grey background
    # Masks are drawn under the outlines, so a polygon or box over one stays reachable.
    order = page.evaluate("() => [...document.querySelectorAll('.figure.full svg.boxes > *')]"
                          ".map((el) => el.tagName)")
    assert order == ["path"] * 4
    page.mouse.move(2, 790)
    path = shoot(page, "web-item-masks")
    assert path.exists()
    # The run's layer off: its masks go, the ground truth's stay.
    page.locator(f'input[data-run="{RUN}"]').uncheck()
    expect(masks).to_have_count(2)
    assert not page.js_errors


def test_a_mask_is_relabelled_and_deleted_not_moved(page: Any, site: Site) -> None:
    _open(page, site)
    ball = _ids(site)["ball"]
    _edit_mode(page)
    f = _frame(page)
    sx, sy = f["left"] + 200 * f["scale"], f["top"] + 240 * f["scale"]
    # A drag on a mask selects it and moves nothing (masks are not edited in place).
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(sx + 40, sy + 30)
    page.mouse.up()
    selected = page.locator(f'svg.boxes path.mask[data-annotation="{ball}"]')
    expect(selected).to_have_class(re.compile(r"\bselected\b"))
    assert site.service.item_history(site.ds, "scene") == []
    page.keyboard.press("l")
    page.fill("#label-input", "sphere")
    page.keyboard.press("Enter")
    expect(page.locator("#edit-status")).to_contain_text("Saved")
    (after,) = [a for a in site.service.get_item(site.ds, reference_id="scene")["annotations"][
        "mask"] if a["id"] == ball]
    assert after["label"] == "sphere" and after["geometry"]["rle"]["counts"]
    page.keyboard.press("Delete")
    expect(selected).to_have_count(0)
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    expect(page.locator("#edit-history li")).to_have_count(4)
    (back,) = [a for a in site.service.get_item(site.ds, reference_id="scene")["annotations"][
        "mask"] if a["id"] == ball]
    assert back["label"] == "ball"
    assert not page.js_errors


def test_mask_paths_cover_exactly_the_masks_pixels(page: Any, site: Site) -> None:
    """overlay.maskShape, run in the page on masks of every kind of run: each pixel of
    the mask is covered by exactly one rectangle of its path, and no other pixel."""
    from ocula.core.masks import rle_encode

    _open(page, site)
    rng = np.random.default_rng(7)
    h, w = 37, 23
    masks = [rng.random((h, w)) < 0.5,  # noise: runs of every length
             np.ones((h, w), dtype=bool),  # one run over every column, starting at 0
             np.zeros((h, w), dtype=bool),  # empty
             _cols(h, w, 3, 9),  # whole columns: runs that cross columns
             np.pad(np.ones((5, 6), dtype=bool), ((10, h - 15), (4, w - 10)))]
    masks[0][:, 0] = True  # counts starting with a zero-length run of zeros
    shapes = page.evaluate("""async (rles) => {
      const overlay = await import('/static/overlay.js');
      return rles.map((r) => overlay.maskShape(r));
    }""", [rle_encode(m) for m in masks])
    for mask, shape in zip(masks, shapes, strict=True):
        cover = np.zeros((h, w), dtype=int)
        for x, y, dx, dy, back in re.findall(r"M(\d+) (\d+)h(-?\d+)v(\d+)h(-?\d+)z", shape["d"]):
            assert int(back) == -int(dx) and int(dx) > 0 and int(dy) > 0
            cover[int(y):int(y) + int(dy), int(x):int(x) + int(dx)] += 1
        assert cover.max(initial=0) <= 1
        assert np.array_equal(cover == 1, mask)
        if mask.any():
            ys, xs = np.nonzero(mask)
            assert shape["box"] == {"x": xs.min(), "y": ys.min(), "width": xs.max() - xs.min() + 1,
                                    "height": ys.max() - ys.min() + 1}
        else:
            assert shape == {"d": "", "box": None}
    assert shapes[1]["d"].count("M") == 1  # a full mask is one rectangle
    assert not page.js_errors


def _cols(h: int, w: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[:, x0:x1] = True
    return m
