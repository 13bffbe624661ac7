"""YOLO import/export and the data.yaml names parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    MaskAnnotation,
    PolygonAnnotation,
    PolygonPrediction,
)
from ocula.errors import GeometryError, NotFoundError, ValidationError
from ocula.io import export_yolo, import_coco, import_yolo, save_coco
from ocula.io.yolo import parse_names_yaml
from tests.io.helpers import comparable, write_image

W, H = 64, 48


def make_yolo(root: Path, *, names: str = "yaml") -> Path:
    write_image(root / "images" / "train" / "a.jpg", (W, H), seed=1)
    write_image(root / "images" / "train" / "b.png", (W, H), seed=2)
    write_image(root / "images" / "val" / "c.jpg", (W, H), seed=3)
    labels = root / "labels"
    (labels / "train").mkdir(parents=True)
    (labels / "val").mkdir(parents=True)
    (labels / "train" / "a.txt").write_text(
        "0 0.5 0.5 0.25 0.5\n"
        "\n"
        "2 0.1 0.2 0.1 0.2\n"
        "1 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n")
    (labels / "train" / "b.txt").write_text("1 0.75 0.25 0.5 0.5 0.87\n")
    # c.jpg has no label file: an unlabelled item
    if names == "yaml":
        (root / "data.yaml").write_text(
            "path: .  # root\ntrain: images/train\nval: images/val\nnc: 3\n"
            "names:\n  - cat\n  - 'dog house'\n  - \"bird\"  # comment\n")
    elif names == "txt":
        (root / "classes.txt").write_text("cat\ndog house\nbird\n")
    return root


def test_import(tmp_path):
    data = import_yolo(make_yolo(tmp_path / "ds"))
    assert [i.reference_id for i in data.items] == ["train/a.jpg", "train/b.png", "val/c.jpg"]
    assert data.items[0].metadata == {"split": "train"}
    assert (data.items[0].width, data.items[0].height) == (W, H)
    assert data.categories == ["cat", "dog house", "bird"]
    box, bird, poly = data.annotations
    assert isinstance(box, BoxAnnotation) and box.label == "cat"
    assert (box.x, box.y, box.width, box.height) == (24.0, 12.0, 16.0, 24.0)
    assert bird.label == "bird" and bird.annotation_id == "train/a/1"
    assert isinstance(poly, PolygonAnnotation) and poly.label == "dog house"
    coords = [c for v in poly.vertices for c in (v.x, v.y)]
    assert coords == pytest.approx([6.4, 4.8, 32, 4.8, 32, 24, 6.4, 24])
    (pred,) = data.predictions
    assert isinstance(pred, BoxPrediction) and pred.confidence == 0.87
    assert data.warnings == []


def test_names_sources(tmp_path):
    assert import_yolo(make_yolo(tmp_path / "t", names="txt")).categories == [
        "cat", "dog house", "bird"]
    bare = import_yolo(make_yolo(tmp_path / "n", names="none"))
    assert bare.categories == ["0", "1", "2"] and bare.warnings
    given = import_yolo(make_yolo(tmp_path / "g", names="none"), {0: "x", 1: "y", 2: "z"})
    assert given.annotations[0].label == "x"


@pytest.mark.parametrize("text, expected", [
    ("names: [a, 'b, c', \"d\"]\n", ["a", "b, c", "d"]),
    ("nc: 2\nnames: ['a',\n  'b']\n", ["a", "b"]),
    ("names: {0: a, 1: 'b c'}\n", ["a", "b c"]),
    ("names:\n  0: person\n  1: bicycle # two wheels\n\ndownload: x\n", ["person", "bicycle"]),
    ("names:\n- a\n- b\nval: v\n", ["a", "b"]),
    ("nc: 3\n", None),
])
def test_parse_names_yaml(text, expected):
    assert parse_names_yaml(text) == expected


@pytest.mark.parametrize("text", ["names: [a, b\n", "names: {0: a, 2: b}\n", "names: a b\n",
                                  "names:\n  x: a\n"])
def test_parse_names_yaml_errors(text):
    with pytest.raises(ValidationError):
        parse_names_yaml(text)


def test_round_trip(tmp_path):
    data = import_yolo(make_yolo(tmp_path / "ds"))
    out = export_yolo(data.items, [*data.annotations, *data.predictions], tmp_path / "out",
                      class_names=data.categories)
    assert (out / "images" / "val" / "c.jpg").is_file()
    assert (out / "labels" / "val" / "c.txt").read_text() == ""
    assert (out / "labels" / "train" / "a.txt").read_text().splitlines()[0] == (
        "0 0.5 0.5 0.25 0.5")
    again = import_yolo(out)
    assert again.categories == data.categories
    assert comparable(again.items, drop_location=True) == comparable(data.items,
                                                                     drop_location=True)
    assert comparable(again.annotations) == comparable(data.annotations)
    assert comparable(again.predictions) == comparable(data.predictions)


def test_round_trip_through_coco(tmp_path):
    data = import_yolo(make_yolo(tmp_path / "ds"))
    path = save_coco(data.items, data.annotations, tmp_path / "coco.json",
                     categories=data.categories)
    again = import_coco(path, tmp_path / "ds" / "images")
    assert again.categories == data.categories
    assert [i.reference_id for i in again.items] == [i.reference_id for i in data.items]
    # every COCO record has a bbox, so the polygon comes back with its box
    assert [a.type for a in again.annotations] == ["box", "box", "box", "polygon"]
    assert comparable(again.annotations[3:])[0]["geometry"] == comparable(
        data.annotations[2:])[0]["geometry"]
    for a, b in zip(again.annotations, data.annotations, strict=False):
        assert (a.label, a.reference_id) == (b.label, b.reference_id)
        assert a.bbox() == pytest.approx(b.bbox())


def test_export_geometry_choice(tmp_path):
    write_image(tmp_path / "img.jpg", (100, 50))
    from ocula.core.types import DatasetItem

    items = [DatasetItem(image_location=str(tmp_path / "img.jpg"), reference_id="img.jpg")]
    box = BoxAnnotation("a", 10, 10, 20, 10, reference_id="img.jpg", annotation_id="1")
    poly = PolygonAnnotation("a", [(10, 10), (30, 10), (30, 20)], reference_id="img.jpg",
                             annotation_id="1/polygon")
    mask = MaskAnnotation("b", __import__("numpy").ones((50, 100), bool),
                          reference_id="img.jpg", annotation_id="2/mask")
    pred = PolygonPrediction("a", [(0, 0), (50, 0), (50, 25)], reference_id="img.jpg",
                             confidence=0.5)
    anns = [box, poly, mask, pred]

    def lines(geometry: str) -> list[str]:
        out = export_yolo(items, anns, tmp_path / geometry, geometry=geometry,  # type: ignore
                          copy_images=False)
        return (out / "labels" / "img.txt").read_text().splitlines()

    assert lines("auto") == ["0 0.2 0.3 0.2 0.2", "1 0.5 0.5 1 1", "0 0 0 0.5 0 0.5 0.5 0.5"]
    assert lines("box") == ["0 0.2 0.3 0.2 0.2", "1 0.5 0.5 1 1", "0 0.25 0.25 0.5 0.5 0.5"]
    assert lines("polygon") == ["0 0.1 0.2 0.3 0.2 0.3 0.4", "1 0 0 1 0 1 1 0 1",
                                "0 0 0 0.5 0 0.5 0.5 0.5"]
    assert (tmp_path / "auto" / "data.yaml").read_text().endswith("names:\n  0: 'a'\n  1: 'b'\n")
    assert parse_names_yaml((tmp_path / "auto" / "data.yaml").read_text()) == ["a", "b"]


# --- errors ------------------------------------------------------------------------


def test_missing_folder_and_no_images(tmp_path):
    with pytest.raises(NotFoundError):
        import_yolo(tmp_path / "nope")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(ValidationError, match="no images"):
        import_yolo(tmp_path / "empty")


@pytest.mark.parametrize("line, error, message", [
    ("3 0.5 0.5 0.1 0.1", ValidationError, "a.txt:1: class 3 but only 3 class names"),
    ("0 0.5 0.5", ValidationError, "a.txt:1: expected 'class cx cy w h'"),
    ("0 0.5 x 0.1 0.1", ValidationError, "a.txt:1: non-numeric"),
    ("1.5 0.5 0.5 0.1 0.1", ValidationError, "not a class index"),
    ("0 12 20 30 40", GeometryError, "normalised"),
    ("0 0.5 0.5 -0.005 0.1", GeometryError, "negative box size"),
])
def test_bad_label_lines(tmp_path, line, error, message):
    root = make_yolo(tmp_path / "ds")
    (root / "labels" / "train" / "a.txt").write_text(line + "\n")
    with pytest.raises(error, match=message) as err:
        import_yolo(root)
    assert err.value.reference_id == "train/a.jpg"


def test_orphan_label_warns(tmp_path):
    root = make_yolo(tmp_path / "ds")
    (root / "labels" / "train" / "zzz.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    assert "without an image" in import_yolo(root).warnings[0]


def test_flat_folder(tmp_path):
    write_image(tmp_path / "flat" / "x.jpg", (10, 10))
    (tmp_path / "flat" / "x.txt").write_text("0 0.5 0.5 1 1\n")
    (tmp_path / "flat" / "classes.txt").write_text("thing\n")
    data = import_yolo(tmp_path / "flat")
    assert data.annotations[0].bbox() == (0, 0, 10, 10) and data.warnings == []


def test_roboflow_layout(tmp_path):
    root = tmp_path / "rf"
    write_image(root / "train" / "images" / "a.jpg", (W, H))
    write_image(root / "valid" / "images" / "b.jpg", (W, H))
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text("train: ../train/images\nnc: 1\nnames: ['thing']\n")
    data = import_yolo(root)
    assert [(i.reference_id, i.metadata) for i in data.items] == [
        ("train/a.jpg", {"split": "train"}), ("valid/b.jpg", {"split": "valid"})]
    assert data.annotations[0].label == "thing" and data.annotations[0].reference_id == (
        "train/a.jpg")
    assert data.warnings == []


def test_no_labels_at_all_warns(tmp_path):
    write_image(tmp_path / "ds" / "images" / "a.jpg", (W, H))
    data = import_yolo(tmp_path / "ds", ["x"])
    assert len(data.items) == 1 and "no label files" in data.warnings[0]
