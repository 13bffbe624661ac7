"""Greedy COCO matching of detections to ground truth, vectorised over groups.

COCO matches each (image, category) group independently: detections are visited in
descending score and each takes the best still-free ground truth whose IoU reaches the
threshold. Only the order *within* a group is sequential, so the kernel here visits
detection rank 0 of every group at once, then rank 1 of every group, and so on; every
step is a handful of numpy operations over all groups, all IoU thresholds and all area
ranges together. The Python loop runs ``max detections per group`` times (≤ 100 with
COCO's defaults), independent of the number of images.

:func:`match_detections` is the entry point for the store: one IoU threshold, optional
class-agnostic or cross-label matching, and per-row results it can write back. For boxes
it runs a compiled per-image loop instead (:mod:`ocula.core.evaluation.kernels`, equal
bit for bit); the pair path serves any other ``pair_iou`` (masks, OKS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from ocula.core.evaluation.inputs import (
    Detections,
    GroundTruth,
    LabelSpace,
    factorize,
    stable_argsort,
)
from ocula.core.evaluation.kernels import box_rows, match_boxes_per_image, offsets
from ocula.errors import ValidationError

__all__ = [
    "MatchResult",
    "MatchStatus",
    "greedy_match",
    "match_detections",
    "pairs_within",
    "rank_within",
]

# COCO caps thresholds just below 1 so that an IoU threshold of 1.0 still matches
# numerically perfect boxes.
_MAX_THRESHOLD = 1 - 1e-10
# Keys pack "is a regular (not ignored) gt" above the pair's position; positions < 2**40.
_REGULAR_BIT = np.int64(1) << np.int64(40)


def by_key_then_score(key: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Rows ordered by integer ``key``, then descending ``score``, ties in row order:
    ``np.lexsort((-score, key))`` as two stable sorts (the key's a radix sort,
    :func:`~ocula.core.evaluation.inputs.stable_argsort`), ~25% less than lexsort's
    indirect passes on 2M rows and more with narrow keys."""
    by_score = np.argsort(-score, kind="stable")
    return by_score[stable_argsort(key[by_score])]


def rank_within(group: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order rows by ``(group, descending score)`` and number them within their group.

    The sort is stable, so equal scores keep row order, exactly like pycocotools'
    ``np.argsort(-scores, kind="mergesort")``.

    Returns:
        ``(order, rank)``: ``order`` lists row indices sorted by group then score;
        ``rank[i]`` is row ``order[i]``'s 0-based position inside its group.
    """
    order = by_key_then_score(group, score)
    g = group[order]
    first = np.searchsorted(g, g, side="left")
    return order, np.arange(len(order), dtype=np.int64) - first


def pairs_within(det_group: np.ndarray, gt_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, ground truth) pair sharing a group key.

    Returns:
        ``(pair_det, pair_gt)`` index arrays, sorted by detection and, for one detection,
        by ascending ground-truth index.
    """
    gt_order = stable_argsort(gt_group)
    sorted_gt = gt_group[gt_order]
    lo = np.searchsorted(sorted_gt, det_group, side="left")
    hi = np.searchsorted(sorted_gt, det_group, side="right")
    counts = hi - lo
    total = int(counts.sum())
    pair_det = np.repeat(np.arange(len(det_group), dtype=np.int64), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_gt = gt_order[np.repeat(lo, counts) + offsets]
    return pair_det, pair_gt


def greedy_match(
    det_rank: np.ndarray,
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    pair_iou: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """COCO's greedy matching for many groups, thresholds and ignore settings at once.

    Args:
        det_rank: ``(D,)`` visiting order of each detection inside its group (0 first).
            Two detections that can compete for one ground truth must have different ranks.
        pair_det, pair_gt, pair_iou: candidate pairs (detection index, ground-truth index,
            IoU). Only listed pairs can match.
        gt_ignore: ``(G, A)`` ignore flag of each ground truth under ``A`` settings (COCO:
            crowd or outside the area range). Ignored ground truth is only used when no
            regular one is available; detections it absorbs count neither way.
        gt_crowd: ``(G,)`` crowd flags; a crowd ground truth can absorb any number of
            detections, any other ground truth at most one.
        thresholds: ``(T,)`` IoU thresholds; a pair matches when ``iou >= threshold``.

    Returns:
        ``(T, A, D)`` int64 index of the matched ground truth, or -1.

    Ground-truth indices must follow the original row order: among equal IoUs the higher
    index wins, mirroring the ``<`` comparison in pycocotools' scan.
    """
    n_det = len(det_rank)
    n_gt, n_area = gt_ignore.shape
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), _MAX_THRESHOLD)
    n_thr = len(thr)
    n_set = n_thr * n_area
    # Settings-major layout (row s = t·A + a): the per-detection reductions below then
    # run along contiguous memory, and callers get one row per setting.
    out = np.full((n_set, n_det), -1, dtype=np.int64)
    if len(pair_det) == 0 or n_thr == 0:
        return out.reshape(n_thr, n_area, n_det)
    # A pair below the lowest threshold can never be chosen: drop it before the loop
    # (most same-class pairs in an image do not overlap at all).
    useful = pair_iou >= thr.min()
    pair_det, pair_gt, pair_iou = pair_det[useful], pair_gt[useful], pair_iou[useful]
    if len(pair_det) == 0:
        return out.reshape(n_thr, n_area, n_det)
    prank = det_rank[pair_det]
    # Sort by (rank, detection, iou, gt): each rank's pairs are contiguous, each
    # detection's pairs form one segment, and inside a segment a later position means
    # higher IoU, then higher gt index. The best pair is then the maximum position.
    order = np.lexsort((pair_gt, pair_iou, pair_det, prank))
    pd, pg, prank = pair_det[order], pair_gt[order], prank[order]
    passes = pair_iou[order][None, :] >= thr[:, None]  # (T, P)
    position = np.arange(len(pd), dtype=np.int64)[None, :]
    key_base = position + np.where(gt_ignore[pg].T, 0, _REGULAR_BIT)  # (A, P)
    taken = np.zeros((n_thr, n_area, n_gt), dtype=bool)
    taken_flat = taken.reshape(n_set, n_gt)
    n_ranks = int(prank[-1]) + 1
    bounds = np.searchsorted(prank, np.arange(n_ranks + 1))
    for r in range(n_ranks):
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        if lo == hi:
            continue
        sd, sg = pd[lo:hi], pg[lo:hi]
        starts = np.flatnonzero(np.concatenate(([True], sd[1:] != sd[:-1])))
        free = passes[:, None, lo:hi] & ~taken[:, :, sg]  # (T, A, p)
        key = np.where(free, key_base[None, :, lo:hi], -1).reshape(n_set, hi - lo)
        best = np.maximum.reduceat(key, starts, axis=1)  # (S, n)
        hit = best >= 0
        gsel = pg[np.where(hit, best & (_REGULAR_BIT - 1), 0)]
        out[:, sd[starts]] = np.where(hit, gsel, -1)
        ss, nn = np.nonzero(hit & ~gt_crowd[gsel])
        taken_flat[ss, gsel[ss, nn]] = True
    return out.reshape(n_thr, n_area, n_det)


# --- matching for the store ------------------------------------------------------------


class MatchStatus(IntEnum):
    """Outcome of one row in :class:`MatchResult` (``status.name.lower()`` for display)."""

    TP = 1  #: detection matched / ground truth found
    FP = 2  #: detection matched nothing
    FN = 3  #: ground truth matched by nothing
    #: crowd or ``ignore`` ground truth, or a detection absorbed by one: counts neither way
    IGNORED = 4
    SKIPPED = 5  #: detection beyond ``max_dets``: not evaluated (COCO drops it)


@dataclass(frozen=True)
class MatchResult:
    """Per-row outcome of :func:`match_detections`; arrays align with the input rows.

    Detection columns (length ``len(dt)``): ``det_id``, ``det_label``, ``det_score``,
    ``det_status`` (:class:`MatchStatus` codes), ``det_gt_id`` / ``det_gt_index`` (id and row
    of the matched ground truth, -1 if none), ``det_iou`` (IoU with it, 0 if none),
    ``det_best_iou`` / ``det_best_gt_id`` (highest IoU with any non-crowd ground truth of
    the image, whatever its label, and which one; 0 / -1 if the image has none).

    Ground-truth columns (length ``len(gt)``): ``gt_id``, ``gt_label``, ``gt_status``,
    ``gt_det_id`` / ``gt_det_index`` (matched detection; for a crowd region the
    highest-scoring detection it absorbed), ``gt_iou``, ``gt_det_score`` (NaN if none).

    Image columns: ``image`` (sorted distinct image keys of both inputs) with ``image_tp``,
    ``image_fp``, ``image_fn`` counts.
    """

    iou_threshold: float
    class_agnostic: bool
    det_id: np.ndarray
    det_label: np.ndarray
    det_score: np.ndarray
    det_status: np.ndarray
    det_gt_id: np.ndarray
    det_gt_index: np.ndarray
    det_iou: np.ndarray
    det_best_iou: np.ndarray
    det_best_gt_id: np.ndarray
    gt_id: np.ndarray
    gt_label: np.ndarray
    gt_status: np.ndarray
    gt_det_id: np.ndarray
    gt_det_index: np.ndarray
    gt_iou: np.ndarray
    gt_det_score: np.ndarray
    image: np.ndarray
    image_tp: np.ndarray
    image_fp: np.ndarray
    image_fn: np.ndarray

    @property
    def tp(self) -> int:
        """Number of true-positive detections."""
        return int(np.count_nonzero(self.det_status == MatchStatus.TP))

    @property
    def fp(self) -> int:
        """Number of false-positive detections (ignored and skipped ones excluded)."""
        return int(np.count_nonzero(self.det_status == MatchStatus.FP))

    @property
    def fn(self) -> int:
        """Number of ground truths left unmatched (crowd and ``ignore`` rows excluded)."""
        return int(np.count_nonzero(self.gt_status == MatchStatus.FN))

    def on_rows(self, gt_rows: np.ndarray, det_rows: np.ndarray, images: np.ndarray
                ) -> MatchResult:
        """This result cut to the image keys ``images``, whose ground-truth and detection
        rows (ascending) are ``gt_rows`` and ``det_rows``. Images are matched
        independently, so the result equals matching the cut sides again, at a fraction
        of the cost (a commit's slices)."""
        g = np.asarray(gt_rows, dtype=np.int64)
        d = np.asarray(det_rows, dtype=np.int64)

        def renumber(index: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
            new = np.full(n + 1, -1, dtype=np.int64)  # slot n answers for -1
            new[rows] = np.arange(len(rows))
            return new[np.where(index >= 0, index, n)]

        at = np.flatnonzero(np.isin(self.image, images))
        return MatchResult(
            iou_threshold=self.iou_threshold, class_agnostic=self.class_agnostic,
            det_id=self.det_id[d], det_label=self.det_label[d], det_score=self.det_score[d],
            det_status=self.det_status[d], det_gt_id=self.det_gt_id[d],
            det_gt_index=renumber(self.det_gt_index[d], g, len(self.gt_id)),
            det_iou=self.det_iou[d], det_best_iou=self.det_best_iou[d],
            det_best_gt_id=self.det_best_gt_id[d],
            gt_id=self.gt_id[g], gt_label=self.gt_label[g], gt_status=self.gt_status[g],
            gt_det_id=self.gt_det_id[g],
            gt_det_index=renumber(self.gt_det_index[g], d, len(self.det_id)),
            gt_iou=self.gt_iou[g], gt_det_score=self.gt_det_score[g],
            image=self.image[at], image_tp=self.image_tp[at], image_fp=self.image_fp[at],
            image_fn=self.image_fn[at])

    def det_status_names(self) -> np.ndarray:
        """Detection statuses as strings (``"tp"``, ``"fp"``, ``"ignored"``, ``"skipped"``)."""
        return _status_names(self.det_status)

    def gt_status_names(self) -> np.ndarray:
        """Ground-truth statuses as strings (``"tp"``, ``"fn"``, ``"ignored"``)."""
        return _status_names(self.gt_status)


#: Each status code's name (code 0: none), as match rows store it.
STATUS_NAMES: tuple[str, ...] = ("", *(s.name.lower() for s in MatchStatus))


def _status_names(codes: np.ndarray) -> np.ndarray:
    return np.array(STATUS_NAMES, dtype=object)[codes]


def _allowed_pairs(
    space: LabelSpace, allowed: Iterable[Mapping[str, Any]] | None
) -> np.ndarray:
    """Codes ``gt_index * K + pred_index`` of the allowed cross-label pairs."""
    codes: list[int] = []
    k = len(space)
    for item in allowed or []:
        try:
            g, p = item["ground_truth_label"], item["model_prediction_label"]
        except (KeyError, TypeError) as exc:
            raise ValidationError(
                "allowed_label_matches entries need 'ground_truth_label' and "
                "'model_prediction_label'"
            ) from exc
        gi = space.index(np.asarray([g]))[0] if _same_kind(space, g) else -1
        pi = space.index(np.asarray([p]))[0] if _same_kind(space, p) else -1
        if gi >= 0 and pi >= 0:
            codes.append(int(gi) * k + int(pi))
    return np.asarray(codes, dtype=np.int64)


def _same_kind(space: LabelSpace, value: Any) -> bool:
    numeric = space.labels.dtype.kind in "iub"
    return isinstance(value, int | np.integer) == numeric


def match_detections(
    gt: GroundTruth,
    dt: Detections,
    *,
    iou_threshold: float = 0.5,
    class_agnostic: bool = False,
    allowed_label_matches: Iterable[Mapping[str, Any]] | None = None,
    max_dets: int | None = 100,
    pair_iou: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> MatchResult:
    """Match detections to ground truth at one IoU threshold, COCO-style, per image.

    Detections are visited in descending score (stable on ties); each takes the free
    ground truth with the highest IoU ``>= iou_threshold`` among those it may match, taking
    a crowd region or an ``ignore`` row only when no regular ground truth qualifies. Crowd
    regions absorb any number of detections, ``ignore`` rows one each; the detections
    they absorb count neither as TP nor FP (:attr:`MatchStatus.IGNORED`).

    Args:
        gt: ground truth columns.
        dt: detection columns.
        iou_threshold: minimum IoU of a match.
        class_agnostic: if true any detection may match any ground truth of its image.
        allowed_label_matches: extra label pairs that may match, as Nucleus sends them:
            ``[{"ground_truth_label": "car", "model_prediction_label": "truck"}, ...]``
            (a ``truck`` prediction may then match a ``car`` box). Same labels always match.
        max_dets: keep only the top ``max_dets`` detections per image and predicted label
            (per image when ``class_agnostic``), as COCO does; the rest are
            :attr:`MatchStatus.SKIPPED`. ``None`` keeps all.
        pair_iou: optional IoU function for aligned (detection row, ground-truth row)
            pairs, as in :func:`~ocula.core.evaluation.evaluate_coco` (e.g. mask IoU);
            default is COCO box IoU on ``bbox``.

    Returns:
        A :class:`MatchResult` whose arrays align with the rows of ``gt`` and ``dt``.
    """
    if max_dets is not None and max_dets < 0:
        raise ValidationError("max_dets must be >= 0 or None")
    n_gt, n_dt = len(gt), len(dt)
    space = LabelSpace.union(gt.label, dt.label)
    k = max(len(space), 1)
    gk = space.index(gt.label)
    dk = space.index(dt.label)
    images, inverse = factorize(np.concatenate([gt.image, dt.image]))
    gimg, dimg = inverse[:n_gt], inverse[n_gt:]

    # Which detections are evaluated: COCO's top-N per image and category.
    if max_dets is None:
        evaluated = np.ones(n_dt, dtype=bool)
    else:
        cap_group = dimg if class_agnostic else dimg * k + dk
        order, rank = rank_within(cap_group, dt.score)
        evaluated = np.zeros(n_dt, dtype=bool)
        evaluated[order[rank < max_dets]] = True

    allowed = _allowed_pairs(space, allowed_label_matches)
    ignored_gt = gt.iscrowd | gt.ignore
    if pair_iou is None:
        matched, det_iou, best_iou, best_gt = _match_boxes(
            gt, dt, gimg, dimg, len(images), gk, dk, k, evaluated, ignored_gt,
            class_agnostic, allowed, float(iou_threshold))
    else:
        matched, det_iou, best_iou, best_gt = _match_pairs(
            gt, dt, gimg, dimg, gk, dk, k, evaluated, ignored_gt, class_agnostic, allowed,
            float(iou_threshold), pair_iou)
    has = matched >= 0
    safe = np.where(has, matched, 0)
    det_status = np.full(n_dt, MatchStatus.FP, dtype=np.int8)
    det_status[has] = np.where(ignored_gt[safe[has]], MatchStatus.IGNORED, MatchStatus.TP)
    det_status[~evaluated] = MatchStatus.SKIPPED

    # Invert: each ground truth's detection (for crowds, the highest-scoring absorbed one,
    # which is the first visited).
    gt_det = np.full(n_gt, -1, dtype=np.int64)
    det_rows = np.flatnonzero(has)
    if len(det_rows):
        by = np.lexsort((det_rows, -dt.score[det_rows], matched[det_rows]))
        rows = det_rows[by]
        targets = matched[rows]
        first = np.concatenate(([True], targets[1:] != targets[:-1]))
        gt_det[targets[first]] = rows[first]
    gt_has = gt_det >= 0
    gt_status = np.where(gt_has, MatchStatus.TP, MatchStatus.FN).astype(np.int8)
    gt_status[ignored_gt] = MatchStatus.IGNORED
    gt_iou = np.zeros(n_gt, dtype=np.float64)
    gt_iou[gt_has] = det_iou[gt_det[gt_has]]
    gt_det_score = np.full(n_gt, np.nan)
    gt_det_score[gt_has] = dt.score[gt_det[gt_has]]

    n_img = len(images)
    return MatchResult(
        iou_threshold=float(iou_threshold),
        class_agnostic=class_agnostic,
        det_id=dt.id,
        det_label=dt.label,
        det_score=dt.score,
        det_status=det_status,
        det_gt_id=np.where(has, gt.id[safe] if n_gt else -1, -1),
        det_gt_index=matched,
        det_iou=det_iou,
        det_best_iou=best_iou,
        det_best_gt_id=np.where(best_gt >= 0, gt.id[np.maximum(best_gt, 0)] if n_gt else -1, -1),
        gt_id=gt.id,
        gt_label=gt.label,
        gt_status=gt_status,
        gt_det_id=np.where(gt_has, dt.id[np.maximum(gt_det, 0)] if n_dt else -1, -1),
        gt_det_index=gt_det,
        gt_iou=gt_iou,
        gt_det_score=gt_det_score,
        image=images,
        image_tp=np.bincount(dimg[det_status == MatchStatus.TP], minlength=n_img),
        image_fp=np.bincount(dimg[det_status == MatchStatus.FP], minlength=n_img),
        image_fn=np.bincount(gimg[gt_status == MatchStatus.FN], minlength=n_img),
    )


def _match_boxes(gt: GroundTruth, dt: Detections, gimg: np.ndarray, dimg: np.ndarray,
                 n_img: int, gk: np.ndarray, dk: np.ndarray, k: int, evaluated: np.ndarray,
                 ignored_gt: np.ndarray, class_agnostic: bool, allowed: np.ndarray,
                 threshold: float) -> tuple[np.ndarray, ...]:
    """Box matching by the compiled per-image loop (:mod:`.kernels`): no pair arrays."""
    # Visiting order inside an image: descending score, earlier row first (the numpy
    # path visits per image and label; labels that cannot match never compete).
    d_rows = by_key_then_score(dimg, dt.score)
    g_rows = stable_argsort(gimg)
    return match_boxes_per_image(
        offsets(dimg, n_img), offsets(gimg, n_img), d_rows.astype(np.int64, copy=False),
        g_rows.astype(np.int64, copy=False), box_rows(dt.bbox), box_rows(gt.bbox),
        dk.astype(np.int64, copy=False), gk.astype(np.int64, copy=False), evaluated,
        np.asarray(gt.iscrowd, dtype=bool), ignored_gt, bool(class_agnostic),
        np.unique(allowed).astype(np.int64), int(k), min(threshold, _MAX_THRESHOLD))


def _match_pairs(gt: GroundTruth, dt: Detections, gimg: np.ndarray, dimg: np.ndarray,
                 gk: np.ndarray, dk: np.ndarray, k: int, evaluated: np.ndarray,
                 ignored_gt: np.ndarray, class_agnostic: bool, allowed: np.ndarray,
                 threshold: float, iou_of: Callable[[np.ndarray, np.ndarray], np.ndarray]
                 ) -> tuple[np.ndarray, ...]:
    """Matching through candidate pairs and an IoU function of them (masks, OKS)."""
    n_dt = len(dt)
    # Every pair on the same image: the best IoU with any box is reported even for
    # detections that may not match it.
    pair_det, pair_gt = pairs_within(dimg, gimg)
    ious = np.asarray(iou_of(pair_det, pair_gt), dtype=np.float64)
    best_iou, best_gt = _best_per_det(n_dt, pair_det, pair_gt, ious, ~gt.iscrowd[pair_gt])
    if class_agnostic:
        compatible = np.ones(len(pair_det), dtype=bool)
    else:
        compatible = gk[pair_gt] == dk[pair_det]
        if len(allowed):
            compatible |= np.isin(gk[pair_gt] * k + dk[pair_det], allowed)
    usable = compatible & evaluated[pair_det]
    # Visiting order: per image when labels can cross, else per image and label (fewer
    # loop steps, identical result since those groups cannot interact).
    visit_group = dimg if (class_agnostic or len(allowed)) else dimg * k + dk
    vorder, vrank = rank_within(visit_group, dt.score)
    det_rank = np.empty(n_dt, dtype=np.int64)
    det_rank[vorder] = vrank
    matched = greedy_match(det_rank, pair_det[usable], pair_gt[usable], ious[usable],
                           ignored_gt[:, None], gt.iscrowd,
                           np.array([threshold], dtype=np.float64))[0, 0]
    has = matched >= 0
    det_iou = np.zeros(n_dt, dtype=np.float64)
    if has.any():
        det_iou[has] = iou_of(np.flatnonzero(has), matched[has])
    return matched, det_iou, best_iou, best_gt


def _best_per_det(
    n_det: int,
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    pair_iou: np.ndarray,
    eligible: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Highest IoU per detection over eligible pairs, and the first gt reaching it."""
    best = np.zeros(n_det, dtype=np.float64)
    which = np.full(n_det, -1, dtype=np.int64)
    pd, pg, pi = pair_det[eligible], pair_gt[eligible], pair_iou[eligible]
    if len(pd) == 0:
        return best, which
    # pairs_within yields pairs sorted by detection, so each detection is one segment.
    starts = np.flatnonzero(np.concatenate(([True], pd[1:] != pd[:-1])))
    dets = pd[starts]
    seg_max = np.maximum.reduceat(pi, starts)
    best[dets] = seg_max
    at_max = pi == seg_max[np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(pd)]))]
    candidate = np.where(at_max, np.arange(len(pd)), len(pd))
    first = np.minimum.reduceat(candidate, starts)
    which[dets] = np.where(seg_max > 0, pg[np.minimum(first, len(pd) - 1)], -1)
    return best, which
