"""Item queries: every item field, function and operator, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.query.conftest import Scene

ALL = ["img0", "img1", "img2", "img3", "img4", "img5"]


@pytest.mark.parametrize(("query", "expected"), [
    ("", ALL),
    # metadata strings
    ('metadata.weather = "rain"', ["img0", "img3"]),
    ('metadata.weather != "rain"', ["img1", "img2", "img5"]),
    ('metadata.weather in ["rain", "snow"]', ["img0", "img1", "img3"]),
    ('metadata.weather not in ["rain", "snow"]', ["img2", "img5"]),
    ('metadata.weather > "fog"', ["img0", "img1", "img3"]),
    ('metadata.weather <= "fog"', ["img2", "img5"]),
    # metadata numbers: only numeric values take part ("fast" is skipped, not an error)
    ("metadata.speed > 20", ["img1", "img5"]),
    ("metadata.speed >= 30", ["img1", "img5"]),
    ("metadata.speed < 30", ["img0"]),
    ("metadata.speed <= 10.0", ["img0"]),
    ("metadata.speed = 55.5", ["img1"]),
    ("metadata.speed != 10", ["img1", "img2", "img5"]),
    ("metadata.speed in [10, 30]", ["img0", "img5"]),
    ('metadata.speed = "fast"', ["img2"]),
    ('metadata.speed in ["fast", 10]', ["img0", "img2"]),
    # a number is never equal to a string
    ('metadata.speed = "10"', []),
    # nested keys, booleans, null/missing
    ("metadata.camera.id = 3", ["img0"]),
    ('metadata."camera".id >= 3', ["img0"]),
    ("metadata.night = true", ["img0"]),
    ("metadata.night = false", ["img5"]),
    ("metadata.night != true", ["img5"]),
    ("metadata.speed = null", ["img3", "img4"]),
    ("metadata.speed != null", ["img0", "img1", "img2", "img5"]),
    ("metadata.weather in [null, \"fog\"]", ["img4", "img5"]),
    ("metadata.nothing = 1", []),
    # image fields
    ('reference_id = "img4"', ["img4"]),
    ('reference_id in ["img4", "img0"]', ["img0", "img4"]),
    ('reference_id > "img3"', ["img4", "img5"]),
    ("width = 200 and height = 100", ALL),
    ("width > 200", []),
])
def test_item_fields(scene: Scene, query: str, expected: list[str]) -> None:
    assert scene.items(query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    # counts of ground truth by default
    ('count(label = "pedestrian") > 3', ["img0"]),
    ('count(label = "pedestrian") = 2', ["img3"]),
    ('count(label = "pedestrian") >= 1', ["img0", "img1", "img3"]),
    ('count(label = "pedestrian") = 0', ["img2", "img4", "img5"]),
    ("count() = 0", ["img4"]),
    ("count() >= 3", ["img0", "img1"]),
    ("count(area < 150) >= 2", ["img0", "img3"]),
    ("count(shape = box) = 2", ["img3"]),
    ("count(type = prediction) >= 3", ["img0"]),
    ('count(type = prediction and run = "yolo") = 1', ["img2"]),
    ("count(type = prediction and confidence > 0.8) = 3", ["img0"]),
    ("count(type = prediction and confidence > 0.8) = 1", ["img1", "img5"]),
    ("count(type in [annotation, prediction]) = 3", ["img3", "img5"]),
    ("count(status = fn) = 2", ["img0", "img1"]),
    ('count(status = fn and run = "frcnn") = 1', ["img2", "img3"]),
    ("count(type = prediction and status = fp) >= 1", ["img0", "img1"]),
    ("count(item(metadata.weather = \"rain\")) > 0", ["img0", "img3"]),
    # has()
    ('has(label = "truck")', ["img5"]),
    ("has(status = fn and area > 1000)", ["img2"]),
    ("not has()", ["img4"]),
    ('has(type = prediction and run = "yolo")', ["img2"]),
    # run counts
    ('run("frcnn").fn > 0', ["img0", "img1", "img2", "img3"]),
    ('run("frcnn").fn = 0', ["img4", "img5"]),
    ('run("frcnn").tp >= 2', ["img0"]),
    ('run("frcnn").fp = 1', ["img0", "img1"]),
    ('run("frcnn").fp in [0]', ["img2", "img3", "img4", "img5"]),
    # slices
    ('in_slice("train")', ["img0", "img1", "img2"]),
    ('not in_slice("train")', ["img3", "img4", "img5"]),
    ('run("frcnn").fn > 0 and not in_slice("train")', ["img3"]),
])
def test_item_functions(scene: Scene, query: str, expected: list[str]) -> None:
    assert scene.items(query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ('metadata.weather = "rain" or metadata.weather = "fog"', ["img0", "img3", "img5"]),
    ('metadata.weather = "rain" and count() > 2', ["img0"]),
    ('not metadata.weather = "rain"', ["img1", "img2", "img4", "img5"]),
    # "not" of a comparison on a missing value holds (two-valued logic)
    ("not metadata.speed > 20", ["img0", "img2", "img3", "img4"]),
    ('not (metadata.weather = "rain" or in_slice("train"))', ["img4", "img5"]),
    ('(metadata.weather = "rain" or metadata.weather = "snow") and not count() > 3',
     ["img1", "img3"]),
    ("NOT metadata.night = TRUE AND width = 200", ["img1", "img2", "img3", "img4", "img5"]),
])
def test_boolean_logic(scene: Scene, query: str, expected: list[str]) -> None:
    assert scene.items(query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("order by metadata.speed", ["img0", "img5", "img1", "img2", "img3", "img4"]),
    # numbers, then strings, then missing values (last in either direction)
    ("order by metadata.speed desc", ["img1", "img5", "img0", "img2", "img4", "img3"]),
    ("order by metadata.weather", ["img2", "img5", "img0", "img3", "img1", "img4"]),
    # ties are broken by the item key, in the same direction
    ("order by count() desc", ["img0", "img1", "img5", "img3", "img2", "img4"]),
    ('order by run("frcnn").fn desc limit 2', ["img1", "img0"]),
    ("order by reference_id desc", ["img5", "img4", "img3", "img2", "img1", "img0"]),
    ("metadata.speed > 0 order by metadata.speed asc", ["img0", "img5", "img1"]),
    ("limit 3", ["img0", "img1", "img2"]),
    ("limit 0", []),
    ('count() > 0 order by count(label = "car") desc limit 3', ["img1", "img2", "img0"]),
])
def test_order_and_limit(scene: Scene, query: str, expected: list[str]) -> None:
    for page_size in (1, 2, 100):
        assert scene.items(query, page_size=page_size) == expected


def test_within_slice(scene: Scene) -> None:
    assert scene.items('metadata.weather = "rain"', slice="train") == ["img0"]
    assert scene.items("", slice="train") == ["img0", "img1", "img2"]


def test_page_shape_total_and_description(scene: Scene) -> None:
    page = scene.service.query_items(
        "scene", 'metadata.weather in ["rain", "snow"] and count(label = "pedestrian") > 3',
        page_size=10, with_total=True)
    assert page["total"] == 1
    assert page["next_cursor"] is None
    item = page["items"][0]
    assert item["reference_id"] == "img0" and item["metadata"]["weather"] == "rain"
    assert page["description"] == ('Items where metadata.weather is one of "rain", "snow" and '
                                   'more than 3 objects where label is "pedestrian".')
    assert scene.service.query_items("scene", "limit 4", with_total=True)["total"] == 4


def test_ids_and_describe(scene: Scene) -> None:
    svc = scene.service
    item = svc.query_items("scene", 'reference_id = "img3"')["items"][0]
    assert scene.items(f'id = "{item["id"]}"') == ["img3"]
    obj = svc.query_objects("scene", 'annotation_id = "c2"')["objects"][0]
    assert scene.ids(f'id = "{obj["id"]}"') == ["c2"]
    pred = svc.query_objects("scene", "type = prediction and confidence = 0.99")["objects"][0]
    assert scene.ids(f'type = prediction and id = "{pred["id"]}"') == [
        "frcnn:truck@img5:0.99"]
    assert svc.describe_query("scene", 'not in_slice("train") order by count() desc limit 2') == {
        "valid": True, "query": 'not in_slice("train") order by count() desc limit 2',
        "description": 'Items where not in slice "train", ordered by count() descending, '
                       "at most 2."}
    assert svc.describe_query("scene", 'has(label = "car") and not has()')["description"] == (
        'Items where it has an object where label is "car" and it has no annotations.')
    described = svc.describe_query("scene", "type in [annotation, prediction] and iou < 0.5",
                                   target="objects")
    assert described["description"] == ("Annotations and predictions where type is one of "
                                        "annotation, prediction and iou is less than 0.5.")
