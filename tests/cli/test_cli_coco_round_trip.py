"""COCO through the catalog and back (``ocula import coco`` → ``ocula export``): the
source's categories and ids and every object survive, on SQLite and PostgreSQL; what the
importer refuses or reads differently is said clearly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from ocula import io
from ocula.cli.main import app
from ocula.errors import ValidationError

runner = CliRunner()


def _cli(tmp_path: Path, database_url: str, *args: str):
    return runner.invoke(app, [*args, "--home", str(tmp_path / "home"),
                               "--database-url", database_url])


def _source(tmp_path: Path, *, zero_based_ids: bool = False) -> dict[str, Any]:
    """A person-keypoints-and-instances file whose categories are not in name order, with
    an unused category, supercategories, a skeleton, crowd RLE and a multi-part polygon."""
    human, car = (0, 1) if zero_based_ids else (1, 2)
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    for name, size in (("b.png", (64, 48)), ("a.png", (50, 40))):
        Image.new("RGB", size, (20, 90, 200)).save(images / name)
    return {
        "info": {"description": "round trip"},
        "images": [{"id": 907, "file_name": "b.png", "width": 64, "height": 48},
                   {"id": 12, "file_name": "a.png", "width": 50, "height": 40}],
        "categories": [
            {"id": human, "name": "human", "supercategory": "person",
             "keypoints": ["head", "hand", "foot"], "skeleton": [[1, 2], [2, 3]]},
            {"id": car, "name": "car", "supercategory": "vehicle"},
            {"id": 5, "name": "bike", "supercategory": "vehicle"},  # never used
        ],
        "annotations": [
            {"id": 31, "image_id": 907, "category_id": car, "bbox": [2, 3, 20, 10],
             "area": 150.5, "iscrowd": 0,
             "segmentation": [[2, 3, 22, 3, 22, 13], [30, 30, 40, 30, 40, 40]]},
            {"id": 7, "image_id": 12, "category_id": human, "bbox": [5, 5, 20, 30],
             "area": 400, "iscrowd": 0, "segmentation": [[5, 5, 25, 5, 25, 35, 5, 35]],
             "keypoints": [10, 8, 2, 12, 20, 1, 0, 0, 0], "num_keypoints": 2},
            {"id": 8, "image_id": 12, "category_id": car, "bbox": [0, 0, 10, 10],
             "area": 60, "iscrowd": 1,
             "segmentation": {"size": [40, 50], "counts": [0, 10, 30, 10, 1950]}},
            # Ground truth made by a model carries its score; it stays ground truth.
            {"id": 9, "image_id": 907, "category_id": human, "bbox": [40, 20, 10, 12],
             "area": 120, "iscrowd": 0, "score": 0.75},
        ],
    }


def _objects(coco: dict[str, Any]) -> list[tuple]:
    keep = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation",
            "keypoints", "num_keypoints", "score")
    return sorted((a["id"], json.dumps({k: a.get(k) for k in keep}, sort_keys=True))
                  for a in coco["annotations"])


@pytest.mark.parametrize("zero_based_ids", [False, True])
def test_import_export_keeps_categories_ids_and_objects(database_url, tmp_path,
                                                        zero_based_ids) -> None:
    source = _source(tmp_path, zero_based_ids=zero_based_ids)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(source))
    result = _cli(tmp_path, database_url, "import", "coco", str(gt), "--images",
                  str(tmp_path / "images"), "--dataset", "rt")
    assert result.exit_code == 0, result.output
    assert "carry a 'score'; imported as ground truth" in result.output
    out = tmp_path / "out.json"
    result = _cli(tmp_path, database_url, "export", "rt", str(out))
    assert result.exit_code == 0, result.output
    back = json.loads(out.read_text())
    assert back["categories"] == source["categories"]
    assert back["info"] == source["info"]
    assert sorted((i["id"], i["file_name"]) for i in back["images"]) == [
        (12, "a.png"), (907, "b.png")]
    expected = json.loads(json.dumps(source))
    for ann in expected["annotations"]:
        if isinstance(ann.get("segmentation"), list) and len(ann["segmentation"]) > 1:
            # A multi-part polygon is kept as the mask pycocotools makes of it.
            from pycocotools import mask as mask_utils

            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], 48, 64))
            ann["segmentation"] = _uncompressed(mask_utils.decode(rle))
    assert _objects(back) == _objects(expected)


def _uncompressed(bitmap: Any) -> dict[str, Any]:
    import numpy as np

    flat = bitmap.reshape(-1, order="F")
    changes = np.flatnonzero(np.diff(np.concatenate(([0], flat, [1 - flat[-1]]))))
    counts = np.diff(np.concatenate(([0], changes))).tolist()
    return {"size": list(bitmap.shape), "counts": [int(c) for c in counts]}


def test_zero_based_skeleton_is_kept_with_a_warning(tmp_path) -> None:
    source = _source(tmp_path)
    source["categories"][0]["skeleton"] = [[0, 1], [1, 2]]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(source))
    data = io.import_coco(gt, tmp_path / "images")
    [kps] = [a for a in data.annotations if a.type == "keypoints"]
    assert kps.skeleton == [[0, 1], [1, 2]]
    assert any("skeleton uses index 0, read as 0-based" in w for w in data.warnings)
    # COCO's own 1-based skeleton becomes 0-based without a word.
    source["categories"][0]["skeleton"] = [[1, 2], [2, 3]]
    gt.write_text(json.dumps(source))
    data = io.import_coco(gt, tmp_path / "images")
    [kps] = [a for a in data.annotations if a.type == "keypoints"]
    assert kps.skeleton == [[0, 1], [1, 2]] and not any("skeleton" in w for w in data.warnings)


@pytest.mark.parametrize(("record", "flavour"), [
    ({"image_id": 12, "file_name": "a.png", "segments_info": []}, "panoptic"),
    ({"id": 1, "image_id": 12, "caption": "a car"}, "captions"),
])
def test_other_coco_flavours_are_refused_by_name(tmp_path, record, flavour) -> None:
    source = _source(tmp_path)
    source["annotations"] = [record]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(source))
    with pytest.raises(ValidationError, match=f"COCO {flavour} file.*not supported"):
        io.import_coco(gt, tmp_path / "images")
