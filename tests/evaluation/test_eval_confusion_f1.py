"""Confusion matrix and precision / recall / F1 operating points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocula.core.evaluation import (
    ConfusionMatrix,
    Detections,
    GroundTruth,
    MatchStatus,
    best_f1,
    confusion_matrix,
    f1_curve,
    match_detections,
    operating_point,
    per_class_operating_points,
)
from ocula.core.evaluation.operating import best_f1_threshold, precision_recall_f1


def _scene() -> tuple[GroundTruth, Detections]:
    gt = GroundTruth(
        [0, 0, 0, 1, 1],
        ["car", "car", "person", "person", "person"],
        [[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10], [0, 0, 10, 10], [100, 100, 50, 50]],
        iscrowd=[False, False, False, False, True],
        id=[10, 11, 12, 13, 14],
    )
    dt = Detections(
        [0, 0, 0, 0, 1, 1],
        ["car", "truck", "car", "person", "car", "person"],
        [[0, 0, 10, 10], [20, 0, 10, 10], [60, 0, 10, 10], [40, 0, 10, 10],
         [1, 0, 10, 10], [110, 110, 5, 5]],
        [0.9, 0.8, 0.7, 0.3, 0.6, 0.95],
        id=[20, 21, 22, 23, 24, 25],
    )
    return gt, dt


def _random_sides(seed: int, *, images: int, labels: int, n_gt: int, n_dt: int,
                  extent: float = 100, side: float = 40, decimals: int = 1
                  ) -> tuple[np.random.Generator, GroundTruth, Detections]:
    """Random boxes on a few images (10% crowds), scores rounded so that ties occur."""
    rng = np.random.default_rng(seed)

    def boxes(n: int) -> np.ndarray:
        return np.c_[rng.uniform(0, extent, (n, 2)), rng.uniform(5, side, (n, 2))]
    gt = GroundTruth(rng.integers(0, images, n_gt), rng.integers(0, labels, n_gt),
                     boxes(n_gt), iscrowd=rng.random(n_gt) < 0.1)
    dt = Detections(rng.integers(0, images, n_dt), rng.integers(0, labels, n_dt),
                    boxes(n_dt), rng.random(n_dt).round(decimals))
    return rng, gt, dt


def test_confusion_matrix_cells_and_ids() -> None:
    gt, dt = _scene()
    cm = confusion_matrix(gt, dt, iou_threshold=0.5)
    assert cm.labels == ["car", "person", "truck"]
    assert cm.row_labels == ["car", "person", "truck", "background"]
    expected = np.array([
        # car person truck bg   (predicted)
        [1, 0, 1, 0],  # car: one right, one called truck
        [0, 1, 0, 0],  # person (image 0); the person in image 1 was taken by a car box
        [0, 0, 0, 0],  # truck
        [1, 0, 0, 0],  # background: the stray car box
    ])
    expected[1, 0] = 1  # person in image 1 matched by the "car" detection
    np.testing.assert_array_equal(cm.counts, expected)
    gt_ids, det_ids = cm.cell("car", "truck")
    assert gt_ids.tolist() == [11] and det_ids.tolist() == [21]
    gt_ids, det_ids = cm.cell(None, "car")
    assert gt_ids.tolist() == [-1] and det_ids.tolist() == [22]
    gt_ids, det_ids = cm.cell("person", "car")
    assert gt_ids.tolist() == [13] and det_ids.tolist() == [24]
    # The detection inside the crowd region counts nowhere, nor does the crowd.
    assert 25 not in cm.entry_det_id and 14 not in cm.entry_gt_id
    assert cm.to_dict()["counts"] == expected.tolist()


def test_confusion_matrix_score_threshold_turns_matches_into_misses() -> None:
    gt, dt = _scene()
    cm = confusion_matrix(gt, dt, score_threshold=0.75)
    # Only the 0.9 car, 0.8 truck and 0.95 crowd-absorbed person remain.
    assert cm.counts[cm.index("car"), cm.index("car")] == 1
    assert cm.counts[cm.index("car"), cm.index("truck")] == 1
    assert cm.cell("person", None)[0].tolist() == [12, 13]
    assert cm.counts[cm.index(None)].sum() == 0


@pytest.mark.parametrize("seed", range(10))
def test_confusion_matrix_totals_agree_with_matching(seed: int) -> None:
    _, gt, dt = _random_sides(seed, images=5, labels=4, n_gt=60, n_dt=90)
    cm = confusion_matrix(gt, dt, iou_threshold=0.3, score_threshold=0.2)
    m = match_detections(gt, dt.subset(dt.score >= 0.2), iou_threshold=0.3, class_agnostic=True)
    k = len(cm.labels)
    assert cm.counts[:k, :k].sum() == m.tp
    assert cm.counts[k, :].sum() == m.fp
    assert cm.counts[:, k].sum() == m.fn
    # Every count has its ids: the histogram of entries is the matrix.
    hist = np.zeros_like(cm.counts)
    np.add.at(hist, (cm.entry_row, cm.entry_col), 1)
    np.testing.assert_array_equal(hist, cm.counts)
    # Rows are ground-truth labels, columns predicted labels.
    row_of_gt = dict(zip(gt.id.tolist(), gt.label.tolist(), strict=True))
    col_of_dt = dict(zip(dt.id.tolist(), dt.label.tolist(), strict=True))
    for r, c, g, d in zip(cm.entry_row, cm.entry_col, cm.entry_gt_id, cm.entry_det_id,
                          strict=True):
        assert (g == -1) == (r == k) and (d == -1) == (c == k)
        if g >= 0:
            assert cm.labels[r] == row_of_gt[g]
        if d >= 0:
            assert cm.labels[c] == col_of_dt[d]


@pytest.mark.parametrize("seed", range(10))
def test_confusion_matrix_cut_to_images_equals_building_it_from_their_rows(seed: int
                                                                           ) -> None:
    """A commit keeps each slice's matrix cut from the whole dataset's."""
    rng, gt, dt = _random_sides(50 + seed, images=8, labels=5, n_gt=80, n_dt=120)
    whole = confusion_matrix(gt, dt, iou_threshold=0.4, score_threshold=0.3)
    keys = np.sort(rng.choice(8, 3, replace=False))
    g, d = gt.subset(np.isin(gt.image, keys)), dt.subset(np.isin(dt.image, keys))
    alone = confusion_matrix(g, d, iou_threshold=0.4, score_threshold=0.3)
    cut = whole.on_images(keys, alone.labels)
    assert cut.labels == alone.labels
    np.testing.assert_array_equal(cut.counts, alone.counts)

    def entries(cm: ConfusionMatrix) -> list[tuple[int, ...]]:
        return sorted(zip(cm.entry_row.tolist(), cm.entry_col.tolist(),
                          cm.entry_gt_id.tolist(), cm.entry_det_id.tolist(), strict=True))
    assert entries(cut) == entries(alone)
    with pytest.raises(ValueError):
        whole.on_images(keys, [])


def _f1_scene() -> tuple[GroundTruth, Detections]:
    gt = GroundTruth([0, 0, 0], ["a", "a", "a"],
                     [[0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10]])
    dt = Detections([0, 0, 0, 0], ["a", "a", "a", "a"],
                    [[0, 0, 10, 10], [70, 0, 10, 10], [20, 0, 10, 10], [90, 0, 10, 10]],
                    [0.9, 0.8, 0.7, 0.6])
    return gt, dt


def test_operating_point_by_hand() -> None:
    gt, dt = _f1_scene()
    m = match_detections(gt, dt)
    p = operating_point(m, 0.75)
    assert (p.tp, p.fp, p.fn) == (1, 1, 2)
    assert p.precision == 0.5 and p.recall == pytest.approx(1 / 3) and p.f1 == pytest.approx(0.4)
    assert precision_recall_f1(gt, dt, score_threshold=0.75) == p
    nothing = operating_point(m, 0.95)
    assert (nothing.tp, nothing.fp, nothing.fn, nothing.precision, nothing.f1) == (0, 0, 3, 0, 0)


def test_best_f1_by_hand() -> None:
    gt, dt = _f1_scene()
    m = match_detections(gt, dt)
    curve = f1_curve(m)
    assert curve.thresholds.tolist() == [0.9, 0.8, 0.7, 0.6]
    np.testing.assert_allclose(curve.f1, [2 / 4, 2 / 5, 4 / 6, 4 / 7])
    best = best_f1(m)
    assert best.score_threshold == 0.7 and best.f1 == pytest.approx(2 / 3)
    assert (best.tp, best.fp, best.fn) == (2, 1, 1)
    assert best_f1_threshold(gt, dt) == best
    # A stricter IoU turns every detection into a false positive.
    strict = best_f1_threshold(gt, dt.subset([1, 3]), iou_threshold=0.5)
    assert strict.f1 == 0.0
    empty = best_f1(match_detections(gt, dt.subset(np.zeros(0, dtype=int))))
    assert math.isinf(empty.score_threshold) and empty.fn == 3


@pytest.mark.parametrize("seed", range(10))
def test_thresholding_a_match_equals_matching_the_kept_detections(seed: int) -> None:
    """Greedy matching is score-ordered, so cutting after matching is exact."""
    rng, gt, dt = _random_sides(100 + seed, images=4, labels=3, n_gt=40, n_dt=80,
                                extent=60, side=30, decimals=2)
    m = match_detections(gt, dt, iou_threshold=0.4)
    curve = f1_curve(m)
    for thr in rng.choice(dt.score, 8):
        kept = match_detections(gt, dt.subset(dt.score >= thr), iou_threshold=0.4)
        p = operating_point(m, thr)
        assert (p.tp, p.fp, p.fn) == (kept.tp, kept.fp, kept.fn)
        i = int(np.flatnonzero(curve.thresholds == thr)[0])
        assert (curve.tp[i], curve.fp[i], curve.fn[i]) == (p.tp, p.fp, p.fn)
    best = best_f1(m)
    assert best.f1 == pytest.approx(curve.f1.max())
    # Per-class points add up to the overall one.
    per_class = per_class_operating_points(m, 0.5)
    overall = operating_point(m, 0.5)
    assert sum(p.tp for p in per_class.values()) == overall.tp
    assert sum(p.fp for p in per_class.values()) == overall.fp
    assert sum(p.fn for p in per_class.values()) == overall.fn
    for label, p in per_class.items():
        assert p == operating_point(m, 0.5, label=label)
    assert int(np.count_nonzero(m.det_status == MatchStatus.TP)) == operating_point(m, 0).tp
