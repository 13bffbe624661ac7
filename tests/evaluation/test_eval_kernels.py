"""The compiled box loops (``ocula.core.evaluation.kernels``) against the numpy pair
path they replace for boxes: equal to the last bit on random COCO cases, with every
matching option. The pair path itself is tested against pycocotools elsewhere; a box
IoU passed as ``pair_iou`` forces it."""

from __future__ import annotations

import numpy as np
import pytest
from eval_synth import assert_same_fields, random_case

from ocula.core.evaluation import (
    detections_from_coco,
    ground_truth_from_coco,
    match_detections,
)
from ocula.core.evaluation.coco import accumulate_coco, coco_matches
from ocula.core.evaluation.iou import BoxPairIoU


def _sides(seed: int):  # noqa: ANN202
    dataset, results = random_case(seed)
    gt, _ = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    rng = np.random.default_rng(seed)
    # Some `ignore` rows too (keypoints' people without keypoints): they absorb one
    # detection each and rank after regular ground truth.
    gt.ignore = rng.random(len(gt)) < 0.1
    return gt, dt


@pytest.mark.parametrize("seed", range(36))
@pytest.mark.parametrize("options", [
    {},
    {"class_agnostic": True},
    {"max_dets": 3, "iou_threshold": 0.3},
    {"iou_threshold": 1.0},
    {"allowed": True},
])
def test_box_matching_equals_the_pair_path(seed: int, options: dict) -> None:
    gt, dt = _sides(seed)
    options = dict(options)
    if options.pop("allowed", False):
        labels = np.unique(np.concatenate([gt.label, dt.label]))
        rng = np.random.default_rng(seed)
        options["allowed_label_matches"] = [
            {"ground_truth_label": int(g), "model_prediction_label": int(p)}
            for g, p in rng.choice(labels, (3, 2))]
    options.setdefault("max_dets", None)
    compiled = match_detections(gt, dt, **options)
    pairs = match_detections(gt, dt, **options,
                             pair_iou=BoxPairIoU(dt.bbox, gt.bbox, gt.iscrowd))
    assert_same_fields(compiled, pairs)


@pytest.mark.parametrize("seed", range(36))
def test_coco_matching_equals_the_pair_path(seed: int) -> None:
    gt, dt = _sides(seed)
    compiled = coco_matches(gt, dt)
    pairs = coco_matches(gt, dt, pair_iou=BoxPairIoU(dt.bbox, gt.bbox, gt.iscrowd))
    for field in ("tp", "counted", "d_rank", "dimg", "dk", "score", "gt_ignore"):
        np.testing.assert_array_equal(getattr(compiled, field), getattr(pairs, field),
                                      err_msg=field)
    a, b = accumulate_coco(compiled), accumulate_coco(pairs)
    np.testing.assert_array_equal(a.stats, b.stats)
    np.testing.assert_array_equal(a.precision, b.precision)


def test_an_image_without_ground_truth_or_detections() -> None:
    gt, dt = _sides(5)
    empty = gt.subset(np.zeros(0, dtype=np.int64))
    m = match_detections(empty, dt, max_dets=None)
    assert (m.det_gt_index == -1).all() and (m.det_best_iou == 0).all()
    m = match_detections(gt, dt.subset(np.zeros(0, dtype=np.int64)), max_dets=None)
    assert len(m.det_id) == 0 and m.fn == int((~(gt.iscrowd | gt.ignore)).sum())


@pytest.mark.parametrize("seed", range(24))
def test_tide_on_boxes_equals_the_pair_path(seed: int) -> None:
    from ocula.core.evaluation.tide import evaluate_tide

    gt, dt = _sides(seed)
    gt.ignore = np.zeros(len(gt), dtype=bool)
    compiled = evaluate_tide(gt, dt).to_dict()
    pairs = evaluate_tide(gt, dt, pair_iou=BoxPairIoU(dt.bbox, gt.bbox, gt.iscrowd)).to_dict()
    assert compiled == pairs


@pytest.mark.parametrize("seed", range(60))
def test_compiled_accumulation_equals_pycocotools_bit_for_bit(seed: int) -> None:
    """The accumulation loop forms each value with pycocotools' own expression: its
    arrays and the 12 numbers are equal, not merely close."""
    from eval_synth import run_pycocotools

    from ocula.core.evaluation import evaluate_coco

    dataset, results = random_case(seed)
    ref = run_pycocotools(dataset, results)
    gt, categories = ground_truth_from_coco(dataset)
    ours = evaluate_coco(gt, detections_from_coco(results), categories=categories)
    np.testing.assert_array_equal(ours.precision, ref.eval["precision"])
    np.testing.assert_array_equal(ours.recall, ref.eval["recall"])
    np.testing.assert_array_equal(ours.scores, ref.eval["scores"])
    np.testing.assert_array_equal(ours.stats, ref.stats)
