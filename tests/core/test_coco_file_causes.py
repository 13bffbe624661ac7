"""The six causes by which real COCO files once gave other numbers than pycocotools
through the catalog (issue 11), each on a file written to show it, on both paths
(``ocula eval`` and import → commit → metrics) and both databases."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import ocula
from ocula import io
from ocula.core.evaluation.coco_files import evaluate_inputs, load_coco
from ocula.errors import ValidationError
from tests.core.test_commit_coco_files import catalog_stats, write_pair
from tests.evaluation.coco_files_synth import pycocotools_stats

SQUARE = [[10, 10, 30, 10, 30, 30, 10, 30]]


def _gt(images: list[Any], anns: list[dict[str, Any]]) -> dict[str, Any]:
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 48}
                       for i in images],
            "annotations": [{"id": k + 1, "category_id": 1, "iscrowd": 0, **a}
                            for k, a in enumerate(anns)],
            "categories": [{"id": 1, "name": "thing"}]}


def both_paths(client: ocula.Client, tmp_path: Path, gt: dict[str, Any],
               results: list[dict[str, Any]], iou_type: str = "bbox") -> list[float]:
    """pycocotools' numbers, after checking ``ocula eval``'s and the catalog's equal
    them exactly."""
    expected = pycocotools_stats(gt, results, iou_type).tolist()
    inputs = load_coco(copy.deepcopy(gt), copy.deepcopy(results), iou_type)
    assert evaluate_inputs(inputs).stats.tolist() == expected
    gt_path, res_path = write_pair(tmp_path, gt, results)
    got = catalog_stats(client, gt_path, res_path, "d", (iou_type,))[iou_type]
    assert got.tolist() == expected
    return expected


def test_1_a_box_and_its_polygon_are_one_ground_truth(client, tmp_path) -> None:
    gt = _gt([1], [{"image_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                    "segmentation": SQUARE}])
    results = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]
    assert both_paths(client, tmp_path, gt, results)[0] == pytest.approx(1.0)
    run = client.get_dataset("d").get_run("d")
    summary = run.commit()
    assert (summary["ground_truth"], summary["tp"], summary["fn"]) == (1, 1, 0)


def test_2_equal_scores_across_images_follow_image_ids_not_file_order(client, tmp_path):
    gt = _gt([2, 1], [{"image_id": 1, "bbox": [10, 10, 20, 20], "area": 400},
                      {"image_id": 2, "bbox": [10, 10, 20, 20], "area": 400}])
    results = [{"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.5},
               {"image_id": 1, "category_id": 1, "bbox": [40, 30, 10, 10], "score": 0.5}]
    assert both_paths(client, tmp_path, gt, results)[0] == pytest.approx(0.2525, abs=1e-4)
    names = [it.reference_id for it in client.get_dataset("d").items]
    assert names == ["1.png", "2.png"]


def test_3_a_stale_area_in_a_results_file_is_not_read(client, tmp_path) -> None:
    gt = _gt([1], [{"image_id": 1, "bbox": [0, 0, 40, 40], "area": 1600}])
    results = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.5},
               # A false positive of 40x33 px ("medium") whose stale area says "small":
               # read, it would leave the medium range and APm would be 1.0.
               {"image_id": 1, "category_id": 1, "bbox": [20, 15, 40, 33], "score": 0.9,
                "area": 50.0}]
    stats = both_paths(client, tmp_path, gt, results)
    assert stats[4] == pytest.approx(0.5)  # APm


def test_4_segm_results_with_a_box_take_the_box_area(client, tmp_path) -> None:
    from pycocotools import mask as mask_utils

    def rle(poly: list[list[float]]) -> dict[str, Any]:
        r = mask_utils.merge(mask_utils.frPyObjects(poly, 48, 64))
        return {"size": r["size"], "counts": r["counts"].decode()}

    gt = _gt([1], [{"image_id": 1, "bbox": [10, 10, 20, 20], "area": 1300,
                    "segmentation": SQUARE}])
    results = [{"image_id": 1, "category_id": 1, "bbox": [2, 2, 36, 36], "score": 0.5,
                "segmentation": rle(SQUARE)},
               # A false positive: its mask is 100 px ("small"), its box 33x40 ("medium").
               # loadRes' box branch gives it the box's area, so it counts in APm.
               {"image_id": 1, "category_id": 1, "bbox": [30, 5, 33, 40], "score": 0.9,
                "segmentation": rle([[40, 30, 50, 30, 50, 40, 40, 40]])}]
    stats = both_paths(client, tmp_path, gt, results, "segm")
    assert stats[4] == pytest.approx(0.5)  # APm


def test_5_ids_of_another_type_are_refused_clearly(client, tmp_path) -> None:
    gt = _gt(["2299"], [{"image_id": 2299, "bbox": [10, 10, 20, 20], "area": 400}])
    results = [{"image_id": 2299, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]
    with pytest.raises(ValidationError, match=r"image_id 2299 \(int\).*'2299' \(str\)"):
        load_coco(gt, results)
    gt_path, _ = write_pair(tmp_path, gt, results)
    with pytest.raises(ValidationError, match="use the same type for ids"):
        io.import_coco(gt_path, tmp_path / "images")


def test_6_mask_only_results_are_scored_for_boxes_and_masks(client, tmp_path) -> None:
    from pycocotools import mask as mask_utils

    gt = _gt([1, 2], [{"image_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                       "segmentation": SQUARE},
                      {"image_id": 2, "bbox": [5, 5, 30, 30], "area": 900,
                       "segmentation": [[5, 5, 35, 5, 35, 35, 5, 35]]}])
    results = []
    for image, poly, score in ((1, SQUARE, 0.8), (2, [[6, 6, 30, 6, 30, 30, 6, 30]], 0.6),
                               (2, [[40, 20, 60, 20, 60, 40]], 0.7)):
        rle = mask_utils.merge(mask_utils.frPyObjects(poly, 48, 64))
        results.append({"image_id": image, "category_id": 1, "score": score,
                        "segmentation": {"size": rle["size"],
                                         "counts": rle["counts"].decode()}})
    boxes = both_paths(client, tmp_path / "bbox", gt, results, "bbox")
    assert boxes[0] > 0
    masks = pycocotools_stats(gt, results, "segm").tolist()
    inputs = load_coco(copy.deepcopy(gt), copy.deepcopy(results), "segm")
    assert evaluate_inputs(inputs).stats.tolist() == masks
    run = client.get_dataset("d").get_run("d")
    run.commit(iou_type="segm")
    assert list(run.metrics(iou_type="segm")["stats"].values()) == masks
