"""Ocula's COCO evaluation must reproduce pycocotools on randomised cases."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from eval_synth import random_case, reference_per_class_ap, run_pycocotools
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ocula.core.evaluation import (
    Detections,
    GroundTruth,
    detections_from_coco,
    evaluate_coco,
    ground_truth_from_coco,
)
from ocula.core.evaluation.coco import accumulate_coco, coco_matches

N_CASES = 360
ATOL = 1e-9


@pytest.mark.parametrize("seed", range(N_CASES))
def test_matches_pycocotools(seed: int) -> None:
    dataset, results = random_case(seed)
    ref = run_pycocotools(dataset, results)
    gt, categories = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    ours = evaluate_coco(gt, dt, categories=categories)

    np.testing.assert_allclose(ours.stats, ref.stats, rtol=0, atol=ATOL)
    ap = np.array([ours.per_class_ap()[c] for c in categories])
    np.testing.assert_allclose(ap, reference_per_class_ap(ref), rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.scores, ref.eval["scores"], rtol=0, atol=ATOL)


def test_cases_cover_the_corner_cases() -> None:
    """Guard the generator: the exactness test is only as good as what it feeds in."""
    crowd = over_100 = no_gt_image = no_dt_image = pred_only_cat = gt_only_cat = ties = 0
    huge = tiny = 0
    for seed in range(N_CASES):
        dataset, results = random_case(seed)
        anns = dataset["annotations"]
        crowd += any(a["iscrowd"] for a in anns)
        per_img: dict[tuple[int, int], int] = {}
        for r in results:
            key = (r["image_id"], r["category_id"])
            per_img[key] = per_img.get(key, 0) + 1
        over_100 += max(per_img.values()) > 100
        gt_imgs = {a["image_id"] for a in anns}
        dt_imgs = {r["image_id"] for r in results}
        all_imgs = {i["id"] for i in dataset["images"]}
        no_gt_image += bool(all_imgs - gt_imgs)
        no_dt_image += bool(all_imgs - dt_imgs)
        listed = {c["id"] for c in dataset["categories"]}
        annotated = {a["category_id"] for a in anns}
        pred_only_cat += bool({r["category_id"] for r in results} - annotated)
        gt_only_cat += bool(listed - {r["category_id"] for r in results})
        scores = [r["score"] for r in results]
        ties += len(set(scores)) < len(scores)
        huge += any(r["bbox"][2] * r["bbox"][3] > 1e10 for r in results)
        tiny += any(0 < a["bbox"][2] * a["bbox"][3] < 4 for a in anns)
    for name, count in dict(
        crowd=crowd, over_100=over_100, no_gt_image=no_gt_image, no_dt_image=no_dt_image,
        pred_only_cat=pred_only_cat, gt_only_cat=gt_only_cat, ties=ties, huge=huge, tiny=tiny,
    ).items():
        assert count >= 10, f"only {count} cases with {name}"


def test_string_labels_give_the_same_numbers() -> None:
    dataset, results = random_case(7)
    gt, categories = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    by_int = evaluate_coco(gt, dt, categories=categories)
    name = {c: f"class-{c:03d}" for c in set(gt.label.tolist()) | set(dt.label.tolist())}
    gt_s = GroundTruth(gt.image, [name[c] for c in gt.label.tolist()], gt.bbox,
                       area=gt.area, iscrowd=gt.iscrowd, id=gt.id)
    dt_s = Detections(dt.image, [name[c] for c in dt.label.tolist()], dt.bbox, dt.score,
                      id=dt.id)
    by_str = evaluate_coco(gt_s, dt_s, categories=[name[c] for c in categories])
    np.testing.assert_array_equal(by_str.stats, by_int.stats)
    assert list(by_str.per_class_ap().values()) == list(by_int.per_class_ap().values())


def test_default_label_space_only_adds_minus_one_classes() -> None:
    """Without an explicit list, prediction-only labels are reported with AP -1."""
    dataset, results = random_case(3)
    gt, categories = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    explicit = evaluate_coco(gt, dt, categories=categories)
    implicit = evaluate_coco(gt, dt)
    np.testing.assert_array_equal(explicit.stats, implicit.stats)
    extra = set(implicit.labels) - set(explicit.labels)
    assert extra
    assert all(implicit.per_class_ap()[c] == -1 for c in extra)


def test_no_detections_and_no_ground_truth() -> None:
    empty_gt = GroundTruth(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)))
    empty_dt = Detections(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0))
    assert (evaluate_coco(empty_gt, empty_dt).stats == -1).all()
    gt = GroundTruth([1, 1], [3, 3], [[0, 0, 10, 10], [50, 50, 40, 40]])
    ev = evaluate_coco(gt, empty_dt)
    assert ev.stats[0] == 0 and ev.stats[8] == 0
    assert ev.stats[5] == -1  # no large ground truth


def test_pr_curve_and_summary_shapes() -> None:
    dataset, results = random_case(0)
    gt, categories = ground_truth_from_coco(dataset)
    ev = evaluate_coco(gt, detections_from_coco(results), categories=categories)
    label = next(c for c in categories if ev.per_class_ap()[c] > -1)
    curve = ev.pr_curve(label, iou=0.5)
    assert curve is not None
    assert curve.recall.shape == curve.precision.shape == curve.score.shape == (101,)
    # COCO's interpolated precision never increases with recall.
    assert np.all(np.diff(curve.precision) <= 0)
    k = ev.labels.index(label)
    np.testing.assert_array_equal(curve.precision, ev.precision[0, :, k, 0, -1])
    averaged = ev.pr_curve(label, iou=None)
    assert averaged is not None
    np.testing.assert_allclose(averaged.precision, ev.precision[:, :, k, 0, -1].mean(axis=0))
    assert list(ev.summary()) == ["AP", "AP50", "AP75", "APs", "APm", "APl",
                                  "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    body = ev.to_dict()
    assert len(body["per_class"]) == len(categories)


@pytest.mark.parametrize("seed", range(28))
def test_custom_parameters_match_pycocotools(seed: int) -> None:
    """Non-default thresholds, area ranges and max-dets follow pycocotools too; the last
    seeds with more settings (thresholds x areas) than one 64-bit word of flags holds."""
    dataset, results = random_case(1000 + seed)
    iou_thr = np.array([0.3, 0.55, 0.8]) if seed < 24 else np.linspace(0.3, 0.9, 25)
    rec_thr = np.linspace(0, 1, 21)
    areas = {"all": (0, 1e10), "tiny": (0, 16**2), "mid": (16**2, 128**2)}
    max_dets = [3, 30]
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(dataset)
        cg.createIndex()
        ref = COCOeval(cg, cg.loadRes(copy.deepcopy(results)), "bbox")
        ref.params.iouThrs = iou_thr
        ref.params.recThrs = rec_thr
        ref.params.areaRng = [list(v) for v in areas.values()]
        ref.params.areaRngLbl = list(areas)
        ref.params.maxDets = max_dets
        ref.evaluate()
        ref.accumulate()
    gt, categories = ground_truth_from_coco(dataset)
    ours = evaluate_coco(
        gt, detections_from_coco(results), categories=categories, iou_thresholds=iou_thr,
        recall_thresholds=rec_thr, area_ranges=areas, max_dets=max_dets,
    )
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.scores, ref.eval["scores"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("seed", range(6))
def test_mask_evaluation_through_pair_iou_matches_pycocotools_segm(seed: int) -> None:
    """``pair_iou`` plugs mask IoU into the same matching: equal to iouType="segm"."""
    rng = np.random.default_rng(2000 + seed)
    h, w = 48, 64

    def blob() -> np.ndarray:
        m = np.zeros((h, w), dtype=bool)
        for _ in range(int(rng.integers(1, 3))):
            y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
            m[y : y + rng.integers(3, 30), x : x + rng.integers(3, 30)] = True
        return m

    def rle(m: np.ndarray) -> dict:
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        return {"size": r["size"], "counts": r["counts"].decode()}

    gt_masks, dt_masks, anns, results = [], [], [], []
    for img in range(1, 6):
        for _ in range(int(rng.integers(0, 6))):
            m = blob()
            cat = int(rng.integers(1, 3))
            gt_masks.append(m)
            anns.append({
                "id": len(anns) + 1, "image_id": img, "category_id": cat,
                "segmentation": rle(m), "area": float(m.sum()),
                "bbox": list(mask_utils.toBbox(rle(m))), "iscrowd": int(rng.random() < 0.15),
            })
            for _ in range(int(rng.integers(0, 3))):
                shifted = np.roll(m, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
                d = shifted | (rng.random((h, w)) < 0.01)
                dt_masks.append(d)
                results.append({"image_id": img, "category_id": cat, "segmentation": rle(d),
                                "score": float(np.round(rng.random(), 2))})
        d = blob()
        dt_masks.append(d)
        results.append({"image_id": img, "category_id": int(rng.integers(1, 3)),
                        "segmentation": rle(d), "score": float(np.round(rng.random(), 2))})
    dataset = {"images": [{"id": i, "width": w, "height": h} for i in range(1, 6)],
               "categories": [{"id": 1}, {"id": 2}], "annotations": anns}
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(dataset)
        cg.createIndex()
        ref = COCOeval(cg, cg.loadRes(copy.deepcopy(results)), "segm")
        ref.evaluate()
        ref.accumulate()
        ref.summarize()

    gt_flat = np.stack(gt_masks).reshape(len(gt_masks), -1)
    dt_flat = np.stack(dt_masks).reshape(len(dt_masks), -1)
    crowd = np.array([a["iscrowd"] for a in anns], dtype=bool)

    def pair_iou(d_rows: np.ndarray, g_rows: np.ndarray) -> np.ndarray:
        inter = (dt_flat[d_rows] & gt_flat[g_rows]).sum(axis=1).astype(float)
        d_area = dt_flat[d_rows].sum(axis=1)
        union = np.where(crowd[g_rows], d_area, d_area + gt_flat[g_rows].sum(axis=1) - inter)
        return np.divide(inter, union, out=np.zeros(len(inter)), where=union > 0)

    gt = GroundTruth([a["image_id"] for a in anns], [a["category_id"] for a in anns],
                     [a["bbox"] for a in anns], area=[a["area"] for a in anns], iscrowd=crowd)
    dt = Detections([r["image_id"] for r in results], [r["category_id"] for r in results],
                    np.zeros((len(results), 4)), [r["score"] for r in results],
                    area=dt_flat.sum(axis=1))
    ours = evaluate_coco(gt, dt, categories=[1, 2], pair_iou=pair_iou)
    np.testing.assert_allclose(ours.stats, ref.stats, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("seed", range(40))
def test_accumulating_some_images_equals_evaluating_them_alone(seed: int) -> None:
    """A commit scores each slice from the whole dataset's matching: the numbers must be
    those of the slice's rows evaluated alone, bit for bit, labels included."""
    dataset, results = random_case(seed)
    gt, _ = ground_truth_from_coco(dataset)
    dt = detections_from_coco(results)
    matches = coco_matches(gt, dt)
    rng = np.random.default_rng(seed)
    images = np.union1d(gt.image, dt.image)
    for size in (1, max(len(images) // 3, 1), len(images)):
        keys = np.sort(rng.choice(images, size, replace=False))
        g, d = gt.subset(np.isin(gt.image, keys)), dt.subset(np.isin(dt.image, keys))
        alone = evaluate_coco(g, d)
        cut = accumulate_coco(matches, keys, categories=alone.labels)
        assert cut.labels == alone.labels
        for field in ("stats", "precision", "recall", "scores", "num_ground_truth",
                      "num_detections"):
            np.testing.assert_array_equal(getattr(cut, field), getattr(alone, field),
                                          err_msg=field)
    with pytest.raises(ValueError):
        accumulate_coco(matches, categories=[10**9])


@pytest.mark.parametrize("seed", range(12))
def test_accumulation_order_is_pycocotools(seed: int) -> None:
    """The accumulation order (category, descending score, then image and rank) is
    taken from two stable sorts of the ranked detections: equal to sorting by all four
    keys, with tied scores (rounded to two places) across images and within one."""
    dataset, results = random_case(3000 + seed)
    for r in results:
        r["score"] = round(r["score"], 2 if seed % 2 else 1)
    gt, categories = ground_truth_from_coco(dataset)
    m = coco_matches(gt, detections_from_coco(results), categories=categories)
    np.testing.assert_array_equal(
        m.acc_order, np.lexsort((m.d_rank, m.dimg, -m.score, m.dk)))
