"""COCO import/export: geometry kinds, ids, round trips, results files, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocula.core.masks import encode_counts_string, rle_decode, rle_encode
from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    KeypointsAnnotation,
    MaskAnnotation,
    PolygonAnnotation,
)
from ocula.errors import (
    DuplicateIdError,
    GeometryError,
    ImageError,
    NotFoundError,
    ValidationError,
)
from ocula.io import (
    export_coco,
    export_coco_results,
    import_coco,
    import_coco_results,
    save_coco,
)
from tests.io.helpers import comparable, write_image

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CROWD = np.zeros((30, 40), bool)
CROWD[5:12, 20:35] = True
COMPRESSED = np.zeros((30, 40), bool)
COMPRESSED[15:25, 2:9] = True


def coco_dict() -> dict[str, Any]:
    """A small COCO file exercising every geometry the importer understands."""
    return {
        "info": {"description": "test", "year": 2024},
        "licenses": [{"id": 1, "name": "CC-BY"}],
        "images": [
            {"id": 5, "file_name": "a.jpg", "width": 40, "height": 30, "license": 1,
             "date_captured": "2024-01-01"},
            {"id": 9, "file_name": "sub/b.jpg", "width": 40, "height": 30},
            {"id": 11, "file_name": "empty.jpg", "width": 40, "height": 30},
        ],
        "categories": [
            {"id": 7, "name": "person", "supercategory": "human",
             "keypoints": ["nose", "left_eye", "right_eye"], "skeleton": [[1, 2], [1, 3]]},
            {"id": 2, "name": "car", "supercategory": "vehicle"},
        ],
        "annotations": [
            {"id": 100, "image_id": 5, "category_id": 2, "bbox": [1.5, 2, 10, 5.25],
             "area": 52.5, "iscrowd": 0, "occluded": True},
            {"id": 101, "image_id": 5, "category_id": 7, "bbox": [20, 3, 10, 12], "area": 60.0,
             "iscrowd": 0, "segmentation": [[20, 3, 30, 3, 30, 15, 20, 15]],
             "keypoints": [22, 5, 2, 24, 6, 1, 0, 0, 0], "num_keypoints": 2},
            {"id": 102, "image_id": 9, "category_id": 2, "bbox": [0, 0, 20, 20], "area": 80,
             "iscrowd": 0,
             "segmentation": [[0, 0, 8, 0, 8, 8, 0, 8], [12, 12, 20, 12, 20, 20, 12, 20]]},
            {"id": 103, "image_id": 9, "category_id": 7, "bbox": [20, 5, 15, 7],
             "area": float(CROWD.sum()), "iscrowd": 1, "segmentation": rle_encode(CROWD)},
            {"id": 104, "image_id": 9, "category_id": 2, "bbox": [2, 15, 7, 10],
             "area": float(COMPRESSED.sum()), "iscrowd": 0,
             "segmentation": {"size": [30, 40],
                              "counts": encode_counts_string(rle_encode(COMPRESSED)["counts"])}},
        ],
    }


def write_coco(tmp_path: Path, data: dict[str, Any] | None = None, *,
               images: bool = True) -> Path:
    data = coco_dict() if data is None else data
    if images:
        for i, img in enumerate(data["images"]):
            write_image(tmp_path / "images" / img["file_name"], (40, 30), seed=i)
    path = tmp_path / "annotations" / "instances.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def by_id(objs: list[Any]) -> dict[str, Any]:
    return {o.annotation_id: o for o in objs}


def test_import_items_and_categories(tmp_path):
    path = write_coco(tmp_path)
    data = import_coco(path, tmp_path / "images")
    assert [i.reference_id for i in data.items] == ["a.jpg", "sub/b.jpg", "empty.jpg"]
    first = data.items[0]
    assert first.image_location == str((tmp_path / "images" / "a.jpg").absolute())
    assert Path(first.image_location).is_file()
    assert (first.width, first.height) == (40, 30)
    assert first.metadata == {"coco_id": 5, "license": 1, "date_captured": "2024-01-01"}
    assert data.categories == ["person", "car"]  # source order
    assert data.info["coco"]["categories"][0]["supercategory"] == "human"
    assert data.info["coco"]["info"]["year"] == 2024
    assert data.predictions == [] and data.warnings == []


def test_import_geometries(tmp_path):
    data = import_coco(write_coco(tmp_path), tmp_path / "images")
    anns = by_id(data.annotations)
    assert sorted(anns) == ["100", "101", "101/keypoints", "101/polygon", "102", "102/mask",
                            "103", "103/mask", "104", "104/mask"]
    box = anns["100"]
    assert isinstance(box, BoxAnnotation)
    assert (box.x, box.y, box.width, box.height, box.area) == (1.5, 2.0, 10.0, 5.25, 52.5)
    assert box.label == "car" and box.reference_id == "a.jpg"
    assert box.metadata == {"occluded": True}

    poly = anns["101/polygon"]
    assert isinstance(poly, PolygonAnnotation)
    assert [(v.x, v.y) for v in poly.vertices] == [(20, 3), (30, 3), (30, 15), (20, 15)]
    assert poly.area == 60.0 and anns["101"].bbox() == (20, 3, 10, 12)

    kps = anns["101/keypoints"]
    assert isinstance(kps, KeypointsAnnotation)
    assert kps.names == ["nose", "left_eye", "right_eye"]
    assert kps.skeleton == [[0, 1], [0, 2]]  # 0-based
    assert [(k.x, k.y, k.visible) for k in kps.keypoints] == [
        (22, 5, True), (24, 6, False), (None, None, False)]

    multi = anns["102/mask"]  # two polygons -> rasterised mask, COCO's area kept
    assert isinstance(multi, MaskAnnotation) and multi.area == 80
    pixels = rle_decode(multi.mask)
    assert pixels[4, 4] and pixels[16, 16] and not pixels[10, 10]

    crowd = anns["103/mask"]
    assert crowd.iscrowd and anns["103"].iscrowd
    assert np.array_equal(rle_decode(crowd.mask), CROWD)
    assert np.array_equal(rle_decode(anns["104/mask"].mask), COMPRESSED)


def test_multipart_polygon_matches_pycocotools(tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    path = write_coco(tmp_path)
    data = import_coco(path, tmp_path / "images")
    api = coco_api.COCO(str(path))
    expected = api.annToMask(api.anns[102]).astype(bool)
    assert np.array_equal(rle_decode(by_id(data.annotations)["102/mask"].mask), expected)


def test_compressed_rle_from_pycocotools(tmp_path):
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(3)
    mask = rng.random((30, 40)) < 0.3
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    data = coco_dict()
    data["annotations"][4]["segmentation"] = {"size": [30, 40],
                                              "counts": encoded["counts"].decode()}
    imported = import_coco(write_coco(tmp_path, data), tmp_path / "images")
    assert np.array_equal(rle_decode(by_id(imported.annotations)["104/mask"].mask), mask)


def test_round_trip(tmp_path):
    data = import_coco(write_coco(tmp_path), tmp_path / "images")
    exported = export_coco(data.items, data.annotations,
                           categories=data.info["coco"]["categories"],
                           info=data.info["coco"]["info"], licenses=data.info["coco"]["licenses"])
    assert [a["id"] for a in exported["annotations"]] == [100, 101, 102, 103, 104]
    assert [i["id"] for i in exported["images"]] == [5, 9, 11]
    assert exported["categories"] == coco_dict()["categories"]
    rec = exported["annotations"][1]  # box + polygon + keypoints merged back
    assert rec["segmentation"] == [[20, 3, 30, 3, 30, 15, 20, 15]]
    assert rec["keypoints"] == [22, 5, 2, 24, 6, 1, 0, 0, 0] and rec["num_keypoints"] == 2
    assert exported["annotations"][0]["occluded"] is True
    out = tmp_path / "out" / "instances.json"
    out.parent.mkdir()
    out.write_text(json.dumps(exported))
    again = import_coco(out, tmp_path / "images")
    assert comparable(again.items) == comparable(data.items)
    assert comparable(again.annotations) == comparable(data.annotations)
    assert again.categories == data.categories
    assert json.loads(out.read_text())["info"] == {"description": "test", "year": 2024}


def test_export_loads_in_pycocotools(tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    data = import_coco(write_coco(tmp_path), tmp_path / "images")
    out = save_coco(data.items, data.annotations, tmp_path / "out.json")
    api = coco_api.COCO(str(out))
    for ann in data.annotations:
        if isinstance(ann, MaskAnnotation):
            rec = next(a for a in api.anns.values() if a["bbox"] == list(
                by_id(data.annotations)[ann.annotation_id.split("/")[0]].bbox()))
            assert np.array_equal(api.annToMask(rec).astype(bool), rle_decode(ann.mask))


def test_export_default_numbering_and_fresh_annotations(tmp_path):
    items = [DatasetItem(image_location=str(write_image(tmp_path / "x.png", (16, 12))),
                         reference_id="x.png")]
    anns = [BoxAnnotation("zebra", 1, 1, 2, 2, reference_id="x.png", annotation_id="b"),
            BoxAnnotation("ant", 0, 0, 3, 4, reference_id="x.png"),
            MaskAnnotation("ant", np.eye(12, 16, dtype=bool), reference_id="x.png")]
    out = export_coco(items, anns)
    assert out["categories"] == [{"id": 1, "name": "ant"}, {"id": 2, "name": "zebra"}]
    assert out["images"] == [{"id": 1, "file_name": "x.png", "width": 16, "height": 12}]
    assert [a["id"] for a in out["annotations"]] == [1, 2, 3]
    assert out["annotations"][1]["area"] == 12  # computed when unknown
    assert out["annotations"][2]["area"] == 12 and out["annotations"][2]["bbox"] == [0, 0, 12, 12]
    listed = export_coco(items, anns, categories=["zebra"])
    assert listed["categories"] == [{"id": 1, "name": "zebra"}, {"id": 2, "name": "ant"}]


def test_kinds_restriction(tmp_path):
    path = write_coco(tmp_path)
    boxes = import_coco(path, tmp_path / "images", kinds={"box"})
    assert {a.type for a in boxes.annotations} == {"box"} and len(boxes.annotations) == 5
    polys = import_coco(path, tmp_path / "images", kinds=["polygon"])
    assert [a.annotation_id for a in polys.annotations] == ["101/polygon"]
    assert len(polys.warnings) == 3  # multi-part polygon + two RLE masks skipped
    with pytest.raises(ValidationError, match="unknown annotation kinds"):
        import_coco(path, kinds=["cuboid"])


def test_size_read_from_image_when_missing(tmp_path):
    data = coco_dict()
    del data["images"][0]["width"], data["images"][0]["height"]
    write_coco(tmp_path, data)
    write_image(tmp_path / "images" / "a.jpg", (41, 31))
    imported = import_coco(tmp_path / "annotations" / "instances.json", tmp_path / "images")
    assert (imported.items[0].width, imported.items[0].height) == (41, 31)
    (tmp_path / "images" / "a.jpg").unlink()
    with pytest.raises(ImageError) as err:
        import_coco(tmp_path / "annotations" / "instances.json", tmp_path / "images")
    assert err.value.reference_id == "a.jpg"


def test_default_images_dir_is_json_folder(tmp_path):
    path = write_coco(tmp_path, images=False)
    data = import_coco(path)
    assert data.items[0].image_location == str((path.parent / "a.jpg").absolute())


def results_list() -> list[dict[str, Any]]:
    mask = np.zeros((30, 40), bool)
    mask[3:9, 4:12] = True
    return [
        {"image_id": 5, "category_id": 2, "bbox": [1, 2, 10, 5], "score": 0.9},
        {"image_id": 9, "category_id": 7, "bbox": [4, 3, 8, 6], "score": 0.5,
         "segmentation": {"size": [30, 40],
                          "counts": encode_counts_string(rle_encode(mask)["counts"])}},
        {"image_id": 5, "category_id": 7, "score": 0.7,
         "keypoints": [22, 5, 0.8, 24, 6, 0.3, 25, 7, 0.0]},
    ]


def test_import_results(tmp_path):
    gt_path = write_coco(tmp_path)
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results_list()))
    preds = import_coco_results(res, gt_path)
    assert [(p.type, p.annotation_id, p.reference_id, p.label, p.confidence) for p in preds] == [
        ("box", "1", "a.jpg", "car", 0.9),
        ("box", "2", "sub/b.jpg", "person", 0.5),
        ("mask", "2/mask", "sub/b.jpg", "person", 0.5),
        # loadRes gives a keypoint result the box of its points' extent
        ("box", "3", "a.jpg", "person", 0.7),
        ("keypoints", "3/keypoints", "a.jpg", "person", 0.7),
    ]
    assert isinstance(preds[0], BoxPrediction)
    assert [k.visible for k in preds[4].keypoints] == [True, True, False]
    # the same through an ImportedData, and through a COCO dict
    gt = import_coco(gt_path, tmp_path / "images")
    assert comparable(import_coco_results(res, gt)) == comparable(preds)
    assert comparable(import_coco_results(res, coco_dict())) == comparable(preds)


def test_results_round_trip_and_loadres(tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    gt_path = write_coco(tmp_path)
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results_list()[:2]))
    gt = import_coco(gt_path, tmp_path / "images")
    preds = import_coco_results(res, gt)
    out = export_coco_results(gt.items, preds, categories=gt.info["coco"]["categories"])
    assert [(r["image_id"], r["category_id"], r["score"]) for r in out] == [
        (5, 2, 0.9), (9, 7, 0.5)]
    assert "segmentation" in out[1] and "id" not in out[0]
    res2 = tmp_path / "results2.json"
    res2.write_text(json.dumps(out))
    assert comparable(import_coco_results(res2, gt)) == comparable(preds)
    api = coco_api.COCO(str(gt_path))
    loaded = api.loadRes(str(res2))
    assert len(loaded.anns) == 2


def test_predictions_in_instances_file(tmp_path):
    data = import_coco(write_coco(tmp_path), tmp_path / "images")
    preds = import_coco_results(write_results(tmp_path), data)
    exported = export_coco(data.items, data.annotations, preds,
                           categories=data.info["coco"]["categories"])
    path = tmp_path / "both.json"
    path.write_text(json.dumps(exported))
    again = import_coco(path, tmp_path / "images", scored="predictions")
    assert comparable(again.annotations) == comparable(data.annotations)
    assert [(p.type, p.label, p.confidence) for p in again.predictions] == [
        (p.type, p.label, p.confidence) for p in preds]


def write_results(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results_list()))
    return path


# --- errors ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(NotFoundError, match="not found"):
        import_coco(tmp_path / "nope.json")


def test_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(ValidationError, match="not valid JSON.*line 2") as err:
        import_coco(path)
    assert err.value.detail["line"] == 2


def test_not_an_instances_file(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(ValidationError, match="not a COCO instances file"):
        import_coco(path)


def _broken(tmp_path: Path, **changes: Any) -> Path:
    data = coco_dict()
    data["annotations"][0].update(changes)
    return write_coco(tmp_path, data, images=False)


def test_unknown_image_and_category_are_left_out_with_a_warning(tmp_path):
    # pycocotools never evaluates them; importing them would change the numbers.
    data = import_coco(_broken(tmp_path, image_id=77))
    assert "100" not in {a.annotation_id for a in data.annotations}
    assert any("image ids the ground truth does not list (e.g. 77)" in w for w in data.warnings)
    data = import_coco(_broken(tmp_path, category_id=3))
    assert "100" not in {a.annotation_id for a in data.annotations}
    assert any("category ids the ground truth does not list (e.g. 3)" in w
               for w in data.warnings)


def test_image_ids_of_another_type_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="image_id '5' .*listed with id 5"):
        import_coco(_broken(tmp_path, image_id="5"))


@pytest.mark.parametrize("bbox", [[1, 2, 3], [1, 2, -3, 4], ["1", 2, 3, 4], [1, 2, math.nan, 4],
                                  "0 0 1 1", [True, 0, 1, 1]])
def test_malformed_bbox(tmp_path, bbox):
    with pytest.raises(GeometryError, match="annotation 100: bbox") as err:
        import_coco(_broken(tmp_path, bbox=bbox))
    assert err.value.reference_id == "a.jpg"


@pytest.mark.parametrize("segmentation, message", [
    ([[0, 0, 1, 1]], "each polygon"),
    ("abc", "must be a list of polygons"),
    ({"size": [30, 40], "counts": [5]}, "RLE counts sum"),
    ({"size": [10, 10], "counts": [100]}, "differs from the image size"),
])
def test_malformed_segmentation(tmp_path, segmentation, message):
    with pytest.raises(GeometryError, match=message) as err:
        import_coco(_broken(tmp_path, segmentation=segmentation))
    assert "annotation 100" in str(err.value) and err.value.reference_id == "a.jpg"


def test_malformed_keypoints(tmp_path):
    data = coco_dict()
    data["annotations"][1]["keypoints"] = [1, 2, 2]
    with pytest.raises(GeometryError, match="annotation 101: 1 keypoints but category"):
        import_coco(write_coco(tmp_path, data, images=False))


def test_duplicates(tmp_path):
    data = coco_dict()
    data["annotations"][1]["id"] = 100
    with pytest.raises(DuplicateIdError, match="annotation id 100"):
        import_coco(write_coco(tmp_path, data, images=False))
    data = coco_dict()
    data["images"][1]["file_name"] = "a.jpg"
    with pytest.raises(DuplicateIdError, match="a.jpg") as err:
        import_coco(write_coco(tmp_path, data, images=False))
    assert err.value.reference_id == "a.jpg"
    data = coco_dict()
    data["categories"][1]["id"] = 7
    with pytest.raises(DuplicateIdError, match="category id 7"):
        import_coco(write_coco(tmp_path, data, images=False))


def test_results_errors(tmp_path):
    gt = write_coco(tmp_path, images=False)
    res = tmp_path / "r.json"
    res.write_text(json.dumps([{"image_id": 5, "category_id": 2, "bbox": [0, 0, 1, 1]}]))
    with pytest.raises(ValidationError, match="'score' must be a number"):
        import_coco_results(res, gt)
    res.write_text(json.dumps([{"image_id": 6, "category_id": 2, "bbox": [0, 0, 1, 1],
                                "score": 1}]))
    warnings: list[str] = []
    assert import_coco_results(res, gt, warnings=warnings) == []
    assert warnings == ["1 results refer to image ids the ground truth does not list "
                        "(e.g. 6); left out"]
    res.write_text(json.dumps({"nope": 1}))
    with pytest.raises(ValidationError, match="not a COCO results list"):
        import_coco_results(res, gt)


def test_export_errors(tmp_path):
    item = DatasetItem(image_location="http://x/y.jpg", reference_id="y.jpg", width=4, height=4)
    with pytest.raises(ValidationError, match="unknown item 'z.jpg'"):
        export_coco([item], [BoxAnnotation("a", 0, 0, 1, 1, reference_id="z.jpg")])
    with pytest.raises(ValidationError, match="no width/height") as err:
        export_coco([DatasetItem(image_location="http://x/y.jpg", reference_id="y.jpg")], [])
    assert err.value.reference_id == "y.jpg"
    with pytest.raises(DuplicateIdError):
        export_coco([item, item], [])


def test_bad_image_size_and_unlabelled_export(tmp_path):
    data = coco_dict()
    data["images"][0]["width"] = 40.0  # integral floats are accepted
    assert import_coco(write_coco(tmp_path, data, images=False)).items[0].width == 40
    data["images"][0]["width"] = -4
    with pytest.raises(ValidationError, match="'a.jpg': width/height must be positive"):
        import_coco(write_coco(tmp_path, data, images=False))
    item = DatasetItem(reference_id="y.jpg", width=4, height=4)
    with pytest.raises(ValidationError, match="has no label"):
        export_coco([item], [BoxAnnotation(None, 0, 0, 1, 1, reference_id="y.jpg")])


def test_keypoints_only_objects(tmp_path):
    item = DatasetItem(reference_id="y.jpg", width=40, height=30)
    kps = KeypointsAnnotation("person", [(2, 3, True), (10, 12, False), (None, None, False)],
                              names=["a", "b", "c"], skeleton=[[0, 1]], reference_id="y.jpg",
                              annotation_id="5/keypoints")
    out = export_coco([item], [kps])
    assert out["categories"] == [{"id": 1, "name": "person", "keypoints": ["a", "b", "c"],
                                  "skeleton": [[1, 2]]}]
    (rec,) = out["annotations"]
    assert rec["id"] == 5 and rec["bbox"] == [2, 3, 8, 9] and rec["num_keypoints"] == 2
    assert rec["keypoints"] == [2, 3, 2, 10, 12, 1, 0, 0, 0]


def test_export_skips_categories_and_refuses_index_masks():
    from ocula.core.types import CategoryAnnotation, SegmentationAnnotation

    item = DatasetItem(reference_id="y.jpg", width=4, height=4)
    out = export_coco([item], [CategoryAnnotation("day", reference_id="y.jpg")])
    assert out["annotations"] == [] and out["categories"] == []
    seg = SegmentationAnnotation("m.png", [{"label": "a", "index": 1}], reference_id="y.jpg")
    with pytest.raises(ValidationError, match="expand it into instance masks"):
        export_coco([item], [seg])
