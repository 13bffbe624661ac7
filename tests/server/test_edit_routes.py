"""The edit routes over HTTP: who is recorded as the author (the API key, a browser
session's key, or on a server without keys the body's author), the JSON of a 409
and of a 422 naming the operation, and polygon vertices checked at the boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from ocula import BoxAnnotation, DatasetItem, PolygonAnnotation
from ocula.core.services import Service
from ocula.core.services.edits import local_author
from ocula.server import create_app
from ocula.server.background import serve_in_background
from ocula.server.web.sessions import CSRF_HEADER, SESSION_COOKIE, Session, csrf_token
from tests.conftest import make_images
from tests.server.conftest import Live

TRIANGLE = [{"x": 10.0, "y": 10.0}, {"x": 50.0, "y": 10.0}, {"x": 30.0, "y": 40.0}]


def _item(service: Service, tmp_path: Path) -> dict[str, Any]:
    """A dataset "d" whose item "a" has one box; that box's JSON."""
    (image,) = make_images(tmp_path / "img", 1, size=(100, 80))
    service.create_dataset("d")
    ds = service.get_dataset("d")["id"]
    # A server reads no client paths: the image comes as uploaded bytes.
    service.append("d", [DatasetItem(str(image), "a")], uploads={"a": image.read_bytes()})
    service.annotate("d", [BoxAnnotation("car", 1, 1, 10, 10, reference_id="a")])
    box = service.get_item("d", reference_id="a")["annotations"]["box"][0]
    return {**box, "dataset": ds}


def _relabel(box: dict[str, Any], label: str, **extra: Any) -> dict[str, Any]:
    return {"reference_id": "a", "edits": [
        {"op": "update", "id": box["id"], "expected": box["version"], "label": label}],
        **extra}


def test_the_author_is_the_key_or_the_sessions_key(live: Live, tmp_path: Path) -> None:
    box = _item(live.service, tmp_path)
    url = f"{live.url}/api/v1/datasets/{box['dataset']}/item"
    keyed = httpx.post(f"{url}/edits", json=_relabel(box, "bus", author="someone else"),
                       headers={"Authorization": f"Bearer {live.key}"})
    assert keyed.status_code == 200, keyed.text
    assert keyed.json()["author"] == "tests"  # a keyed caller cannot claim another name

    ana = live.service.create_key("ana's laptop")["key"]
    with httpx.Client(base_url=live.url) as browser:
        assert browser.post("/login", json={"key": ana}).status_code == 200
        kid, _, nonce, sig = browser.cookies[SESSION_COOKIE].split(".")
        token = csrf_token(Session(kid, nonce, sig))
        after = keyed.json()["edits"][0]["after"]
        answer = browser.post(f"/api/v1/datasets/{box['dataset']}/item/edits",
                              json=_relabel(after, "van"), headers={CSRF_HEADER: token})
        assert answer.status_code == 200, answer.text
        assert answer.json()["author"] == "ana's laptop"
        history = browser.get(f"/api/v1/datasets/{box['dataset']}/item/history",
                              params={"reference_id": "a"})
    assert [(h["author"], h["after"]["label"]) for h in history.json()] == [
        ("ana's laptop", "van"), ("tests", "bus")]


def test_conflicts_and_bad_operations_answer_json(live: Live, tmp_path: Path) -> None:
    box = _item(live.service, tmp_path)
    auth = {"Authorization": f"Bearer {live.key}"}
    url = f"{live.url}/api/v1/datasets/{box['dataset']}/item/edits"
    assert httpx.post(url, json=_relabel(box, "bus"), headers=auth).status_code == 200
    stale = httpx.post(url, json=_relabel(box, "van"), headers=auth)
    assert stale.status_code == 409
    body = stale.json()
    assert body["error"] == "conflict" and body["info"]["edit"] == 0
    assert body["info"]["current"]["label"] == "bus" and body["info"]["version"] == 2
    bad = httpx.post(url, headers=auth, json={"reference_id": "a", "edits": [
        {"op": "delete", "id": box["id"], "expected": 2},
        {"op": "add", "annotation": {"type": "box", "label": "p",
                                     "geometry": {"x": 1, "y": 1, "width": 500, "height": 1}}},
        {"op": "teleport"}]})
    assert bad.status_code == 422 and bad.json()["error"] == "batch_rejected"
    assert [e["info"]["edit"] for e in bad.json()["info"]["errors"]] == [2]
    outside = httpx.post(url, headers=auth, json={"reference_id": "a", "edits": [
        {"op": "add", "annotation": {"type": "box", "label": "p",
                                     "geometry": {"x": 1, "y": 1, "width": 500, "height": 1}}}]})
    assert outside.status_code == 422 and "edit #0" in outside.json()["detail"]
    assert live.service.get_item("d", reference_id="a")["annotations"]["box"][0]["label"] == "bus"
    assert len(live.service.item_history("d", "a")) == 1


def test_without_keys_the_body_names_the_author(tmp_path: Path) -> None:
    service = Service.open(tmp_path / "home", local_roots=[])
    box = _item(service, tmp_path)
    with serve_in_background(create_app(service, auth=False)) as url:
        edits = f"{url}/api/v1/datasets/{box['dataset']}/item/edits"
        named = httpx.post(edits, json=_relabel(box, "bus", author="ana"))
        assert named.json()["author"] == "ana"
        unnamed = httpx.post(edits, json=_relabel(named.json()["edits"][0]["after"], "van"))
        assert unnamed.json()["author"] == local_author()
    service.close()


def test_polygon_edits_over_http_and_bad_vertices_are_422(live_db: Live,
                                                          tmp_path: Path) -> None:
    """A vertex moved over HTTP, its undo, and vertices no JSON editor should send
    (NaN, a huge integer, text, too few): each a 422 naming the operation, never a 500,
    on both databases."""
    box = _item(live_db.service, tmp_path)
    live_db.service.annotate("d", [PolygonAnnotation("roof", TRIANGLE, reference_id="a",
                                                     annotation_id="roof")])
    (tri,) = live_db.service.get_item("d", reference_id="a")["annotations"]["polygon"]
    auth = {"Authorization": f"Bearer {live_db.key}", "Content-Type": "application/json"}
    url = f"{live_db.url}/api/v1/datasets/{box['dataset']}/item/edits"

    def post(vertices: str, expected: int) -> httpx.Response:
        # Raw text: the JSON of NaN and of huge numbers is what a careless client sends.
        return httpx.post(url, headers=auth, content=(
            f'{{"reference_id": "a", "edits": [{{"op": "update", "id": "{tri["id"]}", '
            f'"expected": {expected}, "geometry": {{"vertices": {vertices}}}}}]}}'))

    for bad, why in [('[{"x": NaN, "y": 1}, {"x": 5, "y": 5}, {"x": 9, "y": 1}]', "finite"),
                     ('[{"x": 1e999, "y": 1}, {"x": 5, "y": 5}, {"x": 9, "y": 1}]', "finite"),
                     (f'[{{"x": 1{"0" * 400}, "y": 1}}, {{"x": 5, "y": 5}}, {{"x": 9, "y": 1}}]',
                      "finite"),
                     ('[{"x": "a", "y": 1}, {"x": 5, "y": 5}, {"x": 9, "y": 1}]', "finite"),
                     ('[{"x": 1, "y": 1}, {"x": 5, "y": 5}]', "at least 3 vertices"),
                     ('"square"', "must be a list")]:
        answer = post(bad, tri["version"])
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"] == "batch_rejected"
        assert "edit #0: " in answer.json()["detail"] and why in answer.json()["detail"]
    moved = post('[{"x": 12, "y": 8}, {"x": 50, "y": 10}, {"x": 30, "y": 40}]', tri["version"])
    assert moved.status_code == 200, moved.text
    step = moved.json()["edits"][0]
    assert step["after"]["geometry"]["vertices"][0] == {"x": 12, "y": 8}
    assert step["inverse"]["geometry"] == {"vertices": TRIANGLE}
    stale = post('[{"x": 14, "y": 8}, {"x": 50, "y": 10}, {"x": 30, "y": 40}]', tri["version"])
    assert stale.status_code == 409
    assert stale.json()["info"]["current"]["geometry"]["vertices"][0] == {"x": 12, "y": 8}
    undo = httpx.post(url, headers=auth, json={"reference_id": "a", "edits": [step["inverse"]]})
    assert undo.status_code == 200, undo.text
    (now,) = live_db.service.get_item("d", reference_id="a")["annotations"]["polygon"]
    assert now["geometry"]["vertices"] == TRIANGLE and now["area"] == tri["area"]
