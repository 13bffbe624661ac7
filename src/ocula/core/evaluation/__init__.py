"""In-memory detection evaluation on numpy columns (no database, no HTTP).

* :func:`evaluate_coco` — pycocotools-exact COCO bbox evaluation: 12 summary numbers,
  per-class AP/AR, precision/recall arrays and PR curves (:class:`CocoEvaluation`).
* :func:`evaluate_keypoints` — the same for keypoints (OKS, pycocotools' 10 numbers);
  :class:`KeypointPairOKS` scores keypoint pairs for the other entry points.
* :func:`match_detections` — per-row TP/FP/FN matching at one IoU threshold, optionally
  class-agnostic or with allowed cross-label matches (:class:`MatchResult`), for the store.
* :func:`operating_point`, :func:`best_f1`, :func:`f1_curve` — precision / recall / F1 at
  a confidence threshold, and the threshold with the best F1.
* :func:`confusion_matrix` — class-agnostic matching, with the box ids in every cell.
* :func:`evaluate_tide` — TIDE's error breakdown (Cls, Loc, Both, Dupe, Bkg, Miss and the
  AP each would give back); :mod:`~ocula.core.evaluation.analyses` runs analyses by name.
* :mod:`~ocula.core.evaluation.iou` — box, mask and polygon IoU.

Inputs are :class:`GroundTruth` and :class:`Detections` (aligned columns); see
:mod:`ocula.core.evaluation.inputs`.
"""

from ocula.core.evaluation.coco import (
    COCO_AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    COCO_MAX_DETS,
    COCO_RECALL_THRESHOLDS,
    evaluate_coco,
)
from ocula.core.evaluation.confusion import BACKGROUND, ConfusionMatrix, confusion_matrix
from ocula.core.evaluation.inputs import (
    Detections,
    GroundTruth,
    LabelSpace,
    detections_from_coco,
    ground_truth_from_coco,
)
from ocula.core.evaluation.iou import box_iou, mask_iou, polygon_iou, polygon_to_mask
from ocula.core.evaluation.keypoints import (
    COCO_PERSON_SIGMAS,
    KEYPOINT_AREA_RANGES,
    KEYPOINT_MAX_DETS,
    KeypointPairOKS,
    evaluate_keypoints,
    keypoint_boxes,
)
from ocula.core.evaluation.matching import MatchResult, MatchStatus, match_detections
from ocula.core.evaluation.operating import (
    F1Curve,
    OperatingPoint,
    best_f1,
    f1_curve,
    operating_point,
    per_class_operating_points,
)
from ocula.core.evaluation.results import (
    KEYPOINT_STAT_NAMES,
    STAT_NAMES,
    CocoEvaluation,
    PRCurve,
)
from ocula.core.evaluation.tide import TideConfig, TideResult, evaluate_tide

__all__ = [
    "BACKGROUND",
    "COCO_AREA_RANGES",
    "COCO_IOU_THRESHOLDS",
    "COCO_MAX_DETS",
    "COCO_PERSON_SIGMAS",
    "COCO_RECALL_THRESHOLDS",
    "KEYPOINT_AREA_RANGES",
    "KEYPOINT_MAX_DETS",
    "KEYPOINT_STAT_NAMES",
    "STAT_NAMES",
    "TideConfig",
    "TideResult",
    "CocoEvaluation",
    "ConfusionMatrix",
    "Detections",
    "F1Curve",
    "GroundTruth",
    "KeypointPairOKS",
    "LabelSpace",
    "MatchResult",
    "MatchStatus",
    "OperatingPoint",
    "PRCurve",
    "best_f1",
    "box_iou",
    "confusion_matrix",
    "detections_from_coco",
    "evaluate_coco",
    "evaluate_keypoints",
    "evaluate_tide",
    "f1_curve",
    "ground_truth_from_coco",
    "keypoint_boxes",
    "mask_iou",
    "match_detections",
    "operating_point",
    "per_class_operating_points",
    "polygon_iou",
    "polygon_to_mask",
]
