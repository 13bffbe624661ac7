"""A live server with two datasets, and Debian's Chromium driven by Playwright.

The browser tests need ``/usr/bin/chromium`` and the ``playwright`` package (never
``playwright install``: it downloads a browser; see ``.ci/run``). Without either they
are skipped, with the reason (CI sets ``OCULA_REQUIRE_BROWSER=1``: there they fail).
Screenshots go to ``tests/web/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocula.core.services import Service
from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.fetch import fetch_url
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background

CHROMIUM = Path(os.environ.get("OCULA_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"
EVIL = "<img src=x onerror=alert(1)>"
# Muted fills, so the overlays' own colours stand out in screenshots.
LABELS = {"person": (150, 122, 112), "car": (108, 124, 150), "dog": (118, 146, 114)}
N_ITEMS = 40
COMMITTED_RUN, OPEN_RUN = "detector-a", "detector-b"  # committed; never committed


@dataclass
class Site:
    url: str
    key: str
    service: Any
    ds: str  # the main dataset's id
    evil: str  # the id of the dataset whose strings are HTML


def _boxes(i: int, w: int, h: int) -> list[tuple[str, float, float, float, float]]:
    """A few boxes per image, in places that depend on ``i`` (so tiles differ)."""
    out = [("person", 0.1 * w + (i * 7) % 60, 0.2 * h, 0.22 * w, 0.6 * h)]
    if i % 2 == 0:
        out.append(("car", 0.45 * w, 0.55 * h - (i * 5) % 40, 0.4 * w, 0.3 * h))
    if i % 3 == 0:
        out.append(("dog", 0.6 * w, 0.1 * h, 0.25 * w, 0.25 * h))
    return out


def _image(path: Path, w: int, h: int, boxes: list[tuple[str, float, float, float, float]],
           shade: int) -> None:
    """A JPEG whose coloured rectangles are where its boxes are, so a screenshot shows
    at a glance whether the overlays line up."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (w, h), (40 + shade, 44 + shade, 52 + shade))
    draw = ImageDraw.Draw(img)
    for x in range(0, w, 40):
        draw.line([(x, 0), (x, h)], fill=(60 + shade, 64 + shade, 72 + shade))
    for label, x, y, bw, bh in boxes:
        draw.rectangle([x, y, x + bw - 1, y + bh - 1], fill=LABELS[label])
    img.save(path, quality=90)


def _populate(service: Any, folder: Path) -> tuple[str, str]:
    ds = service.create_dataset("street scenes", metadata={"source": "synthetic"})["id"]
    items, anns = [], []
    for i in range(N_ITEMS):
        w, h = (480, 640) if i % 5 == 4 else (640, 480)  # some portrait images
        boxes = _boxes(i, w, h)
        path = folder / f"img_{i:03d}.jpg"
        _image(path, w, h, boxes, (i * 3) % 30)
        ref = f"img_{i:03d}"
        items.append(DatasetItem(str(path), ref, {"split": "val" if i % 4 == 0 else "train",
                                                  "index": i}))
        anns += [BoxAnnotation(label, x, y, bw, bh, reference_id=ref,
                               annotation_id=f"{ref}-{k}")
                 for k, (label, x, y, bw, bh) in enumerate(boxes)]
    service.append(ds, items)
    service.annotate(ds, anns)
    _runs(service, ds)
    service.create_slice(ds, "val split", reference_ids=[
        f"img_{i:03d}" for i in range(N_ITEMS) if i % 4 == 0])
    service.create_slice(ds, "portrait", reference_ids=[
        f"img_{i:03d}" for i in range(N_ITEMS) if i % 5 == 4])
    service.create_slice_from_query(
        ds, "missed", f'type = annotation and run = "{COMMITTED_RUN}" and status = fn',
        target="objects")
    evil = service.create_dataset(EVIL, metadata={EVIL: EVIL})["id"]
    path = folder / "evil.jpg"
    _image(path, 640, 480, [("person", 100, 100, 200, 200)], 0)
    service.append(evil, [DatasetItem(str(path), EVIL, {EVIL: EVIL})])
    service.annotate(evil, [BoxAnnotation(EVIL, 100, 100, 200, 200, reference_id=EVIL,
                                          metadata={EVIL: EVIL})])
    service.create_slice(evil, EVIL, reference_ids=[EVIL])
    service.create_run(service.list_models()[0]["id"], evil, EVIL, [
        BoxPrediction(EVIL, 110, 100, 200, 200, reference_id=EVIL, confidence=0.5)])
    return ds, evil


def _runs(service: Any, ds: str) -> None:
    """Two runs of one model: the committed one has TPs, FPs (a car box far off its car
    on every 4th image, a background box on every 7th) and FNs (those cars, and every
    dog); the other is never committed, so its boxes have no match status."""
    preds = []
    for i in range(N_ITEMS):
        w, h = (480, 640) if i % 5 == 4 else (640, 480)
        ref = f"img_{i:03d}"
        for label, x, y, bw, bh in _boxes(i, w, h):
            if label == "dog":
                continue
            dx = 0.3 * w if label == "car" and i % 4 == 0 else 4.0
            preds.append(BoxPrediction(label, min(x + dx, w - bw), y + 3, bw, bh,
                                       reference_id=ref, confidence=0.95 - i / 100))
        if i % 7 == 0:
            preds.append(BoxPrediction("person", 8, 8, 0.12 * w, 0.12 * h, reference_id=ref,
                                       confidence=0.31))
    model = service.add_model("detector", "detector")["id"]
    run = service.create_run(model, ds, COMMITTED_RUN, preds)["id"]
    service.commit_run(run)
    service.create_run(model, ds, OPEN_RUN, preds[::2])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    images = root / "images"
    images.mkdir()
    service = Service.open(root / "home", local_roots=[images], fetcher=fetch_url)
    key = service.create_key("browser")["key"]
    ds, evil = _populate(service, images)
    app = create_app(service, settings=ServerSettings(job_workers=1))
    with serve_in_background(app) as url:
        yield Site(url, key, service, ds, evil)
    service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # CI installs both (.ci/run) and sets OCULA_REQUIRE_BROWSER: there a missing browser
    # fails the run instead of skipping the app's tests.
    required = bool(os.environ.get("OCULA_REQUIRE_BROWSER"))
    if not CHROMIUM.exists():
        (pytest.fail if required else pytest.skip)(
            f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        (pytest.fail if required else pytest.skip)(
            "playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def anon(browser: Any) -> Iterator[Any]:
    """A fresh page (1280×800) without a session."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def page(anon: Any, site: Site) -> Any:
    """A fresh page logged in (the session cookie set by POST /login)."""
    answer = anon.context.request.post(f"{site.url}/login", data={"key": site.key})
    assert answer.ok, answer.text()
    return anon


def count_objects(page: Any, site: Site, ds: str, query: str, slice_id: str | None) -> int:
    """How many objects an object query selects (over HTTP, with the page's session)."""
    answer = page.context.request.post(
        f"{site.url}/api/v1/datasets/{ds}/query/objects",
        data={"query": query, "slice": slice_id, "with_total": True, "page_size": 1},
        headers={"X-CSRF-Token": page.locator('meta[name="csrf-token"]').get_attribute("content")})
    assert answer.ok, answer.text()
    return answer.json()["total"]


def shoot(page: Any, name: str) -> Path:
    """Save a 1280×800 screenshot of ``page`` to the artifacts folder."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
