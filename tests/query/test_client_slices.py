"""Client query methods, slices from queries (items and objects), slice algebra and
COCO export of slices, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.client.client import Client
from ocula.errors import ConflictError, QueryError, ValidationError
from ocula.io.coco import export_slice_contents
from tests.query.conftest import build_scene


@pytest.fixture
def ds(client: Client, tmp_path: Path):
    build_scene(client._backend, tmp_path)
    return client.get_dataset("scene")


def test_client_queries(ds) -> None:
    items = list(ds.query_items('metadata.weather in ["rain", "snow"] and count() > 2',
                                page_size=1))
    assert [i.reference_id for i in items] == ["img0", "img1"]
    assert isinstance(items[0], DatasetItem) and items[0].metadata["weather"] == "rain"
    assert [i.reference_id for i in ds.query_items("", slice="train")] == [
        "img0", "img1", "img2"]
    preds = list(ds.query_objects("type = prediction and status = fp order by confidence desc"))
    assert all(isinstance(p, BoxPrediction) for p in preds)
    assert [p.confidence for p in preds] == [0.95, 0.85]
    anns = list(ds.query_objects('label = "truck"'))
    assert isinstance(anns[0], BoxAnnotation) and anns[0].reference_id == "img5"
    raw = list(ds.query_objects("status = fn and area < 150", raw=True))
    assert [(o["annotation_id"], o["status"]) for o in raw] == [("p2", "fn"), ("p3", "fn"),
                                                                ("p6", "fn")]
    with pytest.raises(QueryError, match="line 1, col 8"):
        list(ds.query_items("width > "))
    assert ds.insights()["scope"]["items"] == 6


def test_slices_from_queries_and_algebra(ds) -> None:
    rainy = ds.create_slice("rainy", query='metadata.weather = "rain"')
    assert rainy.reference_ids == ["img0", "img3"]
    assert rainy.info()["query"] == 'metadata.weather = "rain"'
    busy = ds.create_slice("busy", query="count() >= 3 order by count() desc limit 1")
    assert busy.reference_ids == ["img0"]
    union = ds.combine_slices("u", "union", ["rainy", "train"])
    assert union.reference_ids == ["img0", "img1", "img2", "img3"]
    inter = ds.combine_slices("i", "intersection", ["rainy", "train"])
    assert inter.reference_ids == ["img0"]
    diff = ds.combine_slices("d", "difference", ["train", rainy.id])
    assert diff.reference_ids == ["img1", "img2"]
    # a snapshot: later changes to the data do not change the slice
    ds.update_item_metadata({"img4": {"weather": "rain"}})
    assert rainy.reference_ids == ["img0", "img3"]
    assert [i.reference_id for i in ds.query_items('in_slice("rainy")')] == ["img0", "img3"]
    with pytest.raises(ConflictError):
        ds.create_slice("rainy", query="count() > 0")
    with pytest.raises(QueryError):
        ds.create_slice("broken", query="count( > 0")
    assert "broken" not in [s.name for s in ds.slices]
    with pytest.raises(ValueError):
        ds.create_slice("x", ["img0"], query="count() > 0")


def test_object_slices(ds, client: Client) -> None:
    svc = client._backend
    fps = ds.create_slice("fps", query="type = prediction and status = fp", target="objects")
    info = svc.slice_summary(fps.id)
    assert info["kind"] == "object" and info["length"] == 2
    small = ds.create_slice("small-fn", query="status = fn and area < 150", target="objects")
    assert svc.slice_summary(small.id)["length"] == 3
    # querying within object slices, and in_slice() on objects
    got = svc.slice_objects(fps.id)["objects"]
    assert sorted(o["confidence"] for o in got) == [0.85, 0.95]
    ids = [o["annotation_id"] for o in svc.query_objects("scene", 'in_slice("small-fn")')[
        "objects"]]
    assert ids == ["p2", "p3", "p6"]
    assert [i.reference_id for i in ds.query_items('has(in_slice("small-fn"))')] == [
        "img0", "img3"]
    with pytest.raises(QueryError, match="holds objects"):
        list(ds.query_items('in_slice("small-fn")'))
    top = ds.create_slice("top", query="type = prediction order by confidence desc limit 3",
                          target="objects")
    assert svc.slice_summary(top.id)["length"] == 3
    both = ds.combine_slices("both", "union", ["fps", "top"])
    assert svc.slice_summary(both.id)["length"] == 4
    common = ds.combine_slices("common", "intersection", ["fps", "top"])
    assert svc.slice_summary(common.id)["length"] == 1
    with pytest.raises(ValidationError, match="item slices with object slices"):
        ds.combine_slices("mixed", "union", ["fps", "train"])


def test_objects_added_to_and_taken_out_of_an_object_slice(ds, client: Client) -> None:
    """What the objects view's selection does: objects by id, or a whole object query,
    into an object slice; those held already are not added twice; a capped query adds
    its first objects only; ``within`` keeps to a slice's items."""
    svc = client._backend

    def ids(query: str, **kw) -> set[str]:
        return {o["id"] for o in svc.query_objects("scene", query, page_size=100, **kw)[
            "objects"]}

    def held(sl) -> set[str]:
        return {o["id"] for o in svc.slice_objects(sl.id, page_size=100)["objects"]}

    fps = ds.create_slice("fps", query="type = prediction and status = fp", target="objects")
    fp, fn = ids("type = prediction and status = fp"), ids("status = fn and area < 150")
    two = sorted(fn)[:2]
    assert fps.append_query(f'id in ["{two[0]}", "{two[1]}"]') == {"slice_id": fps.id,
                                                                   "added": 2}
    assert held(fps) == fp | set(two)
    # The whole query again: two of its three are members already.
    assert fps.append_query("status = fn and area < 150")["added"] == len(fn) - 2
    assert held(fps) == fp | fn
    # Predictions by id too, with both kinds named (alone, an object query reads
    # annotations).
    pred = sorted(ids("type = prediction and status = tp"))[0]
    assert fps.append_query(f'type in [annotation, prediction] and id in ["{pred}"]')[
        "added"] == 1
    assert fps.remove_query(f'type = prediction and id = "{pred}"')["removed"] == 1
    assert fps.remove_query("status = fn")["removed"] == len(fn)
    assert fps.remove_query("status = fn")["removed"] == 0
    assert held(fps) == fp
    in_train = ids("status = fn", slice="train")
    assert in_train and in_train != ids("status = fn")
    assert fps.append_query("status = fn", within="train")["added"] == len(in_train)
    assert held(fps) == fp | in_train

    capped = ds.create_slice("capped", query="type = prediction and status = fp limit 1",
                             target="objects")
    member = held(capped)
    top = ids("type = prediction order by confidence desc limit 2")
    assert len(member) == 1 and len(top) == 2
    assert capped.append_query("type = prediction order by confidence desc limit 2")[
        "added"] == len(top - member)
    assert held(capped) == member | top
    assert capped.remove_query("type = prediction order by confidence desc limit 1")[
        "removed"] == 1
    assert held(capped) == (member | top) - ids(
        "type = prediction order by confidence desc limit 1")
    with pytest.raises(QueryError):
        fps.append_query("count( > 0")
    assert held(fps) == fp | in_train


def test_export_slices_as_coco(ds, client: Client) -> None:
    svc = client._backend
    rainy = ds.create_slice("rainy", query='metadata.weather = "rain"')
    coco = export_slice_contents(svc.slice_contents(rainy.id))
    assert len(coco["images"]) == 2 and len(coco["annotations"]) == 7
    assert {c["name"] for c in coco["categories"]} == {"pedestrian", "car"}
    fps = ds.create_slice("fps", query="type = prediction and status = fp", target="objects")
    contents = svc.slice_contents(fps.id)
    assert contents["kind"] == "object" and contents["annotations"] == []
    coco = export_slice_contents(contents)
    assert len(coco["images"]) == 2
    assert sorted(a["score"] for a in coco["annotations"]) == [0.85, 0.95]
