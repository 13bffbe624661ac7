"""Insights: known distributions of the scene, and every bucket's query selects exactly
that bucket's rows (click a bar → the same count)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.query.conftest import Scene
from tests.query.conftest import all_buckets as _buckets


def _count(scene: Scene, bucket: dict[str, Any]) -> int:
    method = (scene.service.query_items if bucket["target"] == "items"
              else scene.service.query_objects)
    return method("scene", bucket["query"], page_size=1, with_total=True)["total"]


@pytest.mark.parametrize(("slice", "query"), [
    (None, None), ("train", None), (None, 'metadata.weather in ["rain", "snow"]'),
    ("train", "count() > 2"),
    # A scope that sorts: its order by is no part of the bucket queries.
    (None, 'metadata.weather = "rain" order by metadata.speed desc'),
    ("train", "order by count() desc"),
])
def test_every_bucket_query_selects_its_bucket(scene: Scene, slice, query) -> None:
    result = scene.service.insights("scene", slice=slice, query=query, fresh=True)
    buckets = _buckets(result)
    assert len(buckets) > 10
    for bucket in buckets:
        assert _count(scene, bucket) == bucket["count"], bucket["query"]


def test_whole_dataset_values(scene: Scene) -> None:
    r = scene.service.insights("scene")
    assert r["scope"]["items"] == 6 and r["scope"]["annotations"] == 13
    assert {b["label"]: b["count"] for b in r["labels"]["annotations"]} == {
        "pedestrian": 7, "car": 4, "truck": 1, "day": 1}
    assert {b["label"]: b["count"] for b in r["labels"]["predictions"]["frcnn"]} == {
        "pedestrian": 4, "car": 3, "truck": 1}
    assert {b["value"]: b["count"] for b in r["annotations_per_item"]} == {
        0: 1, 1: 1, 2: 2, 3: 1, 5: 1}
    assert [(b["min"], b["count"]) for b in r["area"]] == [
        (64.0, 4), (128.0, 2), (512.0, 3), (1024.0, 2), (4096.0, 1), (None, 1)]
    assert r["area"][0]["query"] == "area >= 64 and area < 128"
    weather = {v["value"]: v["count"] for v in r["metadata"]["weather"]["values"]}
    assert weather == {"rain": 2, "snow": 1, "clear": 1, "fog": 1, None: 1}
    assert r["metadata"]["speed"]["type"] == "numeric"
    assert sum(b["count"] for b in r["metadata"]["speed"]["buckets"]) == 3
    assert r["metadata"]["speed"]["missing"] == 3  # two missing, one "fast"
    night = {v["value"]: v["count"] for v in r["metadata"]["night"]["values"]}
    assert night == {True: 1, False: 1, None: 4}
    cars = next(c for c in r["runs"]["frcnn"]["classes"] if c["label"] == "car")
    assert (cars["tp"], cars["fp"], cars["fn"]) == (2, 1, 2)
    assert cars["precision"] == pytest.approx(2 / 3) and cars["recall"] == 0.5
    assert r["runs"]["yolo"] == {"committed": False, "classes": []}


def test_scoped_values(scene: Scene) -> None:
    r = scene.service.insights("scene", slice="train", query='metadata.weather = "rain"')
    assert r["scope"]["items"] == 1 and r["scope"]["annotations"] == 5
    assert r["labels"]["annotations"][0] == {
        "label": "pedestrian", "count": 4, "target": "objects",
        "query": 'in_slice("train") and item(metadata.weather = "rain") and '
                 'label = "pedestrian"'}


def test_cache_follows_writes(service, tmp_path) -> None:
    """Slice and query results are cached until a write; a whole dataset reads its
    running totals, current after every write."""
    from ocula import BoxAnnotation
    from tests.query.conftest import build_scene

    build_scene(service, tmp_path)
    first = service.insights("scene", slice="train")
    assert service.insights("scene", slice="train") is first
    service.annotate("scene", [BoxAnnotation("car", 0, 0, 5, 5, reference_id="img0")])
    second = service.insights("scene", slice="train")
    assert second["scope"]["annotations"] == first["scope"]["annotations"] + 1
    assert service.insights("scene")["scope"]["annotations"] == 14
    service.update_metadata("scene", [{"reference_id": "img0", "metadata": {"weather": "x"}}])
    for result in (service.insights("scene", slice="train"), service.insights("scene")):
        assert {v["value"] for v in result["metadata"]["weather"]["values"]} >= {"x"}


def test_free_text_metadata_counts_top_values_only(service, tmp_path) -> None:
    from ocula import DatasetItem
    from tests.conftest import make_images

    (image,) = make_images(tmp_path / "img", 1)
    service.create_dataset("names")
    service.append("names", [DatasetItem(str(image), f"r{i}", {
        "name": f"file_{i:03d}.jpg", "site": "a" if i % 3 else "b", "n": i % 7})
        for i in range(150)])
    r = service.insights("names")
    name = r["metadata"]["name"]
    assert name["type"] == "categorical" and len(name["values"]) == 25
    assert sum(v["count"] for v in name["values"]) + name["other"] == 150
    assert {v["value"]: v["count"] for v in r["metadata"]["site"]["values"]} == {
        "a": 100, "b": 50}
    n = r["metadata"]["n"]
    assert n["type"] == "numeric" and sum(b["count"] for b in n["buckets"]) == 150
    for bucket in n["buckets"] + r["metadata"]["site"]["values"]:
        got = service.query_items("names", bucket["query"], with_total=True)["total"]
        assert got == bucket["count"], bucket["query"]
