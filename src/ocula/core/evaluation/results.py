"""Result of a COCO evaluation: the summary numbers, per-class AP/AR and PR curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "KEYPOINT_STAT_NAMES", "STAT_NAMES", "CocoEvaluation", "PRCurve", "summarize", "summary_names",
]

#: Names of :attr:`CocoEvaluation.stats` for boxes and masks, in pycocotools'
#: ``COCOeval.stats`` order.
STAT_NAMES = (
    "AP", "AP50", "AP75", "APs", "APm", "APl",
    "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)
#: Names of :attr:`CocoEvaluation.stats` for keypoints (pycocotools' ``_summarizeKps``),
#: all at the largest max-dets (20 by default).
KEYPOINT_STAT_NAMES = (
    "AP", "AP50", "AP75", "APm", "APl",
    "AR", "AR50", "AR75", "ARm", "ARl",
)


def summary_names(kind: str) -> tuple[str, ...]:
    """Names of the summary numbers for pycocotools' ``iouType`` ``kind``."""
    if kind in ("bbox", "segm"):
        return STAT_NAMES
    if kind == "keypoints":
        return KEYPOINT_STAT_NAMES
    raise ValueError(f"unknown evaluation kind {kind!r}; expected bbox, segm or keypoints")


def _mean_valid(s: np.ndarray) -> float:
    # pycocotools: mean over entries > -1, or -1 when there are none. Keeping its exact
    # expression keeps the summation order, hence bit-identical results.
    valid = s[s > -1]
    return -1.0 if len(valid) == 0 else float(np.mean(valid))


def summarize(
    precision: np.ndarray,
    recall: np.ndarray,
    iou_thresholds: np.ndarray,
    area_labels: tuple[str, ...],
    max_dets: tuple[int, ...],
    kind: str = "bbox",
) -> np.ndarray:
    """The numbers of ``COCOeval.summarize()``: 12 for ``"bbox"``/``"segm"``, 10 for
    ``"keypoints"`` (names in :func:`summary_names` order).

    Uses pycocotools' own selection rules: AP over the whole IoU range unless one IoU is
    named, the ``"all"`` area range unless stated, and -1 for a setting without any
    ground truth. Boxes use ``max_dets[2]`` (the largest) unless stated; keypoints use
    the largest max-dets throughout (pycocotools names 20, its only default).
    """
    names = summary_names(kind)

    def one(ap: bool, iou: float | None = None, area: str = "all", md: int = 100) -> float:
        aind = [i for i, label in enumerate(area_labels) if label == area]
        mind = [i for i, m in enumerate(max_dets) if m == md]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == iou_thresholds)[0]]
        s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
        return _mean_valid(s)

    if names is KEYPOINT_STAT_NAMES:
        md = max_dets[-1]
        return np.array([
            one(True, md=md),
            one(True, iou=0.5, md=md),
            one(True, iou=0.75, md=md),
            one(True, area="medium", md=md),
            one(True, area="large", md=md),
            one(False, md=md),
            one(False, iou=0.5, md=md),
            one(False, iou=0.75, md=md),
            one(False, area="medium", md=md),
            one(False, area="large", md=md),
        ], dtype=np.float64)
    big = max_dets[2] if len(max_dets) > 2 else max_dets[-1]
    stats = [
        one(True, md=big),
        one(True, iou=0.5, md=big),
        one(True, iou=0.75, md=big),
        one(True, area="small", md=big),
        one(True, area="medium", md=big),
        one(True, area="large", md=big),
        one(False, md=max_dets[0]),
        one(False, md=max_dets[1] if len(max_dets) > 1 else max_dets[-1]),
        one(False, md=big),
        one(False, area="small", md=big),
        one(False, area="medium", md=big),
        one(False, area="large", md=big),
    ]
    return np.array(stats, dtype=np.float64)


@dataclass(frozen=True)
class PRCurve:
    """Interpolated precision at each recall threshold (COCO's 101-point curve).

    ``score[i]`` is the confidence of the detection at which recall first reaches
    ``recall[i]`` (0 where it never does), so a UI can turn a point into a threshold; for
    a curve averaged over IoU thresholds, precision and score are both averages.
    """

    label: Any
    iou_threshold: float | None  #: None = averaged over all IoU thresholds
    recall: np.ndarray
    precision: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class CocoEvaluation:
    """Everything :func:`~ocula.core.evaluation.coco.evaluate_coco` computes.

    Array layouts follow pycocotools' ``COCOeval.eval``:

    * ``precision`` — ``[T, R, K, A, M]`` (IoU thresholds × recall thresholds ×
      categories × area ranges × max-dets), -1 where a category has no ground truth;
    * ``recall`` — ``[T, K, A, M]``;
    * ``scores`` — ``[T, R, K, A, M]``, confidence at each precision point.

    ``labels[k]`` names category ``k``; ``stats`` are the summary numbers in
    :attr:`stat_names` order (:data:`STAT_NAMES` for ``kind`` ``"bbox"``/``"segm"``,
    :data:`KEYPOINT_STAT_NAMES` for ``"keypoints"``).
    """

    labels: list[Any]
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    area_labels: tuple[str, ...]
    area_ranges: np.ndarray
    max_dets: tuple[int, ...]
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    stats: np.ndarray
    num_ground_truth: np.ndarray  #: ``[K, A]`` non-ignored ground truths per category
    num_detections: np.ndarray  #: ``[K]`` detections evaluated per category
    kind: str = "bbox"  #: pycocotools' ``iouType``: ``"bbox"``, ``"segm"`` or ``"keypoints"``

    @property
    def stat_names(self) -> tuple[str, ...]:
        """Names of :attr:`stats`, in order."""
        return summary_names(self.kind)

    def summary(self) -> dict[str, float]:
        """The summary numbers by name (``AP``, ``AP50``, …, ``ARl``)."""
        return dict(zip(self.stat_names, (float(v) for v in self.stats), strict=True))

    def _axis(self, area: str, max_det: int | None) -> tuple[int, int]:
        a = self.area_labels.index(area)
        m = len(self.max_dets) - 1 if max_det is None else self.max_dets.index(max_det)
        return a, m

    def _t(self, iou: float | None) -> slice | np.ndarray:
        if iou is None:
            return slice(None)
        t = np.flatnonzero(np.isclose(self.iou_thresholds, iou, rtol=0, atol=1e-12))
        if len(t) == 0:
            raise ValueError(f"IoU {iou} is not one of the evaluated thresholds")
        return t

    def per_class_ap(
        self, iou: float | None = None, area: str = "all", max_det: int | None = None
    ) -> dict[Any, float]:
        """AP of each category (default: IoU .50:.95, all areas, largest max-dets).

        A category without ground truth in that setting gets -1, as in pycocotools.
        """
        a, m = self._axis(area, max_det)
        s = self.precision[self._t(iou)][:, :, :, a, m]
        return {label: _mean_valid(s[:, :, k]) for k, label in enumerate(self.labels)}

    def per_class_ar(
        self, iou: float | None = None, area: str = "all", max_det: int | None = None
    ) -> dict[Any, float]:
        """AR of each category (default: IoU .50:.95, all areas, largest max-dets); -1 if
        the category has no ground truth."""
        a, m = self._axis(area, max_det)
        s = self.recall[self._t(iou)][:, :, a, m]
        return {label: _mean_valid(s[:, k]) for k, label in enumerate(self.labels)}

    def pr_curve(
        self, label: Any, iou: float | None = 0.5, area: str = "all", max_det: int | None = None
    ) -> PRCurve | None:
        """The 101-point PR curve of one category at one IoU (``iou=None``: mean over the
        IoU range). Returns None when the category has no ground truth."""
        k = self.labels.index(label)
        a, m = self._axis(area, max_det)
        p = self.precision[self._t(iou)][:, :, k, a, m]
        s = self.scores[self._t(iou)][:, :, k, a, m]
        if (p <= -1).all():
            return None
        return PRCurve(
            label=label,
            iou_threshold=iou,
            recall=self.recall_thresholds.copy(),
            precision=p.mean(axis=0),
            score=s.mean(axis=0),
        )

    def pr_curves(self, iou: float | None = 0.5) -> dict[Any, PRCurve]:
        """:meth:`pr_curve` for every category that has ground truth."""
        out = {}
        for label in self.labels:
            curve = self.pr_curve(label, iou)
            if curve is not None:
                out[label] = curve
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary: the summary numbers and per-class AP / AP50 / AR."""
        ap = self.per_class_ap()
        ap50 = self.per_class_ap(iou=0.5) if 0.5 in self.iou_thresholds else {}
        ar = self.per_class_ar()
        return {
            "stats": self.summary(),
            "per_class": [
                {
                    "label": label,
                    "ap": ap[label],
                    "ap50": ap50.get(label, -1.0),
                    "ar": ar[label],
                    "num_ground_truth": int(self.num_ground_truth[k, 0]),
                    "num_detections": int(self.num_detections[k]),
                }
                for k, label in enumerate(self.labels)
            ],
        }
