"""Pascal VOC import/export."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ocula.core.types import BoxAnnotation
from ocula.errors import DuplicateIdError, GeometryError, ImageError, NotFoundError, ValidationError
from ocula.io import export_coco, export_voc, import_coco, import_voc
from tests.io.helpers import comparable, write_image

XML = """<annotation>
  <folder>VOC2012</folder>
  <filename>{name}</filename>
  {size}
  <segmented>{segmented}</segmented>
  {objects}
</annotation>
"""
OBJECT = """<object>
    <name>{label}</name>
    <pose>Left</pose>
    <truncated>{truncated}</truncated>
    <difficult>{difficult}</difficult>
    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>
  </object>"""


def write_xml(path: Path, name: str, objects: list[dict], *,
              size: tuple[int, int] | None = (48, 32), segmented: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    size_xml = (f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth>"
                "</size>") if size else ""
    objs = "\n  ".join(OBJECT.format(**{"truncated": 0, "difficult": 0, **o}) for o in objects)
    path.write_text(XML.format(name=name, size=size_xml, segmented=segmented, objects=objs))
    return path


def make_voc(root: Path) -> Path:
    for i, stem in enumerate(["2007_000001", "2007_000002", "2007_000003"]):
        write_image(root / "JPEGImages" / f"{stem}.jpg", (48, 32), seed=i)
    write_xml(root / "Annotations" / "2007_000001.xml", "2007_000001.jpg", [
        {"label": "dog", "xmin": 1, "ymin": 1, "xmax": 10, "ymax": 20, "difficult": 1},
        {"label": "cat", "xmin": 5, "ymin": 6, "xmax": 48, "ymax": 32, "truncated": 1},
    ], segmented=1)
    write_xml(root / "Annotations" / "2007_000002.xml", "2007_000002.jpg", [
        {"label": "person", "xmin": 3.5, "ymin": 4, "xmax": 9.5, "ymax": 30},
    ])
    write_xml(root / "Annotations" / "2007_000003.xml", "2007_000003.jpg", [])
    sets = root / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("2007_000001\n2007_000003\n")
    return root


def test_import(tmp_path):
    root = make_voc(tmp_path / "VOC")
    data = import_voc(root)
    assert [i.reference_id for i in data.items] == ["2007_000001.jpg", "2007_000002.jpg",
                                                    "2007_000003.jpg"]
    item = data.items[0]
    assert item.image_location == str((root / "JPEGImages" / "2007_000001.jpg").absolute())
    assert (item.width, item.height) == (48, 32)
    assert item.metadata == {"folder": "VOC2012", "segmented": True}
    assert data.categories == ["dog", "cat", "person"]
    dog, cat, person = data.annotations
    assert isinstance(dog, BoxAnnotation)
    assert (dog.x, dog.y, dog.width, dog.height) == (0, 0, 10, 20)  # 1-based inclusive
    assert dog.metadata == {"pose": "Left", "difficult": True, "truncated": False}
    assert cat.metadata["truncated"] is True
    assert (cat.x, cat.y, cat.width, cat.height) == (4, 5, 44, 27)
    assert (person.x, person.width) == (2.5, 7.0)
    assert [a.annotation_id for a in data.annotations] == [
        "2007_000001/0", "2007_000001/1", "2007_000002/0"]
    assert all(a.reference_id for a in data.annotations)


def test_image_set_and_flat_folder(tmp_path):
    root = make_voc(tmp_path / "VOC")
    data = import_voc(root, image_set="train")
    assert [i.reference_id for i in data.items] == ["2007_000001.jpg", "2007_000003.jpg"]
    with pytest.raises(NotFoundError):
        import_voc(root, image_set="val")
    flat = tmp_path / "flat"
    write_image(flat / "x.png", (20, 10))
    write_xml(flat / "x.xml", "x.png", [{"label": "a", "xmin": 1, "ymin": 1, "xmax": 5,
                                         "ymax": 5}], size=None)
    data = import_voc(flat)
    assert data.items[0].image_location == str((flat / "x.png").absolute())
    assert (data.items[0].width, data.items[0].height) == (20, 10)  # from the image header


def test_round_trip(tmp_path):
    data = import_voc(make_voc(tmp_path / "VOC"))
    out = export_voc(data.items, data.annotations, tmp_path / "out")
    assert (out / "JPEGImages" / "2007_000002.jpg").is_file()
    again = import_voc(out)
    assert comparable(again.items, drop_location=True) == comparable(data.items,
                                                                     drop_location=True)
    assert comparable(again.annotations) == comparable(data.annotations)
    assert again.categories == data.categories


def test_round_trip_through_coco(tmp_path):
    data = import_voc(make_voc(tmp_path / "VOC"))
    path = tmp_path / "voc.json"
    path.write_text(json.dumps(export_coco(data.items, data.annotations,
                                           categories=data.categories)))
    again = import_coco(path, tmp_path / "VOC" / "JPEGImages")
    assert [i.reference_id for i in again.items] == [i.reference_id for i in data.items]
    assert [(a.label, a.bbox(), a.metadata) for a in again.annotations] == [
        (a.label, a.bbox(), a.metadata) for a in data.annotations]
    assert again.categories == data.categories


def test_export_subfolders(tmp_path):
    data = import_voc(make_voc(tmp_path / "VOC"))
    data.items[0].reference_id = "train/2007_000001.jpg"
    for ann in data.annotations[:2]:
        ann.reference_id = "train/2007_000001.jpg"
    out = export_voc(data.items, data.annotations, tmp_path / "out")
    assert (out / "Annotations" / "train" / "2007_000001.xml").is_file()
    assert (out / "JPEGImages" / "train" / "2007_000001.jpg").is_file()
    again = import_voc(out)
    assert sorted(i.reference_id for i in again.items) == sorted(
        i.reference_id for i in data.items)
    assert sorted((a.reference_id, a.label, a.bbox()) for a in again.annotations) == sorted(
        (a.reference_id, a.label, a.bbox()) for a in data.annotations)
    assert "train/2007_000001/0" in {a.annotation_id for a in again.annotations}
    with pytest.raises(ValidationError, match="unknown item"):
        export_voc(data.items[1:], data.annotations, tmp_path / "out2")


# --- errors ------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(NotFoundError):
        import_voc(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no VOC XML files"):
        import_voc(tmp_path / "empty")


def test_malformed_xml(tmp_path):
    root = make_voc(tmp_path / "VOC")
    (root / "Annotations" / "2007_000002.xml").write_text("<annotation><filename>x</annotation>")
    with pytest.raises(ValidationError, match="2007_000002.xml is not valid XML") as err:
        import_voc(root)
    assert err.value.detail["line"] == 1


def test_not_voc_root(tmp_path):
    root = make_voc(tmp_path / "VOC")
    (root / "Annotations" / "2007_000002.xml").write_text("<svg></svg>")
    with pytest.raises(ValidationError, match="not a VOC annotation"):
        import_voc(root)


@pytest.mark.parametrize("box, message", [
    ({"xmin": "a", "ymin": 1, "xmax": 2, "ymax": 2}, "non-numeric <bndbox>/<xmin>"),
    ({"xmin": 5, "ymin": 1, "xmax": 2, "ymax": 2}, "xmax < xmin"),
])
def test_malformed_box(tmp_path, box, message):
    root = make_voc(tmp_path / "VOC")
    write_xml(root / "Annotations" / "2007_000002.xml", "2007_000002.jpg",
              [{"label": "dog", **box}])
    with pytest.raises(GeometryError, match=message) as err:
        import_voc(root)
    assert err.value.reference_id == "2007_000002.jpg"
    assert "2007_000002.xml: object #0 (dog)" in str(err.value)


def test_missing_bndbox_and_name(tmp_path):
    root = make_voc(tmp_path / "VOC")
    xml = root / "Annotations" / "2007_000002.xml"
    xml.write_text("<annotation><filename>2007_000002.jpg</filename><object><name>dog</name>"
                   "</object></annotation>")
    with pytest.raises(GeometryError, match="missing or non-numeric"):
        import_voc(root)
    xml.write_text("<annotation><filename>2007_000002.jpg</filename><object></object>"
                   "</annotation>")
    with pytest.raises(ValidationError, match="object #0 has no <name>"):
        import_voc(root)


def test_missing_image_without_size(tmp_path):
    root = make_voc(tmp_path / "VOC")
    write_xml(root / "Annotations" / "2007_000002.xml", "gone.jpg", [], size=None)
    (root / "JPEGImages" / "2007_000002.jpg").unlink()
    with pytest.raises(ImageError) as err:
        import_voc(root)
    assert err.value.reference_id == "gone.jpg"


def test_duplicate_filename(tmp_path):
    root = make_voc(tmp_path / "VOC")
    write_xml(root / "Annotations" / "2007_000003.xml", "2007_000002.jpg", [])
    with pytest.raises(DuplicateIdError, match="2007_000002.jpg"):
        import_voc(root)


# --- where the image is ------------------------------------------------------------


@pytest.mark.parametrize("image, xml, filename", [
    ("JPEGImages/photo 7.jpg", "0001.xml", "photo 7.jpg"),  # <filename> is not the XML name
    ("JPEGImages/b.jpg", "0001.xml", "C:\\Users\\me\\Desktop\\b.jpg"),  # a Windows path
    ("images/0001.PNG", "0001.xml", "IMG_9.jpg"),  # a stale <filename>: the XML's own name
])
def test_image_lookup(tmp_path, image, xml, filename):
    root = tmp_path / "VOC"
    write_image(root / image, (48, 32))
    write_xml(root / "Annotations" / xml, filename, [
        {"label": "dog", "xmin": 1, "ymin": 1, "xmax": 10, "ymax": 20}])
    data = import_voc(root)
    ref = Path(image).name
    assert [(i.reference_id, i.image_location) for i in data.items] == [
        (ref, str((root / image).absolute()))]
    assert [(a.reference_id, a.annotation_id) for a in data.annotations] == [(ref, "0001/0")]


@pytest.mark.parametrize("where", ["parent", "root"])
def test_folder_and_filename(tmp_path, where):
    # labelImg: <folder> is the image folder's name, the XML files live elsewhere
    base = tmp_path / "set"
    xml_root = base / "annotations" if where == "parent" else base
    write_image(base / "pics" / "a.png", (48, 32))
    write_xml(xml_root / "a_labels.xml", "a.png", [], size=None)
    xml = (xml_root / "a_labels.xml").read_text().replace("VOC2012", "pics")
    (xml_root / "a_labels.xml").write_text(xml)
    data = import_voc(xml_root)
    assert [(i.reference_id, i.image_location, i.width) for i in data.items] == [
        ("a.png", str((base / "pics" / "a.png").absolute()), 48)]
    assert data.items[0].metadata["folder"] == "pics"


def test_missing_image_lists_every_candidate(tmp_path):
    root = tmp_path / "VOC"
    (root / "JPEGImages").mkdir(parents=True)
    write_xml(root / "Annotations" / "x1.xml", "shot.jpg", [])
    xml = (root / "Annotations" / "x1.xml").read_text().replace(
        "<folder>VOC2012</folder>", "<folder>pics</folder><path>/elsewhere/shot.jpg</path>")
    (root / "Annotations" / "x1.xml").write_text(xml)
    with pytest.raises(ImageError) as err:
        import_voc(root)
    message = str(err.value)
    assert message.startswith("x1.xml: image not found; tried")
    listed = [line.strip() for line in message.splitlines()[1:]]
    assert listed == err.value.detail["tried"]
    dirs = [root / d for d in ("JPEGImages", "images", "Images", "PNGImages")] + [root]
    expected = [d / "shot.jpg" for d in dirs]
    expected += [root / "pics" / "shot.jpg", tmp_path / "pics" / "shot.jpg",
                 Path("/elsewhere/shot.jpg")]
    expected += [d / f"x1{s}" for d in dirs for s in (".jpg", ".JPG", ".png", ".tiff")]
    assert set(map(str, expected)) <= set(listed)
    assert listed[:len(dirs)] == [str(p) for p in expected[:len(dirs)]]  # filename first
    assert len(listed) == len(set(listed))


# --- boxes at or past the image border ---------------------------------------------


@pytest.mark.parametrize("corners, expected", [
    ((0, 4, 10, 20), (0, 3, 10, 17)),      # 0-based xmin: clamped, xmax kept
    ((3, 0, 10, 20), (2, 0, 8, 20)),       # 0-based ymin
    ((0, 0, 48, 32), (0, 0, 48, 32)),
    ((5, 6, 50, 40), (4, 5, 44, 27)),      # xmax, ymax past the 48x32 image
])
def test_box_outside_the_image_is_clamped(tmp_path, corners, expected):
    root = make_voc(tmp_path / "VOC")
    xmin, ymin, xmax, ymax = corners
    write_xml(root / "Annotations" / "2007_000002.xml", "2007_000002.jpg", [
        {"label": "ok", "xmin": 1, "ymin": 1, "xmax": 48, "ymax": 32},
        {"label": "dog", "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}])
    data = import_voc(root)
    ok, dog = [a for a in data.annotations if a.reference_id == "2007_000002.jpg"]
    assert (ok.x, ok.y, ok.width, ok.height) == (0, 0, 48, 32)  # the border itself is fine
    assert (dog.x, dog.y, dog.width, dog.height) == expected
    assert data.warnings == [
        f"2007_000002.xml: object #1 (dog): box xmin={xmin} ymin={ymin} xmax={xmax} "
        f"ymax={ymax} reaches outside the 48x32 image; clamped to it"]
    # export writes the clamped box back as 1-based corners inside the image
    out = export_voc(data.items, data.annotations, tmp_path / "out", copy_images=False)
    bndbox = ET.parse(out / "Annotations" / "2007_000002.xml").findall("object")[1].find(
        "bndbox")
    x, y, w, h = expected
    assert [float(bndbox.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")] == [
        x + 1, y + 1, x + w, y + h]


def test_normal_boxes_export_as_their_exact_inverse(tmp_path):
    root = make_voc(tmp_path / "VOC")
    data = import_voc(root)
    assert data.warnings == []
    out = export_voc(data.items, data.annotations, tmp_path / "out", copy_images=False)
    for name in ("2007_000001", "2007_000002"):
        source = ET.parse(root / "Annotations" / f"{name}.xml").findall("object/bndbox")
        written = ET.parse(out / "Annotations" / f"{name}.xml").findall("object/bndbox")
        assert [[float(b.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
                for b in written] == [[float(b.find(t).text) for t in
                                       ("xmin", "ymin", "xmax", "ymax")] for b in source]


def test_box_wholly_outside_the_image(tmp_path):
    root = make_voc(tmp_path / "VOC")
    write_xml(root / "Annotations" / "2007_000002.xml", "2007_000002.jpg", [
        {"label": "dog", "xmin": 60, "ymin": 1, "xmax": 70, "ymax": 5}])
    with pytest.raises(GeometryError, match=r"2007_000002.xml: object #0 \(dog\): box "
                       "xmin=60 ymin=1 xmax=70 ymax=5 lies outside the 48x32 image"):
        import_voc(root)
