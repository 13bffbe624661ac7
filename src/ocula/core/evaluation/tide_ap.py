"""COCO's interpolated AP over TIDE's data points (:mod:`.tide`): every fix evaluates
the same points in another order or with some of them changed, so the points are
ranked once as pycocotools ranks detections and each evaluation reads that ranking."""

from __future__ import annotations

import numpy as np

from ocula.core.evaluation.coco import COCO_RECALL_THRESHOLDS
from ocula.core.evaluation.inputs import stable_argsort

__all__ = ["class_ap", "class_ranked", "rank_from", "score_order"]

_EPS = np.spacing(1)


def rank_from(by_image: np.ndarray, cls: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The points ``by_image`` lists (in image key then row order) by class, then
    descending score, ties by image key then row (pycocotools' order): what
    ``np.lexsort((row, img, -score, cls))`` gives on them, as two stable sorts. One
    ordering by image serves every ranking of a breakdown and any subset of it (a subset
    of that list keeps its order). Scores of two values (a ranking by TP) are a stable
    partition, not a sort; the class sort is a radix sort (``stable_argsort``)."""
    return class_ranked(score_order(by_image, score), cls)


def score_order(by_image: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The first step of :func:`rank_from`: the points ``by_image`` lists by descending
    score, ties in their listed order. Any subset of it, in its order, is that subset's
    own ``score_order``, so rankings of the same scores share one sort."""
    o = by_image
    values = score[o]
    if len(o) and bool(((values == 0.0) | (values == 1.0)).all()):
        top = values == 1.0
        return np.concatenate((o[top], o[~top]))
    return o[np.argsort(-values, kind="stable")]


def class_ranked(by_score: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """The last step of :func:`rank_from`: a :func:`score_order` by class, stably."""
    return by_score[stable_argsort(cls[by_score])]


def class_ap(cls: np.ndarray, tp: np.ndarray, order: np.ndarray, npig: np.ndarray,
             counted: np.ndarray) -> tuple[float, np.ndarray]:
    """COCO's interpolated AP at one IoU: ``(mean AP, per-class AP)`` of the data points
    ``order`` lists, in :func:`rank`'s order.

    Classes outside ``counted`` (no ground truth in the base evaluation) are left out; a
    counted class with no ground truth left scores 0 if it has data points, else it is
    left out too. The mean is taken exactly as pycocotools' ``summarize`` takes it (over
    the ``R x K`` precision entries in that order), so the base equals its AP50 to the
    last bit.
    """
    n_cls = len(npig)
    rec = COCO_RECALL_THRESHOLDS
    precision = -np.ones((len(rec), n_cls))
    cls_s, tp_s = cls[order], tp[order]
    bounds = np.searchsorted(cls_s, np.arange(n_cls + 1))
    for k in np.flatnonzero(counted):
        seg = tp_s[bounds[k]:bounds[k + 1]]
        if npig[k] <= 0:
            if len(seg):
                precision[:, k] = 0.0
            continue
        q = np.zeros(len(rec))
        if len(seg):
            tps = np.cumsum(seg).astype(np.float64)
            fps = np.cumsum(~seg).astype(np.float64)
            rc = tps / npig[k]
            pr = tps / (fps + tps + _EPS)
            pr = np.maximum.accumulate(pr[::-1])[::-1]
            inds = np.searchsorted(rc, rec, side="left")
            hit = inds < len(seg)
            q[hit] = pr[inds[hit]]
        precision[:, k] = q
    valid = precision[precision > -1]
    mean = -1.0 if len(valid) == 0 else float(np.mean(valid))
    # One 1-D mean per class (a mean along axis 0 would sum in another order).
    per_class = np.array([float(np.mean(precision[:, k].copy())) if precision[0, k] > -1
                          else np.nan for k in range(n_cls)])
    return mean, per_class
