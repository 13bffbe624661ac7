"""Precision, recall and F1 at a confidence threshold, and the best-F1 threshold.

All functions work on a :class:`~ocula.core.evaluation.matching.MatchResult`, so the store
can match once (at the IoU threshold it wants) and derive every operating point from it.
That is exact, not an approximation: matching is greedy in descending score, so the
detections above a threshold are matched exactly as if the others did not exist.

Counting: a true positive is a non-crowd ground truth matched by a detection whose score
is ``>= threshold``; false positives are unmatched detections at or above the threshold
(detections absorbed by crowd regions, or beyond ``max_dets``, count neither way); false
negatives are the other non-crowd ground truths. Per-class numbers count a TP and FN under
the ground truth's label and an FP under the detection's label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocula.core.evaluation.inputs import Detections, GroundTruth, LabelSpace
from ocula.core.evaluation.matching import MatchResult, MatchStatus, match_detections

__all__ = [
    "F1Curve",
    "OperatingPoint",
    "best_f1",
    "best_f1_threshold",
    "f1_curve",
    "operating_point",
    "per_class_operating_points",
    "precision_recall_f1",
]


@dataclass(frozen=True)
class OperatingPoint:
    """Counts and ratios when keeping detections with ``score >= score_threshold``.

    Ratios with a zero denominator are 0. ``score_threshold`` is ``inf`` for the "keep
    nothing" point that :func:`best_f1` returns when there are no detections.
    """

    score_threshold: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, score_threshold: float, tp: int, fp: int, fn: int) -> OperatingPoint:
        """Build a point from TP/FP/FN counts, deriving precision, recall and F1."""
        return cls(
            score_threshold=float(score_threshold),
            tp=int(tp),
            fp=int(fp),
            fn=int(fn),
            precision=tp / (tp + fp) if tp + fp else 0.0,
            recall=tp / (tp + fn) if tp + fn else 0.0,
            f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        )


@dataclass(frozen=True)
class F1Curve:
    """Precision, recall and F1 at every distinct detection score, highest score first."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


def _events(match: MatchResult, label: Any | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores of TP events, scores of FP events and the number of positives."""
    regular = match.gt_status != MatchStatus.IGNORED
    fp = match.det_status == MatchStatus.FP
    if label is not None:
        regular &= match.gt_label == label
        fp &= match.det_label == label
    found = regular & (match.gt_status == MatchStatus.TP)
    return match.gt_det_score[found], match.det_score[fp], int(np.count_nonzero(regular))


def operating_point(
    match: MatchResult, score_threshold: float, *, label: Any | None = None
) -> OperatingPoint:
    """Precision / recall / F1 keeping detections with ``score >= score_threshold``.

    Args:
        match: result of :func:`~ocula.core.evaluation.matching.match_detections`.
        score_threshold: confidence cut-off.
        label: restrict to one class (TP/FN by ground-truth label, FP by predicted label).
    """
    tp_scores, fp_scores, positives = _events(match, label)
    tp = int(np.count_nonzero(tp_scores >= score_threshold))
    fp = int(np.count_nonzero(fp_scores >= score_threshold))
    return OperatingPoint.from_counts(score_threshold, tp, fp, positives - tp)


def per_class_operating_points(
    match: MatchResult, score_threshold: float
) -> dict[Any, OperatingPoint]:
    """:func:`operating_point` for every label seen in the ground truth or detections."""
    # Counted by label code in one pass each (a pass per label costs 80 passes over
    # millions of rows); the same counts as operating_point(match, t, label=label).
    space = LabelSpace.union(match.gt_label, match.det_label)
    labels, n = space.labels, len(space)
    g_code, d_code = space.index(match.gt_label), space.index(match.det_label)
    regular = match.gt_status != MatchStatus.IGNORED
    found = regular & (match.gt_status == MatchStatus.TP)
    found &= match.gt_det_score >= score_threshold
    fp = (match.det_status == MatchStatus.FP) & (match.det_score >= score_threshold)
    positives = np.bincount(g_code[regular], minlength=n)
    tp = np.bincount(g_code[found], minlength=n)
    fps = np.bincount(d_code[fp], minlength=n)
    return {
        label: OperatingPoint.from_counts(score_threshold, int(tp[k]), int(fps[k]),
                                          int(positives[k] - tp[k]))
        for k, label in enumerate(labels.tolist())
    }


def f1_curve(match: MatchResult, *, label: Any | None = None) -> F1Curve:
    """Counts and ratios at every distinct score, from the highest down.

    The point at ``thresholds[i]`` keeps every detection with ``score >= thresholds[i]``.
    """
    tp_scores, fp_scores, positives = _events(match, label)
    scores = np.concatenate([tp_scores, fp_scores])
    is_tp = np.concatenate([np.ones(len(tp_scores), bool), np.zeros(len(fp_scores), bool)])
    order = np.argsort(-scores, kind="stable")
    scores, is_tp = scores[order], is_tp[order]
    ctp = np.cumsum(is_tp)
    cfp = np.cumsum(~is_tp)
    # A threshold keeps all detections with equal scores: evaluate at block ends only.
    if len(scores):
        last = np.flatnonzero(np.concatenate((scores[1:] != scores[:-1], [True])))
    else:
        last = np.zeros(0, dtype=np.int64)
    tp, fp = ctp[last], cfp[last]
    fn = positives - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        recall = np.where(positives > 0, tp / max(positives, 1), 0.0)
        denom = 2 * tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return F1Curve(
        thresholds=scores[last], tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1
    )


def best_f1(match: MatchResult, *, label: Any | None = None,
            curve: F1Curve | None = None) -> OperatingPoint:
    """The confidence threshold with the highest F1 (the highest such threshold on ties).

    With no detections the result keeps nothing: ``score_threshold = inf``, F1 = 0.
    ``curve``: ``f1_curve(match, label=label)`` where the caller has it.
    """
    if curve is None:
        curve = f1_curve(match, label=label)
    if len(curve.thresholds) == 0:
        _, _, positives = _events(match, label)
        return OperatingPoint.from_counts(math.inf, 0, 0, positives)
    i = int(np.argmax(curve.f1))
    return OperatingPoint.from_counts(
        float(curve.thresholds[i]), int(curve.tp[i]), int(curve.fp[i]), int(curve.fn[i])
    )


def precision_recall_f1(
    gt: GroundTruth,
    dt: Detections,
    *,
    score_threshold: float,
    iou_threshold: float = 0.5,
    class_agnostic: bool = False,
    max_dets: int | None = 100,
) -> OperatingPoint:
    """Micro-averaged precision / recall / F1 at one confidence and one IoU threshold."""
    match = match_detections(
        gt, dt, iou_threshold=iou_threshold, class_agnostic=class_agnostic, max_dets=max_dets
    )
    return operating_point(match, score_threshold)


def best_f1_threshold(
    gt: GroundTruth,
    dt: Detections,
    *,
    iou_threshold: float = 0.5,
    class_agnostic: bool = False,
    max_dets: int | None = 100,
) -> OperatingPoint:
    """The micro-averaged best-F1 operating point at one IoU threshold."""
    match = match_detections(
        gt, dt, iou_threshold=iou_threshold, class_agnostic=class_agnostic, max_dets=max_dets
    )
    return best_f1(match)
