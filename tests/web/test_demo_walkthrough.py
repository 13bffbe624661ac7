"""After ``ocula demo``: from a run's metrics to its worst false positive to a fixed
label, by clicks only (the README's "From a metric to a fixed label" walks the same path
with this test's screenshots).

The demo's labels were reviewed frame by frame, so none of its false positives is a
person nobody labelled. To walk the path a forgotten label makes, the test first deletes
one ground-truth person (on a copy of the demo catalog) that ``hog-people`` finds with
confidence 1.0 and re-commits: that prediction is then the most confident false positive
"on background", the user accepts it as ground truth, and after a re-commit it is a true
positive again.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ocula.core.services import Service
from ocula.fetch import fetch_url
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background
from tests.conftest import DemoBuild
from tests.web.conftest import shoot

pw = pytest.importorskip("playwright.sync_api")
expect = pw.expect
RUN = "hog-people"
FRAME = "vtest_0794"
# The person hog-people finds at confidence 1.0 on FRAME, alone (no other box near it).
FORGOTTEN = {"x": 655, "y": 147}


def _query(service: Any, ds: str, query: str) -> list[dict[str, Any]]:
    return service.query_objects(ds, query, page_size=500)["objects"]


def _run_id(service: Any, ds: str) -> str:
    return next(r["id"] for r in service.list_runs(ds) if r["name"] == RUN)


@pytest.fixture(scope="module")
def demo_site(demo_build: DemoBuild, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[str, Any, str]]:
    """The demo catalog (a copy: the session's build stays as built) served as
    ``ocula demo`` serves it: on loopback, without API keys."""
    home = tmp_path_factory.mktemp("walkthrough") / "home"
    shutil.copytree(demo_build.home, home)
    service = Service.open(home, fetcher=fetch_url)
    ds = next(d["id"] for d in service.list_datasets() if d["name"] == "ocula-demo")
    gt = _query(service, ds, f'type = annotation and item(reference_id = "{FRAME}")')
    forgotten = [a for a in gt if abs(a["geometry"]["x"] - FORGOTTEN["x"]) < 3
                 and abs(a["geometry"]["y"] - FORGOTTEN["y"]) < 3]
    assert len(forgotten) == 1, gt
    service.delete_annotations(ds, annotation_ids=[forgotten[0]["id"]],
                               message="walkthrough: a forgotten label")
    service.commit_run(_run_id(service, ds))
    app = create_app(service, auth=False, settings=ServerSettings(job_workers=1))
    with serve_in_background(app) as url:
        yield url, service, ds
    service.close()


def _step(page: Any, n: int, name: str, timings: list[tuple[str, float]], t0: float) -> None:
    timings.append((name, time.monotonic() - t0))
    shoot(page, f"walkthrough-{n}-{name}")


def test_from_a_metric_to_a_fixed_label(anon: Any, demo_site: tuple[str, Any, str]) -> None:
    url, service, ds = demo_site
    page = anon
    preds = f'type = prediction and run = "{RUN}" and item(reference_id = "{FRAME}")'
    # The forgotten person's box: a false positive with nobody's box near it.
    worst = max((p for p in _query(service, ds, preds)
                 if p["status"] == "fp" and not (p["iou"] or 0) >= 0.1),
                key=lambda p: p["confidence"])
    assert worst["confidence"] > 0.99
    timings: list[tuple[str, float]] = []
    clicks = 0
    page.goto(url + "/")  # the only URL typed: the rest is clicks
    t0 = time.monotonic()
    _step(page, 1, "datasets", timings, t0)

    page.get_by_role("link", name="ocula-demo").click()
    clicks += 1
    expect(page.locator("#runs-link")).to_be_visible()
    _step(page, 2, "dataset", timings, t0)

    page.click("#runs-link")
    clicks += 1
    row = page.locator(".run-row", has_text=RUN)
    expect(row.locator('[data-key="AP"]')).not_to_have_text("…")
    _step(page, 3, "runs", timings, t0)

    row.locator(".run-link").click()
    clicks += 1
    expect(page.locator("#run-page")).to_have_attribute("data-loaded", re.compile(".*"))
    background = page.locator('#failures a.failure-n[data-key="background"]')
    expect(background).to_be_visible()
    _step(page, 4, "run", timings, t0)
    background.evaluate("a => a.scrollIntoView({ block: 'center' })")  # a user scrolls
    _step(page, 5, "failures", timings, t0)

    background.click()
    clicks += 1
    page.wait_for_url(re.compile(r".*target=objects.*"))
    tiles = page.locator(".object-tile")
    expect(tiles.first).to_be_visible()
    # The link opens the false positives most confident first: the worst is the first.
    expect(page.locator("#sort")).to_have_value("confidence desc")
    expect(tiles.first).to_have_attribute("data-object", worst["id"])
    page.wait_for_load_state("networkidle")  # the tiles' crops drawn, for the screenshot
    _step(page, 6, "false-positives", timings, t0)

    tiles.first.click()
    clicks += 1
    page.wait_for_selector("#item-view[data-ready=true]")
    page.wait_for_function("() => { const i = document.querySelector('.figure.full img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    entry = page.locator(f'#annotations li[data-annotation="{worst["id"]}"]')
    expect(entry.locator("button.accept")).to_be_visible()
    _step(page, 7, "item", timings, t0)

    entry.locator("button.accept").click()
    clicks += 1
    expect(page.locator("#edit-status")).to_contain_text("Saved")
    expect(page.locator("#edit-history li").first).to_contain_text("accepted prediction")
    page.locator("#edit-history").scroll_into_view_if_needed()  # below the object list
    _step(page, 8, "accepted", timings, t0)
    walk = time.monotonic() - t0

    # The API sees the new ground truth, with the prediction's box.
    answer = page.context.request.post(f"{url}/api/v1/datasets/{ds}/query/objects", data={
        "query": f'type = annotation and item(reference_id = "{FRAME}")', "page_size": 100})
    assert answer.ok, answer.text()
    accepted = [a for a in answer.json()["objects"]
                if a["annotation_id"] == f"accepted:{worst['id']}"]
    assert len(accepted) == 1 and accepted[0]["geometry"] == worst["geometry"]
    # Re-committed, the run counts that prediction as a true positive.
    service.commit_run(_run_id(service, ds))
    after = {p["id"]: p for p in _query(service, ds, preds)}
    assert after[worst["id"]]["status"] == "tp"
    page.reload()
    page.wait_for_selector("#item-view[data-ready=true]")
    _step(page, 9, "recommitted", timings, t0)
    assert not page.js_errors
    print(f"\nwalkthrough: {clicks} clicks, {walk:.1f} s in the browser; steps: " +
          ", ".join(f"{name} {t:.1f}s" for name, t in timings))

