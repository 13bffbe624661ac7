"""YOLO pose labels (kpt_shape), the Images/ + Annotations/ and DOTA labelTxt/ layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    Keypoint,
    KeypointsAnnotation,
    KeypointsPrediction,
    PolygonAnnotation,
)
from ocula.errors import GeometryError, ValidationError
from ocula.io import export_yolo, import_yolo
from ocula.io.yolo_yaml import parse_pose_yaml
from tests.io.helpers import comparable, write_image

W, H = 64, 32  # every pixel / size has at most 6 decimals, as exporters write them
NAMES = ["nose", "left eye", "right eye"]
# Pixel truth of each object: class, box (x, y, w, h), points (x, y, YOLO visibility).
PEOPLE = [
    (0, (16, 4, 32, 24), [(24, 18, 2), (40, 20, 1), (0, 0, 0)]),
    (0, (0, 0, 64, 32), [(8, 4, 2), (16, 8, 2), (32, 24, 2)]),
    (1, (4, 8, 16, 8), [(6, 10, 2), (0, 0, 0), (12, 14, 1)]),
]
YAML = """path: .
train: images/train
kpt_shape: [3, {dims}]  # number of keypoints, number of dims
flip_idx: [0, 2, 1]
names:
  0: person
  1: hand
kpt_names:
  0:
    - nose
    - 'left eye'
    - "right eye"
  1: [palm, thumb, index]
"""


def pose_line(cls: int, box: tuple, points: list[tuple], dims: int = 3) -> str:
    x, y, w, h = box
    values = [(x + w / 2) / W, (y + h / 2) / H, w / W, h / H]
    for px, py, v in points:
        values += [px / W, py / H] + ([v] if dims == 3 else [])
    return " ".join([str(cls), *(f"{v:g}" for v in values)])


def make_pose(root: Path, *, dims: int = 3) -> Path:
    write_image(root / "images" / "train" / "a.jpg", (W, H))
    write_image(root / "images" / "train" / "b.jpg", (W, H), seed=1)
    (root / "labels" / "train").mkdir(parents=True)
    people = PEOPLE if dims == 3 else [(c, b, [(x, y, 2) for x, y, _ in p])
                                       for c, b, p in PEOPLE]
    (root / "labels" / "train" / "a.txt").write_text(
        "".join(pose_line(*person, dims=dims) + "\n" for person in people))
    (root / "labels" / "train" / "b.txt").write_text("")
    (root / "data.yaml").write_text(YAML.format(dims=dims))
    return root


def expected_keypoints(points: list[tuple], dims: int = 3) -> list[Keypoint]:
    if dims == 2:
        return [Keypoint(float(x), float(y), True) for x, y, _ in points]
    return [Keypoint(None, None, False) if v == 0 else Keypoint(float(x), float(y), v == 2)
            for x, y, v in points]


@pytest.mark.parametrize("dims", [3, 2])
def test_pose_import(tmp_path, dims):
    data = import_yolo(make_pose(tmp_path / "ds", dims=dims))
    assert data.categories == ["person", "hand"] and data.predictions == []
    assert data.warnings == []
    assert len(data.annotations) == 2 * len(PEOPLE)
    for k, (cls, box, points) in enumerate(PEOPLE):
        b, kps = data.annotations[2 * k: 2 * k + 2]
        label = ["person", "hand"][cls]
        assert isinstance(b, BoxAnnotation) and isinstance(kps, KeypointsAnnotation)
        assert (b.label, b.reference_id, b.annotation_id) == (label, "train/a.jpg", f"train/a/{k}")
        assert (kps.label, kps.reference_id, kps.annotation_id) == (
            label, "train/a.jpg", f"train/a/{k}/keypoints")
        assert (b.x, b.y, b.width, b.height) == pytest.approx(box)
        got = [(p.x, p.y, p.visible) for p in kps.keypoints]
        want = [(p.x, p.y, p.visible) for p in expected_keypoints(points, dims)]
        assert got == [pytest.approx(w) if w[0] is not None else w for w in want]
        assert kps.names == (NAMES if cls == 0 else ["palm", "thumb", "index"])


def test_pose_round_trip(tmp_path):
    data = import_yolo(make_pose(tmp_path / "ds"))
    out = export_yolo(data.items, data.annotations, tmp_path / "out",
                      class_names=data.categories)
    spec = parse_pose_yaml((out / "data.yaml").read_text())
    assert (spec.count, spec.dims) == (3, 3)
    assert spec.names == {0: NAMES, 1: ["palm", "thumb", "index"]}
    written = (out / "labels" / "train" / "a.txt").read_text().splitlines()
    assert [[float(v) for v in line.split()] for line in written] == [
        pytest.approx([float(v) for v in pose_line(*p).split()]) for p in PEOPLE]
    again = import_yolo(out)
    assert again.categories == data.categories
    assert comparable(again.annotations) == comparable(data.annotations)


def test_pose_predictions(tmp_path):
    root = make_pose(tmp_path / "ds")
    cls, box, points = PEOPLE[0]
    scores = [(x, y, s) for (x, y, _), s in zip(points, (0.9, 0.3, 0.5), strict=True)]
    (root / "labels" / "train" / "b.txt").write_text(pose_line(cls, box, scores) + " 0.75\n")
    data = import_yolo(root)
    box_pred, kps_pred = data.predictions
    assert isinstance(box_pred, BoxPrediction) and isinstance(kps_pred, KeypointsPrediction)
    assert (box_pred.confidence, kps_pred.confidence) == (0.75, 0.75)
    assert kps_pred.annotation_id == "train/b/0/keypoints"
    assert [k.visible for k in kps_pred.keypoints] == [True, False, True]
    out = export_yolo(data.items, [*data.annotations, *data.predictions], tmp_path / "out")
    again = import_yolo(out)
    assert comparable(again.predictions) == comparable(data.predictions)


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 0.2 2", r"a.txt:2: kpt_shape \[3, 3\] needs 'class cx cy "
     r"w h' and 9 keypoint values \(14 in all, 15 with a confidence\), got 11"),
    ("0 0.5 0.5 0.2 0.2", "a.txt:2: kpt_shape"),
    ("0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 0.2 3 0.3 0.3 2", "a.txt:2: keypoint #1 has visibility 3"),
    ("0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.2 7 2 0.3 0.3 2", "a.txt:2: coordinates must be normalised"),
])
def test_pose_bad_lines(tmp_path, line, message):
    root = make_pose(tmp_path / "ds")
    (root / "labels" / "train" / "a.txt").write_text(pose_line(*PEOPLE[0]) + "\n" + line + "\n")
    with pytest.raises(GeometryError, match=message) as err:
        import_yolo(root)
    assert err.value.reference_id == "train/a.jpg"


@pytest.mark.parametrize("yaml, names", [
    ("kpt_shape: [2, 3]\nkpt_names: [a, 'b c']\n", {0: ["a", "b c"], 1: ["a", "b c"]}),
    ("kpt_shape:\n  - 2\n  - 2\nkpt_names: [[a, b], [c, d]]\n", {0: ["a", "b"], 1: ["c", "d"]}),
    ("kpt_shape: [2, 3]\nkpt_names:\n  1: [c, d]\n", {0: [], 1: ["c", "d"]}),
    ("kpt_shape: [2, 3]\n", {0: [], 1: []}),
])
def test_parse_pose_yaml(yaml, names):
    spec = parse_pose_yaml("names: [x, y]\n" + yaml)
    assert spec.count == 2 and {c: spec.names_of(c) for c in (0, 1)} == names


@pytest.mark.parametrize("yaml, message", [
    ("kpt_shape: [2, 4]\n", "kpt_shape must be"),
    ("kpt_shape: 17\n", "kpt_shape must be"),
    ("kpt_shape: [2, 3]\nkpt_names: [a, b, c]\n", "lists 3 names but kpt_shape has 2"),
    ("kpt_shape: [2, 3]\nkpt_names:\n  x: [a, b]\n", "class indices"),
])
def test_parse_pose_yaml_errors(yaml, message):
    with pytest.raises(ValidationError, match=message):
        parse_pose_yaml(yaml)
    assert parse_pose_yaml("names: [a]\n") is None


def test_export_pose_from_other_sources(tmp_path):
    from ocula.core.types import DatasetItem

    write_image(tmp_path / "img.jpg", (100, 50))
    items = [DatasetItem(image_location=str(tmp_path / "img.jpg"), reference_id="img.jpg")]
    box_only = BoxAnnotation("car", 10, 10, 20, 10, reference_id="img.jpg", annotation_id="1")
    points_only = KeypointsAnnotation("person", [(10, 20, True), (30, 40, False), (None, None,
                                                                                  False)],
                                      reference_id="img.jpg", annotation_id="2/keypoints")
    out = export_yolo(items, [box_only, points_only], tmp_path / "out")
    assert (out / "labels" / "img.txt").read_text().splitlines() == [
        "0 0.2 0.3 0.2 0.2 0 0 0 0 0 0 0 0 0",         # a box gets unlabelled points
        "1 0.2 0.6 0.2 0.4 0.1 0.4 2 0.3 0.8 1 0 0 0",  # box around labelled points
    ]
    again = import_yolo(out)
    assert [a.bbox() for a in again.annotations if a.type == "box"] == [
        (10, 10, 20, 10), pytest.approx((10, 20, 20, 20))]
    with pytest.raises(ValidationError, match="kpt_shape allows one count"):
        export_yolo(items, [points_only, KeypointsAnnotation(
            "person", [(1, 1, True)], reference_id="img.jpg")], tmp_path / "x")
    with pytest.raises(ValidationError, match="not a polygon"):
        export_yolo(items, [points_only], tmp_path / "x", geometry="polygon")


# --- other layouts -----------------------------------------------------------------


def test_images_and_annotations_folders(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "Images" / "a.jpg", (W, H))
    write_image(root / "Images" / "b.jpg", (W, H), seed=1)
    (root / "Annotations").mkdir()
    (root / "Annotations" / "a.txt").write_text("0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n")
    (root / "classes.txt").write_text("cat\ndog\n")
    data = import_yolo(root)
    assert [i.reference_id for i in data.items] == ["a.jpg", "b.jpg"]
    assert [(a.label, a.reference_id, a.bbox()) for a in data.annotations] == [
        ("cat", "a.jpg", (24, 8, 16, 16)), ("dog", "a.jpg", (0, 0, 32, 16))]
    assert data.warnings == []


DOTA = """imagesource:GoogleEarth
gsd:0.146343590398
10 5 30 5 30 25 10 25 small-vehicle 0
40.5 10 60 12 58 30 38.5 28 large vehicle? 1
"""


def test_dota_label_txt(tmp_path):
    root = tmp_path / "dota"
    write_image(root / "train" / "images" / "P0001.png", (W, H))
    (root / "train" / "labelTxt").mkdir(parents=True)
    text = DOTA.replace("large vehicle?", "large-vehicle")
    (root / "train" / "labelTxt" / "P0001.txt").write_text(text)
    data = import_yolo(root)
    (item,) = data.items
    assert item.reference_id == "train/P0001.png"
    assert item.metadata == {"split": "train", "imagesource": "GoogleEarth",
                             "gsd": 0.146343590398}
    assert data.categories == ["small-vehicle", "large-vehicle"] and data.warnings == []
    expected = []
    for k, line in enumerate(text.splitlines()[2:]):  # independent parse of the object lines
        *corners, label, difficult = line.split()
        xy = [float(c) for c in corners]
        expected.append((label, [(xy[j], xy[j + 1]) for j in range(0, 8, 2)],
                         {"difficult": difficult == "1"}, f"train/P0001/{k}"))
    assert all(isinstance(a, PolygonAnnotation) for a in data.annotations)
    assert [(a.label, [(v.x, v.y) for v in a.vertices], a.metadata, a.annotation_id)
            for a in data.annotations] == expected


def test_dota_bad_line(tmp_path):
    root = tmp_path / "dota"
    write_image(root / "images" / "P1.png", (W, H))
    (root / "labelTxt").mkdir()
    (root / "labelTxt" / "P1.txt").write_text("gsd:null\n1 2 3 4 5 6 plane 0\n")
    with pytest.raises(ValidationError, match=r"P1.txt:2: expected 'x1 y1 x2 y2 x3 y3 x4 y4 "):
        import_yolo(root)


@pytest.mark.parametrize("labels, message", [
    ({"Annotations/a.xml": "<annotation/>"}, "Pascal VOC"),
    ({"gt/a.txt": "0 0.5 0.5 0.1 0.1\n"}, "1 label-like file"),
    ({"_annotations.coco.json": "{}"}, "COCO"),
])
def test_unreadable_layout_is_refused(tmp_path, labels, message):
    root = tmp_path / "ds"
    write_image(root / "JPEGImages" / "a.jpg", (W, H))
    for name, text in labels.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "README.dataset.txt").write_text("not a label")
    with pytest.raises(ValidationError, match=message):
        import_yolo(root)
