"""Keypoint evaluation with COCO's object keypoint similarity (OKS).

pycocotools' ``COCOeval(iouType="keypoints")`` is the bbox protocol with two changes:
pairs are scored by OKS instead of IoU (``computeOks``), and a ground truth without
labelled keypoints (``num_keypoints == 0``) is ignored like a crowd region, but absorbs at
most one detection. :class:`KeypointPairOKS` computes OKS for aligned (detection, ground
truth) row pairs as the ``pair_iou`` callback of
:func:`~ocula.core.evaluation.evaluate_coco` and
:func:`~ocula.core.evaluation.match_detections`; :func:`evaluate_keypoints` runs the whole
protocol and reports pycocotools' 10 keypoint summary numbers.

Keypoints are COCO's flat triplets ``[x1, y1, v1, x2, y2, v2, ...]``, one sequence per row
(rows of different categories may have different lengths). For a pair with ground truth
``g`` and detection ``d`` (``K`` points each, per-point ``sigmas`` of ``g``'s category)::

    e_j = (dx_j² + dy_j²) / (2·sigma_j)² / (area_g + eps) / 2
    OKS = mean(exp(-e_j)) over the points with v_j > 0 in g

and when ``g`` has no point with ``v > 0``, over all ``K`` points with ``dx``/``dy`` the
distance from the detected point to ``g``'s box grown to ``[x-w, x+2w] × [y-h, y+2h]``.
The detection's ``v`` is never read.

Exactness: pycocotools computes each pair with numpy on 1-D arrays. Here pairs are
grouped by (points, visible points) and computed as 2-D arrays with the same element-wise
expressions in the same order; ``np.sum`` over the last axis of a contiguous 2-D array
adds each row exactly as ``np.sum`` adds a 1-D array of that length, so each OKS is
bit-identical (the tests compare with ``==``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from ocula.core.evaluation.coco import evaluate_coco
from ocula.core.evaluation.inputs import Detections, GroundTruth, LabelSpace
from ocula.core.evaluation.results import CocoEvaluation
from ocula.errors import ValidationError

__all__ = [
    "COCO_PERSON_SIGMAS",
    "KEYPOINT_AREA_RANGES",
    "KEYPOINT_MAX_DETS",
    "KeypointPairOKS",
    "Sigmas",
    "evaluate_keypoints",
    "keypoint_boxes",
]

#: Per-keypoint standard deviations of COCO's 17 person keypoints (pycocotools'
#: ``kpt_oks_sigmas``), built with the same expression so the floats are identical.
COCO_PERSON_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0
COCO_PERSON_SIGMAS.setflags(write=False)
#: pycocotools' ``setKpParams`` area ranges (no "small": tiny people have no keypoints).
KEYPOINT_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0**2, 1e5**2),
    "medium": (32**2, 96**2),
    "large": (96**2, 1e5**2),
}
#: pycocotools' ``setKpParams`` max detections per image and category.
KEYPOINT_MAX_DETS = (20,)

#: Sigmas per category (label -> one sigma per keypoint), or one sequence for all.
Sigmas = Mapping[Any, Sequence[float] | np.ndarray] | Sequence[float] | np.ndarray

#: Keypoint rows: one flat ``[x, y, v, ...]`` sequence per row, or an ``(N, 3K)`` array.
KeypointRows = Iterable[Sequence[float] | np.ndarray] | np.ndarray

# Pairs computed per numpy pass: bounds temporary memory whatever the number of pairs.
_PAIRS_PER_PASS = 1 << 16


def _flatten(keypoints: KeypointRows, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(points, k)``: all rows' ``(x, y, v)`` stacked as ``(total, 3)``, and ``K`` per row."""
    if isinstance(keypoints, np.ndarray) and keypoints.ndim == 2:
        arr = np.asarray(keypoints, dtype=np.float64)
        lens = np.full(len(arr), arr.shape[1], dtype=np.int64)
        flat = arr.reshape(-1)
    else:
        rows = list(keypoints)
        lens = np.fromiter(map(len, rows), np.int64, len(rows))
        flat = np.fromiter(chain.from_iterable(rows), np.float64, int(lens.sum()))
    if len(lens) != n:
        raise ValidationError(f"{name} has {len(lens)} rows, expected {n}")
    bad = np.flatnonzero((lens % 3 != 0) | (lens == 0))
    if len(bad):
        i = int(bad[0])
        raise ValidationError(f"{name} row {i} has {int(lens[i])} values; expected a "
                              "non-empty list of (x, y, v) triplets")
    return flat.reshape(-1, 3), lens // 3


def _resolve_sigmas(
    sigmas: Sigmas | None, labels: np.ndarray, k: np.ndarray, active: np.ndarray, side: str
) -> tuple[np.ndarray, np.ndarray]:
    """Squared-scale table and each row's offset into it (-1 for inactive rows).

    The table holds pycocotools' ``vars = (sigmas * 2) ** 2`` of every (category, K) in
    use, one after another.
    """
    offset = np.full(len(k), -1, dtype=np.int64)
    rows = np.flatnonzero(active)
    if len(rows) == 0:
        return np.zeros(0), offset
    shared = None
    if sigmas is not None and not isinstance(sigmas, Mapping):
        shared = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    uniq, inverse = np.unique(labels[rows], return_inverse=True)
    tables: list[np.ndarray] = []
    used = 0
    for u, label in enumerate(uniq.tolist()):
        members = rows[inverse.reshape(-1) == u]
        ks = np.unique(k[members])
        if shared is not None:
            sig = shared
        elif isinstance(sigmas, Mapping) and label in sigmas:
            sig = np.asarray(sigmas[label], dtype=np.float64).reshape(-1)
        elif int(ks[0]) == len(COCO_PERSON_SIGMAS) and len(ks) == 1:
            sig = COCO_PERSON_SIGMAS
        else:
            other = int(ks[ks != len(COCO_PERSON_SIGMAS)][0])
            raise ValidationError(
                f"category {label!r} has {other} keypoints per {side} and no sigmas; pass "
                "sigmas for it (COCO's person sigmas only fit 17 keypoints)")
        if len(ks) > 1 or int(ks[0]) != len(sig):
            bad = int(ks[ks != len(sig)][0])
            raise ValidationError(
                f"category {label!r} has {len(sig)} sigmas but a {side} with {bad} keypoints")
        if not np.all(sig > 0):
            raise ValidationError(f"sigmas of category {label!r} must be positive")
        tables.append((sig * 2) ** 2)
        offset[members] = used
        used += len(sig)
    return np.concatenate(tables), offset


class KeypointPairOKS:
    """``pair_iou(dt_rows, gt_rows)`` on keypoints: pycocotools' ``computeOks`` per pair.

    Args:
        gt: ground-truth columns; ``bbox`` and ``area`` enter OKS, ``label`` picks sigmas.
        dt: detection columns (only ``label`` is read, to check the keypoint counts).
        gt_keypoints: COCO keypoint triplets per ground-truth row (``v > 0``: labelled).
        dt_keypoints: keypoint triplets per detection row (``v`` is not read).
        sigmas: per-keypoint sigmas, as ``{label: [...]}`` or one sequence for every
            category. Default (and for labels missing from a mapping):
            :data:`COCO_PERSON_SIGMAS` for categories with 17 keypoints.
        categories: if given, only rows of these labels are checked and scored (pairs
            with other rows score 0), so other categories need no sigmas.

    A ground truth's sigmas apply to its pairs. Pairs whose keypoint counts differ (only
    possible across categories) score 0.

    Raises:
        ValidationError: a row that is not a non-empty list of triplets; a category
            without sigmas whose rows do not have 17 keypoints; a row whose keypoint count
            differs from its category's number of sigmas.
    """

    def __init__(
        self,
        gt: GroundTruth,
        dt: Detections,
        gt_keypoints: KeypointRows,
        dt_keypoints: KeypointRows,
        *,
        sigmas: Sigmas | None = None,
        categories: Sequence[Any] | np.ndarray | None = None,
    ) -> None:
        g_pts, self.gt_k = _flatten(gt_keypoints, len(gt), "gt_keypoints")
        d_pts, self.dt_k = _flatten(dt_keypoints, len(dt), "dt_keypoints")
        self.gx, self.gy = g_pts[:, 0].copy(), g_pts[:, 1].copy()
        self.dx, self.dy = d_pts[:, 0].copy(), d_pts[:, 1].copy()
        self.g_start = np.cumsum(self.gt_k) - self.gt_k
        self.d_start = np.cumsum(self.dt_k) - self.dt_k
        visible = g_pts[:, 2] > 0
        g_owner = np.repeat(np.arange(len(gt), dtype=np.int64), self.gt_k)
        #: ``(len(gt),)`` number of points with ``v > 0`` in each ground-truth row.
        self.num_visible = np.bincount(g_owner[visible], minlength=len(gt)).astype(np.int64)
        # Indices of the visible points, row after row: a row's are contiguous from
        # vis_start, so a pair's visible points are gathered without a mask.
        self.vis_points = np.flatnonzero(visible)
        self.vis_start = np.cumsum(self.num_visible) - self.num_visible

        if categories is None:
            g_active = np.ones(len(gt), dtype=bool)
            d_active = np.ones(len(dt), dtype=bool)
        else:
            space = LabelSpace(categories)
            g_active = space.index(gt.label) >= 0
            d_active = space.index(dt.label) >= 0
        table, g_var = _resolve_sigmas(sigmas, gt.label, self.gt_k, g_active, "ground truth")
        _resolve_sigmas(sigmas, dt.label, self.dt_k, d_active, "detection")
        # vars of each ground-truth point (0 for inactive rows, which are never scored).
        local = np.arange(len(g_pts), dtype=np.int64) - np.repeat(self.g_start, self.gt_k)
        point_var = np.repeat(g_var, self.gt_k)
        has = point_var >= 0
        self.g_vars = np.zeros(len(g_pts))
        self.g_vars[has] = table[point_var[has] + local[has]]
        self.g_active, self.d_active = g_active, d_active
        self.bbox, self.area = gt.bbox, gt.area

    def __call__(self, d_rows: np.ndarray, g_rows: np.ndarray) -> np.ndarray:
        d = np.asarray(d_rows, dtype=np.int64).reshape(-1)
        g = np.asarray(g_rows, dtype=np.int64).reshape(-1)
        out = np.zeros(len(d), dtype=np.float64)
        k = self.gt_k[g]
        ok = np.flatnonzero((k == self.dt_k[d]) & self.g_active[g] & self.d_active[d])
        if len(ok) == 0:
            return out
        # Group by (K, m): m visible points, or -K for the "no visible point" formula.
        nv = self.num_visible[g[ok]]
        m = np.where(nv > 0, nv, -k[ok])
        key = k[ok] * (2 * int(k.max()) + 1) + m
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        bounds = np.flatnonzero(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1],
                                                [True])))
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            members = ok[order[lo:hi]]
            mm = int(m[order[lo]])
            for a in range(0, len(members), _PAIRS_PER_PASS):
                p = members[a:a + _PAIRS_PER_PASS]
                out[p] = self._oks(d[p], g[p], mm)
        return out

    def _oks(self, d: np.ndarray, g: np.ndarray, m: int) -> np.ndarray:
        """OKS of pairs whose ground truths all have ``m`` visible points (``-K``: none of K)."""
        eps = np.spacing(1)
        area = (self.area[g] + eps)[:, None]
        if m > 0:
            gp = self.vis_points[self.vis_start[g][:, None] + np.arange(m)]
            dp = self.d_start[d][:, None] + (gp - self.g_start[g][:, None])
            dx = self.dx[dp] - self.gx[gp]
            dy = self.dy[dp] - self.gy[gp]
        else:
            m = -m
            j = np.arange(m)
            gp = self.g_start[g][:, None] + j
            dp = self.d_start[d][:, None] + j
            bb = self.bbox[g]
            # pycocotools' expressions, in its order: x0 = x - w, x1 = x + w * 2.
            x0 = (bb[:, 0] - bb[:, 2])[:, None]
            x1 = (bb[:, 0] + bb[:, 2] * 2)[:, None]
            y0 = (bb[:, 1] - bb[:, 3])[:, None]
            y1 = (bb[:, 1] + bb[:, 3] * 2)[:, None]
            xd, yd = self.dx[dp], self.dy[dp]
            dx = np.maximum(0.0, x0 - xd) + np.maximum(0.0, xd - x1)
            dy = np.maximum(0.0, y0 - yd) + np.maximum(0.0, yd - y1)
        e = (dx**2 + dy**2) / self.g_vars[gp] / area / 2
        return np.sum(np.exp(-e), axis=1) / m


def keypoint_boxes(keypoints: KeypointRows) -> np.ndarray:
    """``(N, 4)`` xywh extent of each row's points (all of them, whatever ``v``).

    pycocotools' ``loadRes`` gives a keypoint result without a ``bbox`` this box, and its
    area as the detection's area (which the area ranges test); pass it as
    :class:`~ocula.core.evaluation.Detections` ``bbox`` to evaluate such results the same
    way. (A result with a ``bbox`` keeps that box's area.)
    """
    rows = keypoints if isinstance(keypoints, np.ndarray) else list(keypoints)
    pts, k = _flatten(rows, len(rows), "keypoints")
    if len(k) == 0:
        return np.zeros((0, 4))
    start = np.cumsum(k) - k
    x0 = np.minimum.reduceat(pts[:, 0], start)
    x1 = np.maximum.reduceat(pts[:, 0], start)
    y0 = np.minimum.reduceat(pts[:, 1], start)
    y1 = np.maximum.reduceat(pts[:, 1], start)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def evaluate_keypoints(
    gt: GroundTruth,
    dt: Detections,
    gt_keypoints: KeypointRows,
    dt_keypoints: KeypointRows,
    *,
    sigmas: Sigmas | None = None,
    categories: Sequence[Any] | np.ndarray | None = None,
    num_keypoints: npt.ArrayLike | None = None,
) -> CocoEvaluation:
    """COCO keypoint evaluation, equal to pycocotools' ``COCOeval(iouType="keypoints")``.

    Args:
        gt: ground-truth columns. ``bbox`` and ``area`` (the person's segment area in COCO)
            scale OKS; crowd rows absorb any number of detections; ``ignore`` is honoured.
        dt: detection columns; ``area`` is tested against the area ranges (see
            :func:`keypoint_boxes` for what pycocotools uses when a result has no box).
        gt_keypoints, dt_keypoints: COCO keypoint triplets per row (see
            :class:`KeypointPairOKS`).
        sigmas: per-keypoint sigmas per category, or one sequence for all; default COCO's
            person sigmas for categories with 17 keypoints.
        categories: labels to evaluate, in report order (default: every label present).
        num_keypoints: per ground-truth row, the annotation's ``num_keypoints``; a row with
            0 is ignored (it counts neither way and absorbs at most one detection).
            Default: the number of points with ``v > 0``.

    Returns:
        A :class:`~ocula.core.evaluation.results.CocoEvaluation` over OKS thresholds
        .50:.95, area ranges all/medium/large and 20 detections per image and category;
        its ``stats`` are pycocotools' 10 keypoint numbers
        (:data:`~ocula.core.evaluation.results.KEYPOINT_STAT_NAMES`).
    """
    oks = KeypointPairOKS(gt, dt, gt_keypoints, dt_keypoints, sigmas=sigmas,
                          categories=categories)
    if num_keypoints is None:
        counted = oks.num_visible
    else:
        counted = np.asarray(num_keypoints).reshape(-1)
        if len(counted) != len(gt):
            raise ValidationError(f"num_keypoints has {len(counted)} rows, expected {len(gt)}")
    flagged = GroundTruth(gt.image, gt.label, gt.bbox, area=gt.area, iscrowd=gt.iscrowd,
                          id=gt.id, ignore=gt.ignore | (counted == 0))
    return evaluate_coco(
        flagged, dt, categories=categories, area_ranges=KEYPOINT_AREA_RANGES,
        max_dets=KEYPOINT_MAX_DETS, pair_iou=oks, kind="keypoints",
    )
