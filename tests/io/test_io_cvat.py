"""CVAT for images 1.1 import/export, checked against an independent parse of the XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocula.core.masks import rle_decode
from ocula.core.types import (
    BoxAnnotation,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    MaskAnnotation,
    Point,
    PolygonAnnotation,
)
from ocula.errors import DuplicateIdError, GeometryError, ImageError, NotFoundError, ValidationError
from ocula.io import EXPORTERS, REGISTRY, export_coco, export_cvat, import_coco, import_cvat
from tests.io.helpers import comparable, write_image

LABELS = """
  <meta>
    <task>
      <id>7</id>
      <name>streets</name>
      <labels>
        <label>
          <name>car</name>
          <color>#fa3253</color>
          <type>any</type>
          <attributes>
            <attribute>
              <name>color</name>
              <mutable>False</mutable>
              <input_type>select</input_type>
              <default_value>red</default_value>
              <values>red
blue</values>
            </attribute>
            <attribute>
              <name>parked</name>
              <mutable>True</mutable>
              <input_type>checkbox</input_type>
              <default_value>false</default_value>
              <values>false</values>
            </attribute>
            <attribute>
              <name>speed</name>
              <mutable>True</mutable>
              <input_type>number</input_type>
              <default_value>0</default_value>
              <values>0
200
0.5</values>
            </attribute>
            <attribute>
              <name>note</name>
              <mutable>False</mutable>
              <input_type>text</input_type>
              <default_value></default_value>
              <values></values>
            </attribute>
          </attributes>
        </label>
        <label><name>road</name><color>#33ddff</color><type>polygon</type><attributes/></label>
        <label><name>pose</name><type>points</type><attributes/></label>
        <label><name>person</name><type>mask</type><attributes/></label>
        <label><name>day</name><type>tag</type><attributes>
          <attribute><name>light</name><mutable>False</mutable><input_type>radio</input_type>
            <default_value>sun</default_value><values>sun
rain</values></attribute></attributes></label>
      </labels>
    </task>
  </meta>"""

IMAGES = """
  <image id="0" name="a.jpg" width="64" height="48" subset="train">
    <box label="car" source="manual" occluded="1" xtl="1.5" ytl="2.25" xbr="30.75" ybr="20" \
rotation="12.5" z_order="2" group_id="3">
      <attribute name="color">blue</attribute>
      <attribute name="parked">true</attribute>
      <attribute name="speed">12.5</attribute>
      <attribute name="note"> two  words </attribute>
    </box>
    <polygon label="road" source="auto" occluded="0" points="0,40;63.5,40;63.5,47.5;0,47.5" \
z_order="0"/>
    <points label="pose" source="manual" occluded="0" points="10,10;12.5,11.25" z_order="1"/>
    <ellipse label="road" source="manual" occluded="0" cx="5" cy="5" rx="2" ry="1" z_order="0"/>
    <tag label="day" source="manual">
      <attribute name="light">rain</attribute>
    </tag>
    <mask label="person" source="semi-auto" occluded="0" rle="2, 3, 4, 3" left="5" top="6" \
width="4" height="3" z_order="1"/>
    <box label="car" occluded="0" xtl="0" ytl="0" xbr="0" ybr="0" z_order="0">
      <attribute name="speed">7</attribute>
    </box>
  </image>
  <image id="1" name="sub/b.png" width="32" height="16"/>
  <image id="5" name="c.jpg" width="20" height="10">
    <mask label="person" occluded="0" rle="0, 6" left="17" top="8" width="3" height="2"/>
  </image>"""


def cvat_xml(images: str = IMAGES, labels: str = LABELS) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>'
            f"{labels}{images}\n</annotations>\n")


def write_cvat(folder: Path, images: str = IMAGES, labels: str = LABELS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "annotations.xml"
    path.write_text(cvat_xml(images, labels), encoding="utf-8")
    return path


# --- an independent reading of the XML, written for the tests -----------------------


def _mask(el: ET.Element, width: int, height: int) -> np.ndarray:
    """CVAT's mask: runs (background first) filling its box row by row."""
    left, top, w = int(el.get("left")), int(el.get("top")), int(el.get("width"))
    full = np.zeros((height, width), dtype=bool)
    offset, value = 0, False
    for run in (int(c) for c in el.get("rle").split(",")):
        for i in range(offset, offset + run):
            full[top + i // w, left + i % w] = value
        offset, value = offset + run, not value
    return full


def expected_objects(xml: str) -> list[dict[str, Any]]:
    """Every supported element of the file as a plain dict (ellipses left out)."""
    out = []
    for image in ET.fromstring(xml).findall("image"):
        for el in image:
            if el.tag == "ellipse":
                continue
            obj: dict[str, Any] = {
                "image": image.get("name"), "tag": el.tag, "label": el.get("label"),
                "attributes": {a.get("name"): a.text or "" for a in el.findall("attribute")}}
            for key in ("occluded", "z_order", "group_id"):
                if el.get(key) is not None:
                    obj[key] = int(el.get(key))
            obj["source"] = el.get("source")
            obj["rotation"] = float(el.get("rotation", 0))
            if el.tag == "box":
                obj["geometry"] = [float(el.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
            elif el.tag in ("polygon", "points", "polyline"):
                obj["geometry"] = [tuple(map(float, p.split(",")))
                                   for p in el.get("points").split(";")]
            elif el.tag == "mask":
                obj["geometry"] = _mask(el, int(image.get("width")), int(image.get("height")))
            out.append(obj)
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def as_objects(annotations: list[Any]) -> list[dict[str, Any]]:
    """Imported annotations in the shape of :func:`expected_objects`."""
    tags = {"box": "box", "polygon": "polygon", "keypoints": "points", "mask": "mask",
            "category": "tag"}
    out = []
    for ann in annotations:
        meta = ann.metadata or {}
        obj: dict[str, Any] = {
            "image": ann.reference_id, "tag": tags[ann.type], "label": ann.label,
            "attributes": {k: _as_text(v) for k, v in meta.get("attributes", {}).items()}}
        for key in ("occluded", "z_order", "group_id"):
            if key in meta:
                obj[key] = int(meta[key])
        obj["source"] = meta.get("source")
        obj["rotation"] = meta.get("rotation", 0.0)
        if ann.type == "box":
            obj["geometry"] = [ann.x, ann.y, ann.x + ann.width, ann.y + ann.height]
        elif ann.type == "polygon":
            obj["geometry"] = [(v.x, v.y) for v in ann.vertices]
        elif ann.type == "keypoints":
            assert all(k.visible for k in ann.keypoints)
            obj["geometry"] = [(k.x, k.y) for k in ann.keypoints]
        elif ann.type == "mask":
            obj["geometry"] = rle_decode(ann.mask)
        out.append(obj)
    return out


def assert_same_objects(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        if want["tag"] == "mask":
            assert np.array_equal(got.pop("geometry"), want.pop("geometry")), want
        assert got == want


# --- import -------------------------------------------------------------------------


def test_import_matches_an_independent_parse(tmp_path: Path) -> None:
    xml = write_cvat(tmp_path)
    data = import_cvat(xml)
    assert_same_objects(as_objects(data.annotations), expected_objects(xml.read_text()))
    assert REGISTRY["cvat"] is import_cvat and EXPORTERS["cvat"] is export_cvat

    # The typed metadata layout of the module docstring, on the richest box.
    box = data.annotations[0]
    assert isinstance(box, BoxAnnotation) and box.annotation_id == "a.jpg/0"
    assert (box.x, box.y, box.width, box.height) == (1.5, 2.25, 29.25, 17.75)
    assert box.metadata == {
        "source": "manual", "occluded": True, "rotation": 12.5, "z_order": 2, "group_id": 3,
        "attributes": {"color": "blue", "parked": True, "speed": 12.5, "note": " two  words "}}
    assert data.annotations[-2].metadata["attributes"] == {"speed": 7}
    assert [a.annotation_id for a in data.annotations] == [
        "a.jpg/0", "a.jpg/1", "a.jpg/2", "a.jpg/3", "a.jpg/4", "a.jpg/5", "c.jpg/0"]
    kps = data.annotations[2]
    assert isinstance(kps, KeypointsAnnotation)
    assert kps.keypoints == [Keypoint(10, 10, True), Keypoint(12.5, 11.25, True)]
    assert data.annotations[3].type == "category"
    assert data.annotations[3].metadata == {"source": "manual",
                                            "attributes": {"light": "rain"}}
    mask = data.annotations[4]
    assert isinstance(mask, MaskAnnotation) and mask.mask["size"] == [48, 64]
    assert mask.bbox() == (5, 6, 4, 3) and mask.computed_area() == 6

    assert [(i.reference_id, i.width, i.height, i.metadata) for i in data.items] == [
        ("a.jpg", 64, 48, {"cvat_id": 0, "cvat_attributes": {"subset": "train"}}),
        ("sub/b.png", 32, 16, {"cvat_id": 1}), ("c.jpg", 20, 10, {"cvat_id": 5})]
    assert data.items[1].image_location == str((tmp_path / "sub" / "b.png").absolute())
    assert data.categories == ["car", "road", "pose", "person", "day"]
    car = data.info["cvat"]["labels"][0]
    assert car["color"] == "#fa3253" and car["attributes"][2] == {
        "name": "speed", "mutable": "True", "input_type": "number", "default_value": "0",
        "values": ["0", "200", "0.5"]}
    line = next(n for n, text in enumerate(xml.read_text().splitlines(), start=1)
                if "<ellipse" in text)
    assert data.warnings == ["annotations.xml: 1 x <ellipse>: skipped, Ocula has no type "
                             f"that holds it (first on image 'a.jpg', line {line})"]


def test_folder_images_dir_and_image_lookup(tmp_path: Path) -> None:
    images = """
  <image id="0" name="x.png"/>
  <image id="1" name="y.png" width="9" height="7"/>"""
    write_cvat(tmp_path, images)
    write_image(tmp_path / "images" / "x.png", (20, 10))
    data = import_cvat(tmp_path)  # the folder: annotations.xml, then images/
    assert [(i.width, i.height) for i in data.items] == [(20, 10), (9, 7)]
    assert data.items[0].image_location == str((tmp_path / "images" / "x.png").absolute())
    # A missing file is fine when the XML gives the size (like COCO), not otherwise.
    assert data.items[1].image_location == str((tmp_path / "y.png").absolute())
    other = tmp_path / "elsewhere"
    with pytest.raises(ImageError, match="image not found") as err:
        import_cvat(tmp_path, images_dir=other)
    assert err.value.reference_id == "x.png"
    with pytest.raises(NotFoundError, match="CVAT annotation file not found"):
        import_cvat(tmp_path / "nothing")


def test_no_labels_in_meta_accepts_shape_labels_with_a_warning(tmp_path: Path) -> None:
    images = """
  <image id="0" name="a.jpg" width="10" height="10">
    <box label="zebra" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2" odd="x">
      <attribute name="n">3</attribute>
    </box>
  </image>"""
    data = import_cvat(write_cvat(tmp_path, images, labels=""))
    assert data.categories == ["zebra"]
    assert data.annotations[0].metadata == {"occluded": False, "attributes": {"n": "3"}}
    assert data.warnings[0].endswith("no labels declared in <meta>; labels taken from the "
                                     "shapes")
    assert "'odd' attribute of <box>: ignored" in data.warnings[1]


TWO = '<image id="0" name="a.jpg" width="8" height="8">\n    {}\n  </image>'
BAD = [  # (images, error, message, text on the offending line)
    ('<image id="0" name="a.jpg" width="8" height="8"/>\n'
     '  <image id="1" name="a.jpg" width="8" height="8"/>',
     DuplicateIdError, "image 'a.jpg': image name appears twice", 'id="1"'),
    ('<image id="0" name="a.jpg" width="8" height="8"/>\n'
     '  <image id="0" name="b.jpg" width="8" height="8"/>',
     DuplicateIdError, "image 'b.jpg': image id 0 appears twice (also image 'a.jpg')",
     "b.jpg"),
    (TWO.format('<box label="truck" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2"/>'),
     ValidationError, "image 'a.jpg': label 'truck' is not declared in <meta>", "<box"),
    (TWO.format('<polygon label="road" occluded="0" points="1,2;3"/>'),
     GeometryError, "image 'a.jpg': malformed points '1,2;3'", "<polygon"),
    (TWO.format('<polygon label="road" occluded="0" points="1,2;3,4"/>'),
     GeometryError, "needs at least 3 point(s), got 2", "<polygon"),
    (TWO.format('<box label="car" occluded="0" xtl="one" ytl="1" xbr="2" ybr="2"/>'),
     GeometryError, "image 'a.jpg': xtl must be a finite number, got 'one'", "<box"),
    (TWO.format('<points label="pose" occluded="0" points="nan,1"/>'),
     GeometryError, "a point's x must be a finite number, got 'nan'", "<points"),
    (TWO.format('<box label="car" occluded="0" xtl="3" ytl="1" xbr="2" ybr="2"/>'),
     GeometryError, "box has xbr < xtl or ybr < ytl", "<box"),
    (TWO.format('<mask label="person" occluded="0" rle="1, 2" left="0" top="0" width="2" '
                'height="2"/>'),
     GeometryError, "mask runs sum to 3, expected width*height = 4", "<mask"),
    (TWO.format('<mask label="person" occluded="0" rle="4" left="7" top="0" width="2" '
                'height="2"/>'),
     GeometryError, "mask box [7, 0, 2, 2] (left, top, width, height) or its runs do not fit",
     "<mask"),
    (TWO.format('<box label="car" occluded="0" xtl="1" ytl="1" xbr="2" ybr="2">\n'
                '      <attribute name="parked">maybe</attribute></box>'),
     ValidationError, "checkbox attribute 'parked' must be true or false, got 'maybe'",
     "maybe"),
    (TWO.format('<box label="car" occluded="2" xtl="1" ytl="1" xbr="2" ybr="2"/>'),
     ValidationError, "occluded must be 0 or 1, got '2'", "<box"),
    ('<image id="0" name="a.jpg" width="8" height="-8"/>',
     ValidationError, "image 'a.jpg': width/height must be positive, got 8x-8", "a.jpg"),
    ('<track id="0" label="car"/>', ValidationError, "<track> elements belong to", "<track"),
    ('<image id="0" name="a.jpg" width="8" height="8"><box></image>',
     ValidationError, "is not valid XML: mismatched tag at line", "<box>"),
]


@pytest.mark.parametrize(("images", "error", "message", "marker"), BAD)
def test_errors_name_the_file_line_and_image(tmp_path: Path, images: str, error: type,
                                             message: str, marker: str) -> None:
    xml = write_cvat(tmp_path, "\n  " + images)
    line = next(n for n, text in enumerate(xml.read_text().splitlines(), start=1)
                if marker in text)
    with pytest.raises(error) as err:
        import_cvat(xml)
    assert type(err.value) is error and message in err.value.message
    assert err.value.detail["line"] == line and f"line {line}" in err.value.message


def test_entities_and_other_roots_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x "xxxxxxxx">\n'
                    '<!ENTITY y "&x;&x;&x;&x;">]>\n<annotations>&y;</annotations>\n')
    with pytest.raises(ValidationError, match="declares XML entities"):
        import_cvat(bomb)
    voc = tmp_path / "voc.xml"
    voc.write_text("<annotation><filename>a.jpg</filename></annotation>")
    with pytest.raises(ValidationError, match=r"root <annotation>, expected <annotations>"):
        import_cvat(voc)


# --- export and round trips ---------------------------------------------------------


def test_round_trip_keeps_every_object_attribute_and_flag(tmp_path: Path) -> None:
    xml = write_cvat(tmp_path / "in")
    first = import_cvat(xml)
    (tmp_path / "out").mkdir()
    out = export_cvat(first.items, first.annotations, tmp_path / "out",
                      categories=first.info["cvat"]["labels"])
    assert out == tmp_path / "out" / "annotations.xml"
    second = import_cvat(out, images_dir=tmp_path / "in")
    assert comparable(second.annotations) == comparable(first.annotations)
    assert comparable(second.items) == comparable(first.items)
    assert second.info == first.info and second.categories == first.categories
    assert second.warnings == []
    # The written XML says the same as the source XML, element by element.
    original = [o for o in expected_objects(xml.read_text())]
    assert_same_objects(expected_objects(out.read_text()), original)
    root = ET.parse(out).getroot()
    assert root.findtext("version") == "1.1"
    assert [e.findtext("name") for e in root.iterfind("meta/task/labels/label")] == \
        first.categories
    assert root.find("image").attrib == {"id": "0", "name": "a.jpg", "width": "64",
                                         "height": "48", "subset": "train"}
    assert root.find("image/mask").get("rle") == "2, 3, 4, 3"


def test_export_without_categories_infers_attribute_specs(tmp_path: Path) -> None:
    items = [DatasetItem(image_location=None, reference_id="a.jpg", width=40, height=30)]
    anns = [
        BoxAnnotation("car", 1, 2, 3, 4, reference_id="a.jpg", annotation_id="b1",
                      metadata={"attributes": {"speed": 2.25, "parked": False, "n": 3,
                                               "note": "x"}}),
        BoxAnnotation("car", 5, 2, 3, 4, reference_id="a.jpg", annotation_id="b2",
                      metadata={"attributes": {"speed": 10, "parked": True, "n": 4,
                                               "note": "y"}}),
    ]
    out = export_cvat(items, anns, tmp_path / "a" / "labels.xml")
    specs = {a.findtext("name"): (a.findtext("input_type"), a.findtext("values"))
             for a in ET.parse(out).getroot().iterfind("meta/task/labels/label/attributes/"
                                                        "attribute")}
    assert specs == {"speed": ("number", "2\n10\n0.01"), "parked": ("checkbox", "false"),
                     "n": ("number", "3\n4\n1"), "note": ("text", "")}
    again = import_cvat(out)
    assert [a.metadata["attributes"] for a in again.annotations] == [
        a.metadata["attributes"] for a in anns]
    assert all(a.metadata["occluded"] is False for a in again.annotations)


def test_export_from_coco_groups_parts_and_keeps_masks_exact(tmp_path: Path) -> None:
    items = [DatasetItem(image_location=None, reference_id="a.jpg", width=12, height=10)]
    pixels = np.zeros((10, 12), dtype=bool)
    pixels[2:5, 3:9] = True
    pixels[7, 0] = True
    anns = [
        BoxAnnotation("cat", 1, 1, 4, 4, reference_id="a.jpg", annotation_id="17"),
        PolygonAnnotation("cat", [Point(1, 1), Point(5, 1), Point(5, 5)],
                          reference_id="a.jpg", annotation_id="17/polygon"),
        MaskAnnotation("dog", pixels, reference_id="a.jpg", annotation_id="18/mask"),
        MaskAnnotation("dog", np.zeros((10, 12), bool), reference_id="a.jpg",
                       annotation_id="19/mask"),
    ]
    coco = import_coco_from(tmp_path, items, anns)
    out = export_cvat(coco.items, coco.annotations, tmp_path / "cvat.xml")
    image = ET.parse(out).getroot().find("image")
    # COCO gives each mask a box too: both parts of one record share a group.
    assert [(e.tag, e.get("group_id")) for e in image] == [
        ("box", "1"), ("polygon", "1"), ("box", "2"), ("mask", "2"), ("box", "3"),
        ("mask", "3")]
    assert image[5].attrib["rle"] == "1" and image[5].attrib["width"] == "1"
    back = import_cvat(out)
    assert np.array_equal(rle_decode(back.annotations[3].mask), pixels)
    assert not rle_decode(back.annotations[5].mask).any()
    assert back.categories == ["cat", "dog"]


def test_a_loose_mask_box_comes_back_tight_with_the_same_pixels(tmp_path: Path) -> None:
    images = """
  <image id="0" name="a.jpg" width="10" height="10">
    <mask label="person" occluded="0" rle="5, 1, 6" left="2" top="3" width="4" height="3"/>
  </image>"""
    first = import_cvat(write_cvat(tmp_path / "in", images))
    out = export_cvat(first.items, first.annotations, tmp_path / "out.xml")
    assert ET.parse(out).getroot().find("image/mask").attrib == {
        "label": "person", "occluded": "0", "rle": "0, 1", "left": "3", "top": "4",
        "width": "1", "height": "1"}
    assert import_cvat(out).annotations[0].mask == first.annotations[0].mask


def import_coco_from(tmp_path: Path, items: list, anns: list):
    """The objects through a COCO file, so they carry COCO's part ids and fields."""
    import json

    path = tmp_path / "coco.json"
    path.write_text(json.dumps(export_coco(items, anns)))
    return import_coco(path)


def test_export_refuses_what_cvat_cannot_hold(tmp_path: Path) -> None:
    items = [DatasetItem(image_location=None, reference_id="a.jpg", width=12, height=10)]
    hidden = KeypointsAnnotation("pose", [Keypoint(1, 1), Keypoint(2, 2, False)],
                                 reference_id="a.jpg", annotation_id="k")
    with pytest.raises(ValidationError, match="point 1 is not visible"):
        export_cvat(items, [hidden], tmp_path / "x.xml")
    odd = BoxAnnotation("car", 1, 1, 2, 2, reference_id="a.jpg", metadata={"z_order": "top"})
    with pytest.raises(ValidationError, match="'z_order' must be an integer"):
        export_cvat(items, [odd], tmp_path / "x.xml")
    stray = BoxAnnotation("car", 1, 1, 2, 2, reference_id="b.jpg")
    with pytest.raises(ValidationError, match="unknown item 'b.jpg'"):
        export_cvat(items, [stray], tmp_path / "x.xml")
    with pytest.raises(DuplicateIdError, match="appears twice"):
        export_cvat(items * 2, [], tmp_path / "x.xml")
