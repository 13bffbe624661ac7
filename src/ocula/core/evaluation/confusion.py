"""Detection confusion matrix from class-agnostic matching, with box ids per cell.

Detections at or above a confidence threshold are matched to ground truth regardless of
label (COCO's greedy rule at one IoU threshold). Then:

* a matched pair adds to ``[ground-truth label, predicted label]`` (the diagonal holds
  correct detections, the rest are confusions);
* an unmatched detection is a false positive in the **background row**;
* an unmatched ground truth is a false negative in the **background column**.

Crowd regions and the detections they absorb are left out, as are detections beyond
``max_dets`` per image. Every count keeps the ids of its boxes (:meth:`ConfusionMatrix.cell`)
so a UI can open them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocula.core.evaluation.inputs import Detections, GroundTruth, LabelSpace
from ocula.core.evaluation.matching import MatchStatus, match_detections

__all__ = ["BACKGROUND", "ConfusionMatrix", "confusion_matrix"]

#: Display name of the extra row/column. In :meth:`ConfusionMatrix.cell` use ``None``.
BACKGROUND = "background"


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts ``[gt row, predicted column]`` over ``labels + [background]``.

    ``counts`` is ``(K+1, K+1)``; index ``K`` is background. ``entry_row``/``entry_col``
    give the cell of each counted event and ``entry_gt_id``/``entry_det_id`` the ids of
    its boxes (-1 for the background side), so ``counts == histogram of entries``.
    """

    labels: list[Any]
    counts: np.ndarray
    entry_row: np.ndarray
    entry_col: np.ndarray
    entry_gt_id: np.ndarray
    entry_det_id: np.ndarray
    iou_threshold: float
    score_threshold: float
    #: Image key of each entry (what :meth:`on_images` cuts by); None if not kept.
    entry_image: np.ndarray | None = None

    def on_images(self, keys: np.ndarray, labels: list[Any]) -> ConfusionMatrix:
        """The matrix of the images ``keys`` alone, over ``labels`` (a subset of this
        one's, in its order, holding every label of those images' boxes). Images are
        matched independently, so it equals building the matrix from their rows."""
        if self.entry_image is None:
            raise ValueError("this matrix keeps no entry images")
        k, new_k = len(self.labels), len(labels)
        at = {v: i for i, v in enumerate(self.labels)}
        remap = np.full(k + 1, -1, dtype=np.int64)
        remap[[at[v] for v in labels]] = np.arange(new_k)
        remap[k] = new_k  # background
        hit = np.isin(self.entry_image, keys)
        rows, cols = remap[self.entry_row[hit]], remap[self.entry_col[hit]]
        if (rows < 0).any() or (cols < 0).any():
            raise ValueError("labels must hold every label of these images' boxes")
        counts = np.zeros((new_k + 1, new_k + 1), dtype=np.int64)
        np.add.at(counts, (rows, cols), 1)
        return ConfusionMatrix(
            labels=list(labels), counts=counts, entry_row=rows, entry_col=cols,
            entry_gt_id=self.entry_gt_id[hit], entry_det_id=self.entry_det_id[hit],
            iou_threshold=self.iou_threshold, score_threshold=self.score_threshold,
            entry_image=self.entry_image[hit])

    @property
    def row_labels(self) -> list[Any]:
        """Ground-truth labels then ``"background"`` (display names of the rows)."""
        return [*self.labels, BACKGROUND]

    def index(self, label: Any | None) -> int:
        """Row/column index of ``label``; ``None`` is background."""
        return len(self.labels) if label is None else self.labels.index(label)

    def cell(self, gt_label: Any | None, pred_label: Any | None) -> tuple[np.ndarray, np.ndarray]:
        """Ids in one cell: ``(gt_ids, det_ids)``, aligned (-1 on the background side).

        ``None`` stands for background, e.g. ``cell(None, "car")`` lists the false-positive
        ``car`` detections, ``cell("car", None)`` the missed cars.
        """
        r, c = self.index(gt_label), self.index(pred_label)
        hit = (self.entry_row == r) & (self.entry_col == c)
        return self.entry_gt_id[hit], self.entry_det_id[hit]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (labels and counts; ids are available through :meth:`cell`)."""
        return {
            "labels": self.row_labels,
            "counts": self.counts.tolist(),
            "iou_threshold": self.iou_threshold,
            "score_threshold": self.score_threshold,
        }


def confusion_matrix(
    gt: GroundTruth,
    dt: Detections,
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    max_dets: int | None = 100,
    labels: list[Any] | None = None,
    pair_iou: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> ConfusionMatrix:
    """Build the confusion matrix (see the module docstring for the rules).

    Args:
        gt: ground-truth columns.
        dt: detection columns; only ``score >= score_threshold`` are used.
        iou_threshold: minimum IoU of a match.
        score_threshold: confidence cut-off applied before matching.
        max_dets: cap on detections per image (highest scores kept); None = no cap.
        labels: row/column order; default all labels of ``gt`` and ``dt``, sorted. Boxes
            with other labels are left out of the counts.
        pair_iou: optional IoU of aligned (detection row, ground-truth row) pairs, rows
            of the inputs ``dt`` and ``gt`` (see :func:`match_detections`).
    """
    space = LabelSpace(labels) if labels is not None else LabelSpace.union(gt.label, dt.label)
    kept_rows = np.flatnonzero(dt.score >= score_threshold)
    kept = dt.subset(kept_rows)
    kept_iou = None if pair_iou is None else (lambda d, g: pair_iou(kept_rows[d], g))
    match = match_detections(
        gt, kept, iou_threshold=iou_threshold, class_agnostic=True, max_dets=max_dets,
        pair_iou=kept_iou,
    )
    k = len(space)
    gk = space.index(gt.label)
    dk = space.index(kept.label)

    pair = match.det_status == MatchStatus.TP
    pair_gt = match.det_gt_index[pair]
    fp = match.det_status == MatchStatus.FP
    fn = match.gt_status == MatchStatus.FN
    rows = np.concatenate([gk[pair_gt], np.full(fp.sum(), k), gk[fn]])
    cols = np.concatenate([dk[pair], dk[fp], np.full(fn.sum(), k)])
    gt_ids = np.concatenate([gt.id[pair_gt], np.full(fp.sum(), -1), gt.id[fn]])
    det_ids = np.concatenate([kept.id[pair], kept.id[fp], np.full(fn.sum(), -1)])
    images = np.concatenate([kept.image[pair], kept.image[fp], gt.image[fn]])
    # Boxes whose label is outside an explicit label list are dropped.
    known = (rows >= 0) & (cols >= 0)
    rows, cols, gt_ids, det_ids = rows[known], cols[known], gt_ids[known], det_ids[known]
    counts = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.add.at(counts, (rows, cols), 1)
    return ConfusionMatrix(
        labels=space.tolist(),
        counts=counts,
        entry_row=rows.astype(np.int64),
        entry_col=cols.astype(np.int64),
        entry_gt_id=gt_ids.astype(np.int64),
        entry_det_id=det_ids.astype(np.int64),
        iou_threshold=float(iou_threshold),
        score_threshold=float(score_threshold),
        entry_image=images[known],
    )
