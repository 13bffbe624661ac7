"""The body of a run's metrics (what ``run_metrics`` answers and the run page draws),
from the two sides' columns.

Shared by the request path (sides read from the store for the asked scope) and the
commit (sides already in memory, cut to each slice's items), so a kept body and a fresh
one are the same computation.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import Connection

from ocula.core.evaluation import (
    ConfusionMatrix,
    Detections,
    F1Curve,
    GroundTruth,
    LabelSpace,
    best_f1,
    confusion_matrix,
    f1_curve,
    match_detections,
    operating_point,
    per_class_operating_points,
)
from ocula.core.evaluation.coco import CocoMatches, accumulate_coco, coco_matches
from ocula.core.evaluation.keypoints import KEYPOINT_AREA_RANGES, KEYPOINT_MAX_DETS
from ocula.core.evaluation.results import CocoEvaluation
from ocula.core.services.evaluation_links import ById, Names, confusion_queries
from ocula.core.services.evaluation_sides import label_order

__all__ = ["coco_matches_of", "confusion_of", "metrics_body", "on_rows", "rows_on_items",
           "scope_labels", "threshold_curve"]


def threshold_curve(curve: F1Curve) -> dict[str, list[float]]:
    """Precision, recall and F1 against the confidence threshold (``curve``: a match's
    :func:`f1_curve`), on a grid of 101 thresholds (0, 0.01, …, 1): the exact curve has
    a point per distinct score, too many to send for a chart. The point at ``t`` keeps
    every detection scoring ``>= t``."""
    grid = np.round(np.linspace(0.0, 1.0, 101), 2)
    # thresholds fall from the highest score: how many are >= each grid value.
    kept = np.searchsorted(-curve.thresholds, -grid, side="right")
    at = np.maximum(kept - 1, 0)
    some = (kept > 0) & (len(curve.thresholds) > 0)

    def pick(values: np.ndarray) -> list[float]:
        if len(values) == 0:
            return [0.0] * len(grid)
        return np.where(some, values[at], 0.0).astype(float).tolist()
    return {"threshold": grid.tolist(), "precision": pick(curve.precision),
            "recall": pick(curve.recall), "f1": pick(curve.f1)}


def rows_on_items(gt: GroundTruth, dt: Detections, item_pks: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The ground-truth and detection rows on ``item_pks``, ascending."""
    return (np.flatnonzero(np.isin(gt.image, item_pks)),
            np.flatnonzero(np.isin(dt.image, item_pks)))


def on_rows(gt: GroundTruth, dt: Detections, pair_iou: Any, g_rows: np.ndarray,
            d_rows: np.ndarray) -> tuple[GroundTruth, Detections, Any]:
    """The sides cut to ground-truth rows ``g_rows`` and detection rows ``d_rows``
    (:func:`rows_on_items`), with a pair IoU that still answers for the cut rows (it is
    asked by row, and rows are renumbered)."""
    cut_iou = None
    if pair_iou is not None:
        def cut_iou(d: np.ndarray, g: np.ndarray) -> np.ndarray:
            return pair_iou(d_rows[d], g_rows[g])
    return gt.subset(g_rows), dt.subset(d_rows), cut_iou


def scope_labels(coco_order: list[str], gt: GroundTruth, dt: Detections) -> list[Any]:
    """The categories COCO numbers are reported for on these sides, in order."""
    labels = label_order(coco_order, gt, dt)
    return labels if labels is not None else LabelSpace.union(gt.label, dt.label).tolist()


def coco_matches_of(gt: GroundTruth, dt: Detections, pair_iou: Any, coco_order: list[str],
                    iou_type: str) -> CocoMatches:
    """COCO's matching of the two sides with the run page's parameters for
    ``iou_type`` (keypoints: their area ranges and 20 detections an image)."""
    categories = label_order(coco_order, gt, dt)
    if iou_type == "keypoints":
        return coco_matches(gt, dt, pair_iou=pair_iou, categories=categories,
                            area_ranges=KEYPOINT_AREA_RANGES, max_dets=KEYPOINT_MAX_DETS,
                            kind="keypoints")
    return coco_matches(gt, dt, pair_iou=pair_iou, categories=categories, kind=iou_type)


def confusion_of(gt: GroundTruth, dt: Detections, pair_iou: Any, *, iou: float,
                 confidence_threshold: float) -> ConfusionMatrix:
    """The run page's confusion matrix of the two sides."""
    return confusion_matrix(gt, dt, iou_threshold=iou, score_threshold=confidence_threshold,
                            pair_iou=pair_iou)


def _operating_points(match: Any, confidence: float) -> tuple[Any, ...]:
    """``(operating point, best F1, per-class points, threshold curve)`` of a match."""
    curve = f1_curve(match)
    return (operating_point(match, confidence), best_f1(match, curve=curve),
            {p: vars(v) for p, v in per_class_operating_points(match, confidence).items()},
            threshold_curve(curve))


def metrics_body(
    conn: Connection, gt: GroundTruth, dt: Detections, pair_iou: Any, coco_order: list[str],
    *, iou: float, confidence_threshold: float, iou_type: str, run_name: str,
    committed: bool, past_labels: bool, items: str | None, names: Names,
    selects: Callable[[Connection, str, np.ndarray], bool], cells: bool,
    match: Any = None, coco: CocoEvaluation | None = None,
    confusion: ConfusionMatrix | None = None, by_id: ById | None = None,
) -> dict[str, Any]:
    """Everything the run page shows but the failure summary (see ``run_metrics``).
    ``match``, ``coco``, ``confusion``: these sides' ``match_detections`` at ``iou`` with
    its defaults, COCO evaluation (:func:`coco_matches_of`) and confusion matrix
    (:func:`confusion_of`), where the caller has them (a commit cuts its slices' from
    the whole dataset's)."""
    pending: Future[CocoEvaluation] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="ocula-metrics") as pool:
        if pair_iou is None and coco is None:
            # Boxes: COCO's matching on a worker while this thread matches, then the
            # operating points there too while this thread builds the confusion matrix
            # and its links (numpy's and the kernels' loops release the GIL: on two
            # cores the halves overlap, and take about as long). Other geometry
            # computes its pair IoUs into a cache the later calls share, so it goes
            # one step at a time.
            pending = pool.submit(lambda: accumulate_coco(
                coco_matches_of(gt, dt, None, coco_order, iou_type)))
        # All same-image pairs first: the later calls find their mask IoUs cached.
        if match is None:
            match = match_detections(gt, dt, iou_threshold=iou, pair_iou=pair_iou)
        points = pool.submit(_operating_points, match, confidence_threshold)
        cm = confusion if confusion is not None else confusion_of(
            gt, dt, pair_iou, iou=iou, confidence_threshold=confidence_threshold)
        queries = confusion_queries(
            conn, cm, run_name=run_name, committed=committed, names=names,
            confidence=confidence_threshold, selects=selects, past_labels=past_labels,
            items=items, by_id=by_id)
        if pending is not None:
            coco = pending.result()
        point, best, per_class, thresholds = points.result()
    if coco is None:
        coco = accumulate_coco(coco_matches_of(gt, dt, pair_iou, coco_order, iou_type))
    body = coco.to_dict()
    for row in body["per_class"]:
        row["at_threshold"] = per_class.get(row["label"])
    matrix: dict[str, Any] = {**cm.to_dict(), "queries": queries}
    if cells:
        # Every counted pair with its boxes' ids: as many entries as boxes, so only on
        # request (tens of MB at millions of boxes).
        ann = names("annotation", cm.entry_gt_id[cm.entry_gt_id >= 0])
        pred = names("prediction", cm.entry_det_id[cm.entry_det_id >= 0])
        matrix["cells"] = [{"row": int(r), "col": int(c), "annotation_id": ann.get(int(g)),
                            "prediction_id": pred.get(int(d))}
                           for r, c, g, d in zip(cm.entry_row, cm.entry_col, cm.entry_gt_id,
                                                 cm.entry_det_id, strict=True)]
    return {
        "iou_type": iou_type, "iou_threshold": iou,
        "confidence_threshold": confidence_threshold,
        **body,
        "operating_point": vars(point),
        "best_f1": vars(best),
        "threshold_curve": thresholds,
        "pr_curves": {str(k): {"recall": v.recall.tolist(), "precision": v.precision.tolist(),
                               "score": v.score.tolist()}
                      for k, v in coco.pr_curves(0.5).items()},
        "confusion_matrix": matrix,
    }
