"""The item page draws lines as open polylines and polygons as their outlines, on their
pixels (hover one for its tooltip), and lists multicategory annotations by their labels;
the objects view crops a polygon's tile around it; in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from ocula.core.services import Service
from ocula.core.types import (
    BoxAnnotation,
    DatasetItem,
    LineAnnotation,
    MultiCategoryAnnotation,
    PolygonAnnotation,
)
from ocula.fetch import fetch_url
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background
from tests.web.conftest import Site, shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect

LANE = [(40.0, 400.0), (300.0, 250.0), (600.0, 420.0)]
ZONE = [(400.0, 60.0), (560.0, 80.0), (520.0, 200.0), (420.0, 170.0)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Its own small catalog: one 640×480 image with a line, a box and a multicategory."""
    root = tmp_path_factory.mktemp("lines")
    images = root / "images"
    images.mkdir()
    Image.new("RGB", (640, 480), (50, 54, 60)).save(images / "road.jpg")
    service = Service.open(root / "home", local_roots=[images], fetcher=fetch_url)
    key = service.create_key("browser")["key"]
    ds = service.create_dataset("roads")["id"]
    service.append(ds, [DatasetItem(str(images / "road.jpg"), "road")])
    service.annotate(ds, [LineAnnotation("lane", LANE, "road", annotation_id="lane"),
                          BoxAnnotation("car", 100, 100, 50, 40, "road", annotation_id="car"),
                          MultiCategoryAnnotation(["dusk", "wet"], "road"),
                          PolygonAnnotation("zone", ZONE, "road", annotation_id="zone")])
    app = create_app(service, settings=ServerSettings(job_workers=1))
    with serve_in_background(app) as url:
        yield Site(url, key, service, ds, ds)
    service.close()


POINTS = """(selector) => {
  const img = document.querySelector('.figure.full img');
  const r = img.getBoundingClientRect();
  const el = document.querySelector(selector);
  const m = el.getScreenCTM();
  const pts = [...el.points].map((p) => [p.x * m.a + m.e, p.y * m.d + m.f]);
  return { pts, img: [r.left, r.top, r.width / img.naturalWidth, r.height / img.naturalHeight],
           fill: getComputedStyle(el).fill, tag: el.tagName };
}"""


def _open_item(page: Any, site: Site) -> None:
    """The item page of the one image, once its image is drawn."""
    item = site.service.get_item(site.ds, reference_id="road")["item"]
    page.goto(f"{site.url}/datasets/{site.ds}/items/{item['id']}")
    page.wait_for_selector("#item-view[data-ready=true]")
    page.wait_for_function("() => { const i = document.querySelector('.figure.full img');"
                           " return i && i.complete && i.naturalWidth > 0; }")


def test_lines_are_drawn_on_their_pixels(page: Any, site: Site) -> None:
    _open_item(page, site)
    expect(page.locator(".figure.full polyline.line")).to_have_count(1)
    expect(page.locator(".figure.full rect.box")).to_have_count(1)  # the car
    drawn = page.evaluate(POINTS, ".figure.full polyline.line")
    left, top, kx, ky = drawn["img"]
    for (sx, sy), (x, y) in zip(drawn["pts"], LANE, strict=True):
        assert abs(sx - (left + x * kx)) < 1.0 and abs(sy - (top + y * ky)) < 1.0
    assert drawn["fill"] == "none"  # open: no fill between its ends
    # The list names the line and the multicategory's labels.
    entries = page.locator(".annotations li").all_inner_texts()
    assert any("lane" in e and "line of 3 points" in e for e in entries), entries
    assert any("dusk, wet" in e for e in entries), entries
    # Hovering the line's middle vertex shows its tooltip.
    sx, sy = drawn["pts"][1]
    page.mouse.move(sx, sy)
    expect(page.locator("#tooltip")).to_contain_text("lane")
    assert page.js_errors == []
    shoot(page, "item-lines")


def test_polygons_are_drawn_closed_on_their_pixels(page: Any, site: Site) -> None:
    _open_item(page, site)
    expect(page.locator(".figure.full polygon.poly")).to_have_count(1)
    drawn = page.evaluate(POINTS, ".figure.full polygon.poly")
    assert drawn["tag"] == "polygon"
    left, top, kx, ky = drawn["img"]
    for (sx, sy), (x, y) in zip(drawn["pts"], ZONE, strict=True):
        assert abs(sx - (left + x * kx)) < 1.0 and abs(sy - (top + y * ky)) < 1.0
    entries = page.locator(".annotations li").all_inner_texts()
    assert any("zone" in e and "polygon of 4 points" in e for e in entries), entries
    # Inside the outline (not only on it) is the polygon's: hover shows its tooltip.
    cx = sum(p[0] for p in drawn["pts"]) / 4
    cy = sum(p[1] for p in drawn["pts"]) / 4
    page.mouse.move(cx, cy)
    expect(page.locator("#tooltip")).to_contain_text("zone")
    # The objects view: a tile cropped around the polygon, with it drawn.
    page.goto(f"{site.url}/datasets/{site.ds}?target=objects&q=" + "shape%20%3D%20polygon")
    tile = page.locator(".object-tile")
    expect(tile).to_have_count(1)
    expect(tile.locator("svg.patch-svg polygon.poly")).to_have_count(1)
    x, y, side, _ = map(float, tile.locator("svg.patch-svg").get_attribute("viewBox").split())
    assert x < 400 and y < 60 and x + side > 560 and y + side > 200
    # The sidebar's labels are the objects' own: a multicategory's missing one is none.
    assert page.locator("#labels .label-name").all_inner_texts() == ["car", "lane", "zone"]
    assert page.js_errors == []
    shoot(page, "objects-polygon")
