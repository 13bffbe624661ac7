"""Penn-Fudan import/export (instance-map PNG masks), plus the format registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ocula.io
from ocula.core.masks import rle_decode
from ocula.core.types import BoxAnnotation, MaskAnnotation
from ocula.errors import GeometryError, ImageError, NotFoundError
from ocula.io import export_coco, export_pennfudan, import_coco, import_pennfudan
from tests.io.helpers import comparable, write_image

W, H = 60, 40


def instance_maps() -> dict[str, np.ndarray]:
    first = np.zeros((H, W), np.uint8)
    first[5:35, 3:15] = 1
    first[10:38, 20:31] = 2
    first[0:12, 50:60] = 3  # touches the image border
    second = np.zeros((H, W), np.uint8)
    second[2:20, 10:40] = 1
    return {"FudanPed00001": first, "PennPed00002": second}


def make_pennfudan(root: Path, *, mode: str = "L") -> Path:
    for i, (stem, instances) in enumerate(instance_maps().items()):
        write_image(root / "PNGImages" / f"{stem}.png", (W, H), seed=i)
        (root / "PedMasks").mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(instances)
        if mode == "P":
            img = img.convert("P")
        img.save(root / "PedMasks" / f"{stem}_mask.png")
    return root


@pytest.mark.parametrize("mode", ["L", "P"])
def test_import(tmp_path, mode):
    data = import_pennfudan(make_pennfudan(tmp_path / "PennFudanPed", mode=mode))
    assert [i.reference_id for i in data.items] == ["FudanPed00001.png", "PennPed00002.png"]
    assert (data.items[0].width, data.items[0].height) == (W, H)
    assert data.categories == ["pedestrian"]
    assert [a.annotation_id for a in data.annotations] == [
        "FudanPed00001/1", "FudanPed00001/1/mask", "FudanPed00001/2", "FudanPed00001/2/mask",
        "FudanPed00001/3", "FudanPed00001/3/mask", "PennPed00002/1", "PennPed00002/1/mask"]
    boxes = [a for a in data.annotations if isinstance(a, BoxAnnotation)]
    masks = [a for a in data.annotations if isinstance(a, MaskAnnotation)]
    assert [b.bbox() for b in boxes] == [(3, 5, 12, 30), (20, 10, 11, 28), (50, 0, 10, 12),
                                         (10, 2, 30, 18)]
    expected = instance_maps()
    for k, mask in enumerate(masks[:3], start=1):
        assert np.array_equal(rle_decode(mask.mask), expected["FudanPed00001"] == k)
    assert all(a.label == "pedestrian" for a in data.annotations)


def test_round_trip(tmp_path):
    data = import_pennfudan(make_pennfudan(tmp_path / "PennFudanPed"))
    out = export_pennfudan(data.items, data.annotations, tmp_path / "out")
    written = np.asarray(Image.open(out / "PedMasks" / "FudanPed00001_mask.png"))
    assert np.array_equal(written, instance_maps()["FudanPed00001"])
    again = import_pennfudan(out)
    assert comparable(again.items, drop_location=True) == comparable(data.items,
                                                                     drop_location=True)
    assert comparable(again.annotations) == comparable(data.annotations)


def test_round_trip_through_coco(tmp_path):
    data = import_pennfudan(make_pennfudan(tmp_path / "PennFudanPed"))
    coco = export_coco(data.items, data.annotations)
    assert len(coco["annotations"]) == 4  # box and mask of a pedestrian share one record
    assert coco["annotations"][0]["bbox"] == [3, 5, 12, 30]
    path = tmp_path / "pf.json"
    path.write_text(json.dumps(coco))
    again = import_coco(path, tmp_path / "PennFudanPed" / "PNGImages")
    strip = [{k: v for k, v in body.items() if k not in ("annotation_id", "area")}
             for body in comparable(again.annotations)]
    assert strip == [{k: v for k, v in body.items() if k != "annotation_id"}
                     for body in comparable(data.annotations)]


def test_missing_mask_warns_and_size_mismatch_raises(tmp_path):
    root = make_pennfudan(tmp_path / "PennFudanPed")
    (root / "PedMasks" / "PennPed00002_mask.png").unlink()
    data = import_pennfudan(root)
    assert len(data.items) == 2 and "no mask" in data.warnings[0]
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "PedMasks" / "PennPed00002_mask.png")
    with pytest.raises(GeometryError, match="PennPed00002_mask.png is 10x10") as err:
        import_pennfudan(root)
    assert err.value.reference_id == "PennPed00002.png"


def test_bad_inputs(tmp_path):
    with pytest.raises(NotFoundError):
        import_pennfudan(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(NotFoundError, match="PNGImages"):
        import_pennfudan(tmp_path / "x")
    root = make_pennfudan(tmp_path / "PennFudanPed")
    write_image(root / "PedMasks" / "FudanPed00001_mask.png", (W, H))  # RGB, not a map
    with pytest.raises(ImageError, match="single-channel"):
        import_pennfudan(root)
    (root / "PedMasks" / "FudanPed00001_mask.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="cannot read mask"):
        import_pennfudan(root)


def test_registry(tmp_path):
    assert set(ocula.io.REGISTRY) == {"coco", "voc", "yolo", "pennfudan", "cvat"}
    assert set(ocula.io.EXPORTERS) == set(ocula.io.REGISTRY)
    root = make_pennfudan(tmp_path / "PennFudanPed")
    data = ocula.io.REGISTRY["pennfudan"](root)
    for name, exporter in ocula.io.EXPORTERS.items():
        target = tmp_path / "out" / (name + (".json" if name == "coco" else ""))
        assert Path(exporter(data.items, data.annotations, target)).exists()
    again = ocula.io.REGISTRY["coco"](tmp_path / "out" / "coco.json")
    assert len(again.items) == 2
    assert len(ocula.io.REGISTRY["voc"](tmp_path / "out" / "voc").annotations) == 4
    assert len(ocula.io.REGISTRY["yolo"](tmp_path / "out" / "yolo").annotations) == 4
