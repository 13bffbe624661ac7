"""Lines and multicategory annotations in the file formats, through a catalog on both
databases: CVAT ``<polyline>`` both ways (a dataset's lines exported, imported into a
second dataset, equal), a multicategory as one ``<tag>`` per label, and COCO leaving
both out."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ocula import (
    BoxAnnotation,
    DatasetItem,
    LineAnnotation,
    MultiCategoryAnnotation,
    Point,
)
from ocula.client.client import Client
from ocula.errors import GeometryError
from ocula.io import export_cvat, import_cvat
from tests.conftest import make_images


def _dataset(client: Client, tmp_path: Path) -> object:
    ds = client.create_dataset("lines")
    paths = make_images(tmp_path / "imgs", 2, size=(120, 90))
    ds.append([DatasetItem(str(p), p.name) for p in paths])
    ds.annotate([
        LineAnnotation("lane", [Point(1.5, 2), Point(60, 40.25), Point(119, 3)], "img_0000.jpg",
                       annotation_id="l", metadata={"occluded": True, "z_order": 2,
                                                    "attributes": {"dashed": True}}),
        LineAnnotation("kerb", [(0, 80), (100, 80)], "img_0001.jpg", annotation_id="k"),
        BoxAnnotation("car", 10, 10, 20, 15, "img_0001.jpg", annotation_id="b"),
        MultiCategoryAnnotation(["day", "urban"], "img_0000.jpg", metadata={"source": "x"}),
    ])
    return ds


def test_cvat_round_trip_of_lines(client: Client, tmp_path: Path) -> None:
    ds = _dataset(client, tmp_path)
    out = tmp_path / "annotations.xml"
    ds.export_cvat(out)
    root = ET.parse(out).getroot()
    [first, second] = root.findall("image")
    [poly] = first.findall("polyline")
    assert (poly.get("label"), poly.get("points"), poly.get("occluded"),
            poly.get("z_order")) == ("lane", "1.5,2;60,40.25;119,3", "1", "2")
    assert [a.text for a in poly.findall("attribute")] == ["true"]
    assert sorted(t.get("label") for t in first.findall("tag")) == ["day", "urban"]
    assert [p.get("points") for p in second.findall("polyline")] == ["0,80;100,80"]

    data = import_cvat(out, tmp_path / "imgs")
    assert data.warnings == []
    lines = [a for a in data.annotations if a.type == "line"]
    assert [(a.label, [(v.x, v.y) for v in a.vertices]) for a in lines] == [
        ("lane", [(1.5, 2), (60, 40.25), (119, 3)]), ("kerb", [(0, 80), (100, 80)])]
    assert lines[0].metadata == {"occluded": True, "z_order": 2,
                                 "attributes": {"dashed": True}}
    tags = [a for a in data.annotations if a.type == "category"]
    assert [(a.label, a.metadata) for a in tags] == [("day", {"source": "x"}),
                                                    ("urban", {"source": "x"})]
    # Into a second dataset of the same catalog, and back out: the same file.
    copy = client.create_dataset("copy")
    copy.append(data.items)
    copy.annotate(data.annotations)
    again = tmp_path / "again.xml"
    copy.export_cvat(again)
    polylines = [(p.get("label"), p.get("points"))
                 for p in ET.parse(again).getroot().iter("polyline")]
    assert polylines == [("lane", "1.5,2;60,40.25;119,3"), ("kerb", "0,80;100,80")]
    assert [a.type for a in copy.query_objects("shape = line")] == ["line", "line"]


def test_cvat_import_refuses_a_one_point_polyline(tmp_path: Path) -> None:
    xml = tmp_path / "annotations.xml"
    xml.write_text('<?xml version="1.0"?><annotations><version>1.1</version>'
                   '<image id="0" name="a.jpg" width="10" height="10">'
                   '<polyline label="x" occluded="0" points="1,1"/></image></annotations>')
    with pytest.raises(GeometryError, match=r"<polyline> needs at least 2 point\(s\)"):
        import_cvat(xml)


def test_coco_export_leaves_lines_and_multicategory_out(client: Client,
                                                        tmp_path: Path) -> None:
    ds = _dataset(client, tmp_path)
    out = tmp_path / "coco.json"
    ds.export_coco(out)
    coco = json.loads(out.read_text())
    assert [c["name"] for c in coco["categories"]] == ["car"]
    assert len(coco["annotations"]) == 1 and coco["annotations"][0]["bbox"] == [10, 10, 20, 15]


def test_export_cvat_function_takes_lines_directly(tmp_path: Path) -> None:
    items = [DatasetItem("a.jpg", "a.jpg", width=50, height=40)]
    out = export_cvat(items, [LineAnnotation("l", [(1, 1), (2, 2)], "a.jpg")], tmp_path)
    assert 'points="1,1;2,2"' in out.read_text()
