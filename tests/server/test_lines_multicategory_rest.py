"""Lines, multicategory annotations and taxonomies on the REST API (``/api/v1``), on
both databases: the JSON forms, and each mistake answered 4xx with its code, nothing
written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ocula import DatasetItem
from ocula.client.client import Client
from tests.conftest import make_images
from tests.server.conftest import Live


@pytest.fixture
def rest(live_db: Live, tmp_path: Path) -> tuple[httpx.Client, str]:
    ds = Client(live_db.url, api_key=live_db.key).create_dataset("rest")
    paths = make_images(tmp_path / "imgs", 1, size=(100, 80))
    ds.append([DatasetItem(str(paths[0]), "r0")])
    http = httpx.Client(base_url=f"{live_db.url}/api/v1",
                        headers={"Authorization": f"Bearer {live_db.key}"})
    assert http.post(f"/datasets/{ds.id}/taxonomies", json={
        "name": "tags", "type": "multicategory", "labels": ["a", "b"]}).status_code == 200
    return http, ds.id


LINE = {"type": "line", "label": "lane", "reference_id": "r0", "annotation_id": "l",
        "geometry": {"vertices": [{"x": 1, "y": 2}, {"x": 30, "y": 40}]}}
MULTI = {"type": "multicategory", "labels": ["a", "b"], "reference_id": "r0",
         "taxonomy_name": "tags"}


def test_json_forms_round_trip(rest: tuple[httpx.Client, str], live_db: Live) -> None:
    http, ds = rest
    answer = http.post(f"/datasets/{ds}/annotations", json={"annotations": [LINE, MULTI]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["annotations_processed"] == 2
    stored = {a["type"]: a for a in http.get(f"/datasets/{ds}/annotations").json()}
    assert stored["line"]["geometry"] == {"vertices": [{"x": 1, "y": 2}, {"x": 30, "y": 40}]}
    assert (stored["line"]["label"], stored["line"]["annotation_id"]) == ("lane", "l")
    assert (stored["multicategory"]["labels"], stored["multicategory"]["taxonomy_name"],
            stored["multicategory"]["label"]) == (["a", "b"], "tags", None)
    assert http.get(f"/datasets/{ds}/taxonomies").json() == [
        {"name": "tags", "type": "multicategory", "labels": ["a", "b"]}]
    schema = str(live_db.app.openapi())
    assert "'line'" in schema and "'multicategory'" in schema and "taxonomies" in schema


@pytest.mark.parametrize("bad, code, why", [
    ({**LINE, "geometry": {"vertices": [{"x": 1, "y": 2}]}}, "bad_geometry", "2 vertices"),
    ({**LINE, "geometry": {"vertices": [{"x": "left", "y": 2}, {"x": 3, "y": 4}]}},
     "invalid", "malformed"),
    ({**LINE, "geometry": {"vertices": "nope"}}, "invalid", "list of points"),
    ({**LINE, "geometry": {"vertices": [{"x": 1, "y": 2}, {"x": 500, "y": 4}]}},
     "bad_geometry", "outside"),
    ({**MULTI, "labels": ["a", "z"]}, "invalid", "'z' not in taxonomy 'tags'"),
    ({**MULTI, "labels": "a"}, "invalid", "list of strings"),
    ({**MULTI, "taxonomy_name": "ghost"}, "invalid", "'ghost' does not exist"),
])
def test_mistakes_are_4xx_and_write_nothing(rest: tuple[httpx.Client, str], bad: Any,
                                            code: str, why: str) -> None:
    http, ds = rest
    answer = http.post(f"/datasets/{ds}/annotations", json={"annotations": [LINE, bad]})
    assert 400 <= answer.status_code < 500, answer.text
    body = answer.json()
    assert why in answer.text, body
    assert code in answer.text, body
    assert http.get(f"/datasets/{ds}/annotations").json() == []


def test_taxonomy_mistakes(rest: tuple[httpx.Client, str]) -> None:
    http, ds = rest
    answer = http.post(f"/datasets/{ds}/taxonomies", json={
        "name": "x", "type": "polygon", "labels": ["a"]})
    assert answer.status_code == 422
    answer = http.post(f"/datasets/{ds}/taxonomies", json={
        "name": "x", "type": "category", "labels": []})
    assert answer.status_code == 422
    answer = http.delete(f"/datasets/{ds}/taxonomy", params={"name": "ghost"})
    assert answer.status_code == 404 and "ghost" in answer.text
