"""The core flow on both databases: datasets, items, ground truth, versions, slices, runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ocula
from ocula import (
    BoxAnnotation,
    BoxPrediction,
    CategoryAnnotation,
    DatasetItem,
    KeypointsAnnotation,
    MaskAnnotation,
    PolygonAnnotation,
    Segment,
    SegmentationAnnotation,
)
from ocula.errors import BatchError
from tests.conftest import make_images


def _items(paths: list[Path]) -> list[DatasetItem]:
    return [DatasetItem(image_location=str(p), reference_id=f"scene/{i} a",
                        metadata={"i": i, "weather": "rain" if i % 2 else "sun"})
            for i, p in enumerate(paths)]


def test_tutorial_flow(client: ocula.Client, images: list[Path]) -> None:
    ds = client.create_dataset("street")
    assert client.get_dataset(ds.id) == ds
    assert client.get_dataset("street") == ds
    assert [d.name for d in client.datasets] == ["street"]

    result = ds.append(_items(images))
    assert result == {"new_items": 6, "updated_items": 0, "ignored_items": 0, "errors": []}
    items = ds.items
    assert [it.reference_id for it in items] == [f"scene/{i} a" for i in range(6)]
    assert (items[0].width, items[0].height) == (64, 48)
    assert items[3].metadata == {"i": 3, "weather": "rain"}

    anns = [
        BoxAnnotation("person", 1, 2, 10, 20, reference_id="scene/0 a", annotation_id="b0"),
        PolygonAnnotation("car", [(1, 1), (30, 1), (30, 20)], reference_id="scene/1 a"),
        KeypointsAnnotation("person", [(5, 5, True), (9, 9, False)], names=["nose", "eye"],
                            skeleton=[[0, 1]], reference_id="scene/2 a"),
        CategoryAnnotation("daytime", reference_id="scene/3 a"),
        MaskAnnotation("blob", np.pad(np.ones((4, 4), bool), ((2, 42), (3, 57))),
                       reference_id="scene/4 a"),
    ]
    out = ds.annotate(anns)
    assert out["annotations_processed"] == 5 and out["version"] == 1
    info = ds.info()
    assert info["length"] == 6 and info["annotation_count"] == 5
    assert info["labels"] == {"blob": 1, "car": 1, "daytime": 1, "person": 2}

    got = ds.refloc("scene/0 a")
    assert got["item"].reference_id == "scene/0 a"
    box = got["annotations"]["box"][0]
    assert (box.label, box.x, box.y, box.width, box.height) == ("person", 1, 2, 10, 20)
    mask = ds.refloc("scene/4 a")["annotations"]["mask"][0]
    assert mask.bbox() == (3.0, 2.0, 4.0, 4.0) and mask.area == 16
    assert ds.iloc(2)["item"].reference_id == "scene/2 a"
    assert ds.loc(items[1].item_id)["annotations"]["polygon"][0].label == "car"

    train = ds.create_slice("train", [f"scene/{i} a" for i in range(4)])
    test = ds.create_slice("test", ["scene/4 a", "scene/5 a"])
    assert train.info()["length"] == 4
    assert [it.reference_id for it in test.items] == ["scene/4 a", "scene/5 a"]
    train.append(["scene/5 a"])
    train.remove(["scene/0 a"])
    assert sorted(train.reference_ids) == ["scene/1 a", "scene/2 a", "scene/3 a", "scene/5 a"]
    assert {s.name for s in ds.slices} == {"train", "test"}

    model = client.add_model("frcnn", reference_id="frcnn-v1")
    assert client.add_model("frcnn", reference_id="frcnn-v1").id == model.id
    preds = [BoxPrediction("person", 1, 2, 10, 19, reference_id="scene/0 a", confidence=0.9),
             BoxPrediction("car", 3, 3, 5, 5, reference_id="scene/1 a", confidence=0.4,
                           class_pdf={"car": 0.4, "person": 0.6})]
    run = model.create_run("frcnn-run", ds, preds)
    assert run.info()["prediction_count"] == 2
    back = run.predictions()
    assert back[1].class_pdf == {"car": 0.4, "person": 0.6}
    assert [r.id for r in ds.model_runs] == [run.id]
    assert ds.get_run("frcnn-run").id == run.id

    ds.delete_item("scene/0 a")
    assert ds.info()["length"] == 5
    assert run.info()["prediction_count"] == 1
    client.delete_dataset(ds.id)
    assert client.datasets == []


def test_annotation_versions_keep_history(client: ocula.Client, images: list[Path]) -> None:
    ds = client.create_dataset("v")
    ds.append(_items(images[:2]))
    ds.annotate([BoxAnnotation("cat", 1, 1, 10, 10, reference_id="scene/0 a",
                               annotation_id="a")])
    ds.tag_version("original")
    ds.annotate([BoxAnnotation("dog", 1, 1, 12, 10, reference_id="scene/0 a",
                               annotation_id="a")], update=True, message="fix label")
    ds.delete_annotations(annotation_ids=["a"])
    assert ds.annotations() == []
    old = ds.annotations(version="original")
    assert [(a.label, a.width) for a in old] == [("cat", 10)]
    assert [(a.label, a.width) for a in ds.annotations(version=2)] == [("dog", 12)]
    versions = ds.versions()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[0]["name"] == "original" and versions[1]["message"] == "fix label"


def test_retries_are_idempotent(client: ocula.Client, images: list[Path]) -> None:
    ds = client.create_dataset("r")
    ds.append(_items(images))
    again = ds.append(_items(images))
    assert again["new_items"] == 0 and again["ignored_items"] == 6
    anns = [BoxAnnotation("p", 1, 1, 5, 5, reference_id="scene/1 a"),
            BoxAnnotation("p", 2, 2, 5, 5, reference_id="scene/1 a")]
    assert ds.annotate(anns)["annotations_processed"] == 2
    assert ds.annotate(anns)["annotations_ignored"] == 2
    assert ds.info()["annotation_count"] == 2
    assert ds.info()["annotation_version"] == 1


def test_update_replaces_items(client: ocula.Client, images: list[Path]) -> None:
    ds = client.create_dataset("u")
    ds.append([DatasetItem(str(images[0]), "a", {"x": 1})])
    out = ds.append([DatasetItem(str(images[1]), "a", {"x": 2})], update=True)
    assert out["updated_items"] == 1
    item = ds.refloc("a")["item"]
    assert item.metadata == {"x": 2} and item.image_location == str(images[1])
    ds.update_item_metadata({"a": {"y": 3}})
    assert ds.refloc("a")["item"].metadata == {"x": 2, "y": 3}


def test_copy_media_is_content_addressed(client: ocula.Client, images: list[Path],
                                         tmp_path: Path) -> None:
    ds = client.create_dataset("m")
    ds.append([DatasetItem(str(images[0]), "a"), DatasetItem(str(images[0]), "b")],
              copy_media=True)
    stored = list((tmp_path / "home" / "media").rglob("*.jpeg"))
    assert len(stored) == 1  # same bytes, one file
    images[0].unlink()  # the catalog no longer depends on the original
    item_id = ds.refloc("a")["item"].item_id
    thumb = client._backend.thumbnail(item_id, 32)
    with Image.open(thumb) as img:
        assert max(img.size) <= 32


def test_segmentation_index_mask_expands_to_instances(client: ocula.Client,
                                                      images: list[Path],
                                                      tmp_path: Path) -> None:
    ds = client.create_dataset("seg")
    ds.append(_items(images[:1]))
    index = np.zeros((48, 64), np.uint8)
    index[5:10, 5:15] = 1
    index[20:30, 40:44] = 2
    mask_path = tmp_path / "mask.png"
    Image.fromarray(index).save(mask_path)
    ds.annotate([SegmentationAnnotation(str(mask_path), [Segment("road", 1), Segment("car", 2)],
                                        reference_id="scene/0 a", annotation_id="s")])
    masks = ds.refloc("scene/0 a")["annotations"]["mask"]
    assert {(m.label, m.area, m.bbox()) for m in masks} == {
        ("road", 50.0, (5.0, 5.0, 10.0, 5.0)), ("car", 40.0, (40.0, 20.0, 4.0, 10.0))}


def test_large_batch_on_both_databases(client: ocula.Client, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "many", 300, size=(32, 32), fmt="PNG")
    ds = client.create_dataset("big")
    ds.append([DatasetItem(str(p), p.stem) for p in paths], batch_size=128)
    boxes = [BoxAnnotation("x", i % 20, 1, 5, 5, reference_id=p.stem, annotation_id=str(i))
             for p in paths for i in range(10)]
    assert ds.annotate(boxes, batch_size=1000)["annotations_processed"] == 3000
    assert ds.info()["annotation_count"] == 3000
    assert len(ds.items) == 300


def test_annotate_batches_are_written_in_order(client: ocula.Client, tmp_path: Path) -> None:
    """The client validates batch k+1 while batch k is written; the writes keep their
    order (one version each, the last replacement wins) and a bad batch writes nothing
    while the ones before it stay."""
    paths = make_images(tmp_path / "few", 4, size=(32, 32), fmt="PNG")
    ds = client.create_dataset("ordered")
    ds.append([DatasetItem(str(p), p.stem) for p in paths])
    boxes = [BoxAnnotation("x", i, 1, 5, 5, reference_id=paths[i % 4].stem, annotation_id="a")
             for i in range(4)]
    result = ds.annotate(boxes, batch_size=2)
    assert (result["annotations_processed"], result["version"]) == (4, 2)
    again = [BoxAnnotation("x", 10 + i, 1, 5, 5, reference_id=paths[0].stem,
                           annotation_id="a") for i in range(3)]
    result = ds.annotate(again, update=True, batch_size=1)
    assert (result["annotations_replaced"], result["version"]) == (3, 5)
    assert [a.x for a in ds.refloc(paths[0].stem)["annotations"]["box"]] == [12]
    bad = [BoxAnnotation("x", 1, 1, 5, 5, reference_id=paths[1].stem, annotation_id="b"),
           BoxAnnotation("x", 1, 1, 5, 5, reference_id="nowhere", annotation_id="c"),
           BoxAnnotation("x", 1, 1, 5, 5, reference_id=paths[2].stem, annotation_id="d")]
    with pytest.raises(BatchError):
        ds.annotate(bad, batch_size=1)
    assert [v["version"] for v in ds.versions()] == [1, 2, 3, 4, 5, 6]
    assert ds.info()["annotation_count"] == 5
