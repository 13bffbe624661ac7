"""The query language, slices from queries, slice algebra, export and insights give the
same answers and the same typed errors embedded and through a live server (REST
routes of ``ocula.server.api.query`` called by ``HttpBackend``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from ocula.client.dataset import Dataset
from ocula.core.query.parser import parse
from ocula.errors import ConflictError, NotFoundError, QueryError, ValidationError
from ocula.io.coco import export_slice_contents
from tests.conftest import make_images
from tests.query.conftest import all_buckets as _buckets

WEATHER = ["rain", "sun", "rain", "snow", "sun", "rain", "fog"]


def _scene(c: Client, tmp_path: Path) -> Dataset:
    """7 items; item i has i % 4 cars and one pedestrian on even items. The run "det"
    finds every car exactly and adds one far-away false positive per odd item."""
    paths = make_images(tmp_path / "q-imgs", len(WEATHER), size=(200, 100))
    ds = c.create_dataset("q")
    ds.append([DatasetItem(str(p), f"img {i}", metadata={"weather": w, "i": i})
               for i, (p, w) in enumerate(zip(paths, WEATHER, strict=True))])
    anns: list[Any] = []
    preds: list[Any] = []
    for i in range(len(WEATHER)):
        for k in range(i % 4):
            anns.append(BoxAnnotation("car", 10 + 40 * k, 10, 30, 20 + k,
                                      reference_id=f"img {i}", annotation_id=f"c{i}-{k}"))
            preds.append(BoxPrediction("car", 10 + 40 * k, 10, 30, 20 + k,
                                       reference_id=f"img {i}", confidence=0.5 + k / 10))
        if i % 2 == 0:
            anns.append(BoxAnnotation("pedestrian", 170, 50, 8, 16, reference_id=f"img {i}",
                                      annotation_id=f"p{i}"))
        else:
            preds.append(BoxPrediction("car", 150, 70, 20, 20, reference_id=f"img {i}",
                                       confidence=0.95))
    ds.annotate(anns)
    run = c.add_model("m", "m").create_run("det", ds, preds)
    run.commit()
    return ds


@pytest.fixture
def scene(any_client: Client, tmp_path: Path) -> Dataset:
    return _scene(any_client, tmp_path)


def _all_pages(fetch: Any, key: str, page_size: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = fetch(page_size=page_size, cursor=cursor)
        assert len(page[key]) <= page_size
        rows += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def test_query_items_pages(any_client: Client, scene: Dataset) -> None:
    be = any_client._backend
    q = 'metadata.weather in ["rain", "sun"] order by metadata.i desc'
    whole = be.query_items(scene.id, q, page_size=100, with_total=True)
    refs = [r["reference_id"] for r in whole["items"]]
    assert refs == ["img 5", "img 4", "img 2", "img 1", "img 0"]
    assert whole["total"] == 5 and whole["next_cursor"] is None and whole["query"] == q
    assert isinstance(whole["description"], str)
    for size in (1, 2, 3):
        rows = _all_pages(lambda **kw: be.query_items(scene.id, q, **kw), "items", size)
        assert [r["reference_id"] for r in rows] == refs  # no duplicates, no gaps
    # The dataset by name works as well as by id; the lazy client iterator agrees.
    assert [r["reference_id"] for r in be.query_items("q", q)["items"]] == refs
    assert [i.reference_id for i in scene.query_items(q, page_size=2)] == refs
    assert [i.metadata["weather"] for i in scene.query_items("count(label = \"car\") = 3")
            ] == ["snow"]
    # A cursor belongs to its query.
    first = be.query_items(scene.id, q, page_size=1)
    with pytest.raises(ValidationError, match="different query"):
        be.query_items(scene.id, "width > 0", page_size=1, cursor=first["next_cursor"])
    with pytest.raises(ValidationError, match="malformed"):
        be.query_items(scene.id, q, cursor="not-a-cursor")
    for size in (0, 10_001):
        with pytest.raises(ValidationError):
            be.query_items(scene.id, q, page_size=size)
    with pytest.raises(NotFoundError):
        be.query_items("no such dataset", q)


def test_query_objects_pages(any_client: Client, scene: Dataset) -> None:
    be = any_client._backend
    q = "type in [annotation, prediction] and label = \"car\" order by area desc"
    whole = be.query_objects(scene.id, q, page_size=1000, with_total=True)
    n_cars = sum(i % 4 for i in range(len(WEATHER)))
    assert whole["total"] == len(whole["objects"]) == 2 * n_cars + 3
    keys = [(o["kind"], o["annotation_id"] if o["kind"] == "annotation" else o["id"])
            for o in whole["objects"]]
    assert len(set(keys)) == len(keys)
    for size in (1, 4, 7):
        rows = _all_pages(lambda **kw: be.query_objects(scene.id, q, **kw), "objects", size)
        assert rows == whole["objects"]
    fps = list(scene.query_objects("type = prediction and status = fp", raw=True))
    assert len(fps) == 3 and {o["run"] for o in fps} == {"det"}
    assert {(o["reference_id"], o["status"], o["iou"]) for o in fps} == {
        ("img 1", "fp", 0), ("img 3", "fp", 0), ("img 5", "fp", 0)}
    boxes = list(scene.query_objects('label = "pedestrian"'))
    assert sorted(b.annotation_id for b in boxes) == ["p0", "p2", "p4", "p6"]


def test_query_errors_are_typed_with_position(any_client: Client, scene: Dataset) -> None:
    be = any_client._backend
    for bad in ("width > ", 'label = "x"; drop table items', "metadata.weather = rain",
                "lable = \"car\""):
        target = "objects" if "label" in bad or "lable" in bad else "items"
        try:
            parse(bad)
            expected = None
        except QueryError as exc:
            expected = exc
        with pytest.raises(QueryError) as got:
            (be.query_objects if target == "objects" else be.query_items)(scene.id, bad)
        assert got.value.line == 1 and isinstance(got.value.column, int)
        assert str(got.value).startswith(f"line 1, col {got.value.column}: ")
        if expected is not None:
            assert (got.value.line, got.value.column) == (expected.line, expected.column)
            assert str(got.value) == str(expected)
        with pytest.raises(QueryError) as described:
            be.describe_query(scene.id, bad, target)
        assert (described.value.line, described.value.column) == (
            got.value.line, got.value.column)
    with pytest.raises(QueryError, match="did you mean 'label'"):
        list(scene.query_objects('lable = "car"'))
    with pytest.raises(QueryError, match="at most|long"):
        be.query_items(scene.id, "width > 0 and " * 1000 + "width > 0")
    ok = be.describe_query(scene.id, 'label = "car"', "objects")
    assert ok["valid"] is True and ok["description"]


def test_slices_from_queries_and_algebra(any_client: Client, scene: Dataset) -> None:
    be = any_client._backend
    rain = scene.create_slice("rain", query='metadata.weather = "rain"')
    cars = scene.create_slice("cars", query='has(label = "car")', description="any car")
    assert sorted(rain.reference_ids) == ["img 0", "img 2", "img 5"]
    assert sorted(cars.reference_ids) == ["img 1", "img 2", "img 3", "img 5", "img 6"]
    summary = be.slice_summary(cars.id)
    assert summary["kind"] == "item" and summary["length"] == 5
    assert summary["query"] == 'has(label = "car")' and summary["description"] == "any car"

    union = scene.combine_slices("u", "union", ["rain", cars.id])
    inter = scene.combine_slices("i", "intersection", ["rain", "cars"])
    diff = scene.combine_slices("d", "difference", ["cars", "rain"])
    assert sorted(union.reference_ids) == ["img 0", "img 1", "img 2", "img 3", "img 5",
                                           "img 6"]
    assert sorted(inter.reference_ids) == ["img 2", "img 5"]
    assert sorted(diff.reference_ids) == ["img 1", "img 3", "img 6"]
    assert [i.reference_id for i in scene.query_items("width > 0", slice="i")] == [
        "img 2", "img 5"]
    with pytest.raises(ConflictError):
        scene.combine_slices("u", "union", ["rain", "cars"])
    with pytest.raises(ConflictError):
        scene.create_slice("rain", query="width > 0")
    with pytest.raises(ValidationError):
        scene.combine_slices("x", "union", ["rain"])
    with pytest.raises(ValidationError):
        scene.combine_slices("x", "xor", ["rain", "cars"])  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        scene.combine_slices("x", "union", ["rain", "nope"])
    with pytest.raises(QueryError):
        scene.create_slice("bad", query="width >")

    # Object slices: a patches view of false positives and missed pedestrians.
    fp = scene.create_slice("fp", query="type = prediction and status = fp",
                            target="objects")
    peds = scene.create_slice("peds", query='label = "pedestrian"', target="objects")
    assert be.slice_summary(fp.id)["kind"] == "object"
    assert be.slice_summary(fp.id)["length"] == 3
    assert be.slice_summary(peds.id)["length"] == 4
    both = scene.combine_slices("both", "union", ["fp", "peds"])
    pages = _all_pages(lambda **kw: be.slice_objects(both.id, **kw), "objects", 2)
    assert len(pages) == 7 and {o["kind"] for o in pages} == {"annotation", "prediction"}
    assert pages == be.slice_objects(both.id, page_size=100)["objects"]
    objs = list(scene.query_objects("type in [annotation, prediction]", slice="fp",
                                    raw=True))
    assert len(objs) == 3 and all(o["status"] == "fp" for o in objs)
    with pytest.raises(ValidationError):
        be.query_items(scene.id, "width > 0", slice="fp")
    with pytest.raises(ValidationError):
        scene.combine_slices("mixed", "union", ["fp", "rain"])
    assert be.delete_slice_objects(fp.id)["removed"] == 3
    assert be.slice_summary(fp.id)["length"] == 0


def test_export_slice(any_client: Client, scene: Dataset, tmp_path: Path) -> None:
    be = any_client._backend
    rain = scene.create_slice("rain", query='metadata.weather = "rain"')
    coco = export_slice_contents(be.slice_contents(rain.id))
    assert len(coco["images"]) == 3
    # img 0: a pedestrian; img 2: 2 cars + pedestrian; img 5: 1 car
    assert len(coco["annotations"]) == 5
    assert {c["name"] for c in coco["categories"]} == {"car", "pedestrian"}
    fp = scene.create_slice("fp", query="type = prediction and status = fp",
                            target="objects")
    coco = export_slice_contents(be.slice_contents(fp.id))
    assert len(coco["images"]) == 3 and len(coco["annotations"]) == 3
    assert all(a["score"] == 0.95 for a in coco["annotations"])
    with pytest.raises(NotFoundError):
        be.slice_contents("slc_missing")
    assert len(list(fp.objects(page_size=2))) == 3
    assert "prediction" in scene.describe_query("type = prediction and status = fp",
                                                "objects").lower()
    # The client's file export agrees with the service for both kinds of slice.
    out = tmp_path / "fp.json"
    assert scene.export_coco(out, slice="fp") == {"images": 3, "annotations": 3,
                                                  "categories": 1}
    assert json.loads(out.read_text()) == coco
    assert scene.export_coco(out, slice="rain")["annotations"] == 5
    with pytest.raises(ValidationError):
        scene.export_coco(out, slice="fp", version=1)
    assert scene.export_cvat(tmp_path / "rain.xml", slice="rain") == {
        "images": 3, "annotations": 5, "categories": 2}
    with pytest.raises(ValidationError, match="COCO only"):
        scene.export_cvat(tmp_path / "fp.xml", slice="fp")


@pytest.mark.parametrize(("slice_", "query"), [
    (None, None), ("rain", None), (None, 'metadata.weather in ["rain", "snow"]'),
    ("rain", "count() > 1")])
def test_insights_buckets_select_their_rows(any_client: Client, scene: Dataset,
                                            slice_: str | None, query: str | None) -> None:
    be = any_client._backend
    scene.create_slice("rain", query='metadata.weather = "rain"')
    result = scene.insights(slice=slice_, query=query)
    assert result == be.insights(scene.id, slice=slice_, query=query, fresh=True)
    buckets = _buckets(result)
    assert buckets and result["labels"]["annotations"]
    for b in buckets:
        fetch = be.query_items if b["target"] == "items" else be.query_objects
        assert fetch(scene.id, b["query"], page_size=1, with_total=True)["total"] == \
            b["count"], b


def test_insights_errors(scene: Dataset) -> None:
    scene.create_slice("fp", query="type = prediction and status = fp", target="objects")
    with pytest.raises(QueryError):
        scene.insights(slice="fp")
    with pytest.raises(QueryError):
        scene.insights(query="width >")
    with pytest.raises(NotFoundError):
        scene.insights(slice="nope")


def test_a_bad_query_raises_at_the_call_not_at_the_first_next(any_client: Client,
                                                              scene: Dataset) -> None:
    with pytest.raises(QueryError, match="line 1"):
        scene.query_items("metadata.weather = = 1")
    with pytest.raises(QueryError):
        scene.query_objects("confidence >")
    with pytest.raises(NotFoundError):
        scene.query_items("label = 'car'", slice="no such slice")
    # Valid queries still page lazily, page after page.
    rain = 'metadata.weather = "rain"'
    assert [i.reference_id for i in scene.query_items(rain, page_size=1)] == [
        i.reference_id for i in scene.query_items(rain)]
    assert len(list(scene.query_items(rain, page_size=1))) > 1
    assert len(list(scene.query_objects("type = annotation", page_size=2, raw=True))) > 2


def test_slices_grow_and_shrink_by_query(any_client: Client, scene: Dataset) -> None:
    """What the web app's "select all results" does: a query's matches, within a slice
    or not, go into a slice or out of one in the database, never as a list of ids."""
    be = any_client._backend
    rain = scene.create_slice("rain", query='metadata.weather = "rain"')
    # A snapshot of a query within a slice: rainy items that have a car.
    wet_cars = scene.create_slice("wet cars", query='has(label = "car")', slice="rain")
    assert sorted(wet_cars.reference_ids) == ["img 2", "img 5"]
    assert wet_cars.info()["query"] == 'has(label = "car")'
    picked = scene.create_slice("picked", ["img 6"])
    # Adding what is already there adds nothing; the count is of new members only.
    assert picked.append_query('has(label = "car")', within=rain.id) == {
        "slice_id": picked.id, "added": 2}
    assert picked.append_query('has(label = "car")', within="rain")["added"] == 0
    assert sorted(picked.reference_ids) == ["img 2", "img 5", "img 6"]
    assert picked.append_query("metadata.i >= 0 order by metadata.i desc limit 2") == {
        "slice_id": picked.id, "added": 0}  # img 6 and img 5: both there already
    assert picked.append_query("metadata.i < 2")["added"] == 2
    assert sorted(picked.reference_ids) == ["img 0", "img 1", "img 2", "img 5", "img 6"]
    # Out again: only members the query matches, within the scope given.
    assert picked.remove_query('metadata.weather = "rain"', within="rain") == {
        "slice_id": picked.id, "removed": 3}
    assert sorted(picked.reference_ids) == ["img 1", "img 6"]
    assert picked.remove_query("") == {"slice_id": picked.id, "removed": 2}
    assert picked.reference_ids == [] and be.slice_info(picked.id)["length"] == 0
    assert be.slice_info(rain.id)["length"] == 3  # the scope is only read

    fp = scene.create_slice("fp", query="type = prediction and status = fp",
                            target="objects")
    # An object slice grows by an object query (the objects view's selection).
    assert be.slice_append_query(fp.id, "type = prediction and status = fp")["added"] == 0
    assert be.slice_append_query(fp.id, 'type = prediction and label = "car"')["added"] > 0
    with pytest.raises(ValidationError, match="holds objects"):
        be.slice_remove_query(picked.id, "", within="fp")
    with pytest.raises(QueryError):
        be.slice_append_query(picked.id, "width >")
    with pytest.raises(NotFoundError):
        be.slice_append_query("slc_missing", "")
    with pytest.raises(NotFoundError):
        be.slice_append_query(picked.id, "", within="no such slice")
    with pytest.raises(ConflictError):
        scene.create_slice("rain", query="", slice="picked")
    assert be.slice_info(picked.id)["length"] == 0  # a failed call wrote nothing
