"""Evaluation functions for scenario tests ("model CI"), by name: Config -> method -> Results.

A scenario test is a slice plus criteria: an evaluation function, its arguments, a
threshold and a comparison. Each function here is a frozen ``Config`` (its arguments,
checked on construction), a method on the engine's columns and a :class:`FunctionResult`
holding the number, the value of every item and the pks behind it (true and false
positive predictions, missed ground truth), which the service turns into public ids.

The names are Nucleus' (``bbox_iou``, ``bbox_map``, ``bbox_precision``, ``bbox_recall``,
``poly_*``, ``cat_f1``), their arguments and defaults too. The numbers are the
evaluation engine's (:mod:`ocula.core.evaluation`: COCO greedy matching, COCO AP):

* ``*_precision`` / ``*_recall``: true positives over predictions / over ground truth,
  predictions kept at ``confidence >= confidence_threshold``, matched at
  ``iou_threshold``; labels must agree only with ``enforce_label_match`` (Nucleus'
  default is not to). Per item the same ratio, or None where it has no denominator.
* ``*_iou``: the sum of matched IoUs over ``max(#ground truth, #predictions)`` (what
  is unmatched on either side counts 0), per item and overall, as Nucleus weighs it.
* ``*_map``: COCO mean AP over classes at one IoU (one of .50, .55, …, .95), 101-point
  interpolated, 100 detections per item, exactly the engine's (``run.metrics``) AP.
* ``cat_f1``: F1 of the item's category prediction (the most confident one at or above
  ``confidence_threshold``) against its category annotation, ``macro``, ``micro`` or
  ``weighted`` over labels, as scikit-learn's ``f1_score`` averages them.

``bbox_*`` read boxes (and polygon or mask objects by their box), ``poly_*`` polygons
and masks by pixel IoU, ``cat_f1`` category labels. Nucleus' cuboid (LiDAR) and semantic
segmentation functions are listed with ``supported=False``: choosing one is a
:class:`~ocula.errors.NotSupportedError` naming it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ocula.core.evaluation.analyses import config_from
from ocula.core.evaluation.coco import COCO_IOU_THRESHOLDS, evaluate_coco
from ocula.core.evaluation.inputs import Detections, GroundTruth
from ocula.core.evaluation.matching import MatchStatus, match_detections
from ocula.errors import NotFoundError, NotSupportedError, ParameterError, ValidationError

__all__ = ["ARGUMENT_NAMES", "COMPARISONS", "CategoryColumns", "EvalFunction",
           "FunctionResult", "compare", "eval_function", "eval_function_names",
           "eval_functions", "function_id", "function_name"]

#: Comparison names (Nucleus' words) and the symbols Ocula also accepts.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "greater_than": lambda v, t: v > t,
    "greater_than_equal_to": lambda v, t: v >= t,
    "less_than": lambda v, t: v < t,
    "less_than_equal_to": lambda v, t: v <= t,
}
_SYMBOLS = {">": "greater_than", ">=": "greater_than_equal_to", "<": "less_than",
            "<=": "less_than_equal_to"}

# Nucleus ids of evaluation functions start with "ef_" (its client checks it).
_ID_PREFIX = "ef_"


def comparison_name(value: Any) -> str:
    """A comparison's Nucleus name from its name or its symbol (``>=``)."""
    name = _SYMBOLS.get(value, value) if isinstance(value, str) else value
    if name not in COMPARISONS:
        raise ValidationError(f"comparison must be one of {list(COMPARISONS)} or "
                              f"{list(_SYMBOLS)}, got {value!r}")
    return name


def compare(value: float | None, threshold: float | None, comparison: str) -> bool:
    """Whether ``value`` passes ``comparison`` against ``threshold``. A criterion with no
    threshold only reports its value (it passes); a value that could not be computed
    (None: nothing to measure) fails one that has a threshold."""
    if threshold is None:
        return True
    if value is None or math.isnan(value):
        return False
    return COMPARISONS[comparison](value, threshold)


@dataclass
class FunctionResult:
    """One function's number on one scenario test's items.

    ``items`` maps item pk -> the item's value (None where the item has nothing to
    measure); ``ids`` holds the pks behind the number by role (``tp_predictions``,
    ``fp_predictions``, ``fn_annotations``); ``counts`` the counts it was made from.
    """

    value: float | None
    items: dict[int, float | None] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CategoryColumns:
    """Category labels of a scope's items: one ground-truth label per item, and each
    item's category predictions with their confidences."""

    gt_item: np.ndarray
    gt_label: np.ndarray
    gt_id: np.ndarray
    dt_item: np.ndarray
    dt_label: np.ndarray
    dt_score: np.ndarray
    dt_id: np.ndarray


def _unit(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def _no_filters(config: Any) -> None:
    for name in ("annotation_filters", "prediction_filters"):
        if getattr(config, name) not in (None, [], ()):
            raise NotSupportedError(f"{name} of evaluation functions are not supported by "
                                    "Ocula: make a slice of the items instead")


@dataclass(frozen=True)
class DetectionConfig:
    """Arguments of the precision, recall and IoU functions (Nucleus' names)."""

    enforce_label_match: bool = False
    iou_threshold: float = 0.5
    confidence_threshold: float = 0.0
    annotation_filters: Any = None
    prediction_filters: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.enforce_label_match, bool):
            raise ValidationError("enforce_label_match must be true or false")
        _unit(self.iou_threshold, "iou_threshold")
        _unit(self.confidence_threshold, "confidence_threshold")
        _no_filters(self)


@dataclass(frozen=True)
class IouConfig(DetectionConfig):
    iou_threshold: float = 0.0


@dataclass(frozen=True)
class MapConfig:
    """Arguments of the mean-AP functions: the IoU of the AP (a COCO threshold)."""

    iou_threshold: float = 0.5
    annotation_filters: Any = None
    prediction_filters: Any = None

    def __post_init__(self) -> None:
        thr = _unit(self.iou_threshold, "iou_threshold")
        if not np.isclose(COCO_IOU_THRESHOLDS, thr, rtol=0, atol=1e-9).any():
            # Valid for the other functions: a relation between function and argument.
            raise ParameterError("iou_threshold of a mean AP must be one of COCO's "
                                  f"0.50, 0.55, …, 0.95, got {thr}")
        _no_filters(self)


@dataclass(frozen=True)
class F1Config:
    """Arguments of ``cat_f1``."""

    confidence_threshold: float = 0.0
    f1_method: str = "macro"
    annotation_filters: Any = None
    prediction_filters: Any = None

    def __post_init__(self) -> None:
        _unit(self.confidence_threshold, "confidence_threshold")
        if self.f1_method not in ("macro", "micro", "weighted"):
            raise ValidationError("f1_method must be 'macro', 'micro' or 'weighted', "
                                  f"got {self.f1_method!r}")
        _no_filters(self)


@dataclass(frozen=True)
class NoConfig:
    """Arguments of a function Ocula lists but cannot compute (any are accepted)."""


@dataclass(frozen=True)
class EvalFunction:
    """One registered evaluation function. ``kind`` names the sides it reads:
    ``"bbox"`` or ``"segm"`` (the engine's IoU types) or ``"category"``."""

    name: str
    kind: str
    config_type: type
    method: Callable[..., FunctionResult] | None
    summary: str
    unsupported_reason: str | None = None

    @property
    def id(self) -> str:
        return function_id(self.name)

    @property
    def supported(self) -> bool:
        return self.method is not None

    def config(self, values: Mapping[str, Any] | None = None) -> Any:
        """A config from its arguments (None: defaults); unknown arguments or bad values
        are a :class:`ValidationError`, a function Ocula cannot compute a
        :class:`NotSupportedError`."""
        if not self.supported:
            raise NotSupportedError(f"the evaluation function {self.name!r} is not "
                                    f"supported by Ocula: {self.unsupported_reason}")
        # An argument of another function is wrong for this one: a relation no schema
        # of a criterion states.
        return config_from(self.config_type, values, self.name, unknown_error=ParameterError)

    def arguments(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The full arguments (defaults filled in) as JSON-able values."""
        return dataclasses.asdict(self.config(values))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind,
                "supported": self.supported, "summary": self.summary,
                "unsupported_reason": self.unsupported_reason,
                "arguments": ({f.name: f.default for f in dataclasses.fields(self.config_type)}
                              if self.supported else {})}


# --- methods ---------------------------------------------------------------------------

PairIoU = Callable[[np.ndarray, np.ndarray], np.ndarray] | None


def _kept(dt: Detections, pair_iou: PairIoU, confidence: float) -> tuple[Detections, PairIoU]:
    """Predictions at or above ``confidence``, with a pair-IoU that reads the rows they
    had (mask IoUs are cached by row)."""
    keep = np.flatnonzero(dt.score >= confidence)
    if len(keep) == len(dt):
        return dt, pair_iou
    if pair_iou is None:
        return dt.subset(keep), None
    return dt.subset(keep), lambda d, g: pair_iou(keep[d], g)


def _match(gt: GroundTruth, dt: Detections, config: Any, pair_iou: PairIoU) -> Any:
    kept, iou = _kept(dt, pair_iou, config.confidence_threshold)
    match = match_detections(gt, kept, iou_threshold=config.iou_threshold,
                             class_agnostic=not config.enforce_label_match, max_dets=None,
                             pair_iou=iou)
    return kept, match


def _ids(match: Any) -> dict[str, list[int]]:
    return {"tp_predictions": match.det_id[match.det_status == MatchStatus.TP].tolist(),
            "fp_predictions": match.det_id[match.det_status == MatchStatus.FP].tolist(),
            "fn_annotations": match.gt_id[match.gt_status == MatchStatus.FN].tolist()}


def _ratio(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    return [None if d == 0 else float(n / d) for n, d in zip(num, den, strict=True)]


def _per_item(items: np.ndarray, image: np.ndarray,
              values: list[float | None]) -> dict[int, float | None]:
    out: dict[int, float | None] = {int(i): None for i in items.tolist()}
    out.update(zip(image.tolist(), values, strict=True))
    return out


def _precision_or_recall(recall: bool) -> Callable[..., FunctionResult]:
    def method(gt: GroundTruth, dt: Detections, config: DetectionConfig, *,
               items: np.ndarray, pair_iou: PairIoU = None) -> FunctionResult:
        _, match = _match(gt, dt, config, pair_iou)
        tp, fp, fn = match.tp, match.fp, match.fn
        den = tp + fn if recall else tp + fp
        per = match.image_fn if recall else match.image_fp
        return FunctionResult(
            value=tp / den if den else None,
            items=_per_item(items, match.image, _ratio(match.image_tp, match.image_tp + per)),
            ids=_ids(match), counts={"tp": tp, "fp": fp, "fn": fn})
    return method


def _mean_iou(gt: GroundTruth, dt: Detections, config: DetectionConfig, *,
              items: np.ndarray, pair_iou: PairIoU = None) -> FunctionResult:
    kept, match = _match(gt, dt, config, pair_iou)
    tp = match.det_status == MatchStatus.TP
    # Per item: sum of matched IoUs over max(#ground truth, #predictions), as Nucleus.
    pos = np.searchsorted(match.image, kept.image[tp])
    iou_sum = np.bincount(pos, weights=match.det_iou[tp], minlength=len(match.image))
    regular = ~(gt.iscrowd | gt.ignore)
    n_gt = np.bincount(np.searchsorted(match.image, gt.image[regular]),
                       minlength=len(match.image))
    n_dt = np.bincount(np.searchsorted(match.image, kept.image), minlength=len(match.image))
    weight = np.maximum(n_gt, n_dt)
    total = int(weight.sum())
    return FunctionResult(
        value=float(iou_sum.sum() / total) if total else None,
        items=_per_item(items, match.image, _ratio(iou_sum, weight)),
        ids=_ids(match), counts={"tp": match.tp, "fp": match.fp, "fn": match.fn,
                                 "weight": total})


def _mean_ap(gt: GroundTruth, dt: Detections, config: MapConfig, *,
             items: np.ndarray, pair_iou: PairIoU = None,
             kind: str = "bbox") -> FunctionResult:
    coco = evaluate_coco(gt, dt, pair_iou=pair_iou, kind=kind)
    t = int(np.flatnonzero(np.isclose(coco.iou_thresholds, config.iou_threshold,
                                      rtol=0, atol=1e-9))[0])
    # The engine's own per-class AP at that IoU, averaged as COCO does (classes
    # without ground truth left out).
    per_class = coco.per_class_ap(iou=float(coco.iou_thresholds[t]))
    valid = [v for v in per_class.values() if v > -1]
    return FunctionResult(
        value=float(np.mean(valid)) if valid else None,
        items={int(i): None for i in items.tolist()},
        counts={"classes": len(valid), "ground_truth": int(len(gt)),
                "predictions": int(len(dt))})


def _category_f1(cat: CategoryColumns, config: F1Config, *,
                 items: np.ndarray) -> FunctionResult:
    keep = cat.dt_score >= config.confidence_threshold
    # Each item's most confident kept prediction (first uploaded on ties).
    order = np.lexsort((np.arange(len(cat.dt_item)), -cat.dt_score))
    order = order[keep[order]]
    first: dict[int, int] = {}
    for row in order.tolist():
        first.setdefault(int(cat.dt_item[row]), row)
    truth = dict(zip(cat.gt_item.tolist(), cat.gt_label.tolist(), strict=True))
    gt_row = {int(i): r for r, i in enumerate(cat.gt_item.tolist())}
    scored = sorted(set(truth) | set(first))
    y_true = [truth.get(i) for i in scored]
    y_pred = [None if i not in first else str(cat.dt_label[first[i]]) for i in scored]
    labels = sorted({y for y in y_true + y_pred if y is not None})
    tp = {lab: 0 for lab in labels}
    fp = dict(tp)
    fn = dict(tp)
    right, wrong, missed = [], [], []
    for item, yt, yp in zip(scored, y_true, y_pred, strict=True):
        if yt is not None and yt == yp:
            tp[yt] += 1
            right.append(int(cat.dt_id[first[item]]))
            continue
        if yp is not None:
            fp[yp] += 1
            wrong.append(int(cat.dt_id[first[item]]))
        if yt is not None:
            fn[yt] += 1
            missed.append(int(cat.gt_id[gt_row[item]]))

    def f1(a: int, b: int, c: int) -> float:
        return 2 * a / (2 * a + b + c) if a + b + c else 0.0
    if not labels:
        value = None
    elif config.f1_method == "micro":
        value = f1(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    else:
        scores = [f1(tp[lab], fp[lab], fn[lab]) for lab in labels]
        if config.f1_method == "macro":
            value = float(np.mean(scores))
        else:
            support = [tp[lab] + fn[lab] for lab in labels]
            value = (float(np.average(scores, weights=support)) if sum(support) else 0.0)
    per_item: dict[int, float | None] = {int(i): None for i in items.tolist()}
    for item, yt, yp in zip(scored, y_true, y_pred, strict=True):
        per_item[item] = 1.0 if yt is not None and yt == yp else 0.0
    return FunctionResult(
        value=value, items=per_item,
        ids={"tp_predictions": right, "fp_predictions": wrong, "fn_annotations": missed},
        counts={"tp": sum(tp.values()), "fp": sum(fp.values()), "fn": sum(fn.values()),
                "labels": len(labels)})


# --- the registry ----------------------------------------------------------------------

_REGISTRY: dict[str, EvalFunction] = {}


def register_eval_function(fn: EvalFunction) -> EvalFunction:
    """Add a function under its name (a name is registered once)."""
    if fn.name in _REGISTRY:
        raise ValueError(f"evaluation function {fn.name!r} is already registered")
    _REGISTRY[fn.name] = fn
    return fn


def function_id(name: str) -> str:
    """The function's Nucleus id (``ef_`` + name: stable, no table needed)."""
    return _ID_PREFIX + name


def function_name(name_or_id: str) -> str:
    """A function's name from its name or its id."""
    if isinstance(name_or_id, str) and name_or_id.startswith(_ID_PREFIX):
        return name_or_id[len(_ID_PREFIX):]
    return name_or_id


def eval_function(name_or_id: str) -> EvalFunction:
    """The function registered under a name or id; an unknown one is a NotFoundError
    (as an unknown slice or run is)."""
    name = function_name(name_or_id)
    if not isinstance(name, str):
        raise ValidationError(f"an evaluation function is named by a string, got {name_or_id!r}")
    if name not in _REGISTRY:
        raise NotFoundError(f"unknown evaluation function {name_or_id!r}; expected one "
                            f"of {eval_function_names()}")
    return _REGISTRY[name]


def eval_function_names() -> list[str]:
    return sorted(_REGISTRY)


def eval_functions() -> list[EvalFunction]:
    return [_REGISTRY[n] for n in eval_function_names()]


for _prefix, _kind, _what in (("bbox", "bbox", "boxes"),
                              ("poly", "segm", "polygons and masks (pixel IoU)")):
    register_eval_function(EvalFunction(
        f"{_prefix}_iou", _kind, IouConfig, _mean_iou,
        f"matched IoU of {_what}, unmatched objects counting 0"))
    register_eval_function(EvalFunction(
        f"{_prefix}_precision", _kind, DetectionConfig, _precision_or_recall(False),
        f"precision of {_what} at an IoU and a confidence"))
    register_eval_function(EvalFunction(
        f"{_prefix}_recall", _kind, DetectionConfig, _precision_or_recall(True),
        f"recall of {_what} at an IoU and a confidence"))
    register_eval_function(EvalFunction(
        f"{_prefix}_map", _kind, MapConfig,
        (lambda k: lambda *a, **kw: _mean_ap(*a, **kw, kind=k))(_kind),
        f"COCO mean AP of {_what} at one IoU"))
register_eval_function(EvalFunction(
    "cat_f1", "category", F1Config, _category_f1,
    "F1 of category predictions against category annotations"))

_LIDAR = "cuboids and LiDAR point clouds are not stored by Ocula"
_SEMSEG = ("semantic segmentation (index masks scored per pixel class) is not "
           "evaluated by Ocula; instance masks are, with poly_* functions")
for _name, _why in (("cuboid_iou_2d", _LIDAR), ("cuboid_iou_3d", _LIDAR),
                    ("cuboid_precision", _LIDAR), ("cuboid_recall", _LIDAR),
                    ("seg_iou", _SEMSEG), ("seg_map", _SEMSEG), ("seg_precision", _SEMSEG),
                    ("seg_recall", _SEMSEG), ("seg_fwavacc", _SEMSEG),
                    ("segmentation_to_poly_iou", _SEMSEG),
                    ("segmentation_to_poly_map", _SEMSEG),
                    ("segmentation_to_poly_ap", _SEMSEG),
                    ("segmentation_to_poly_precision", _SEMSEG),
                    ("segmentation_to_poly_recall", _SEMSEG)):
    register_eval_function(EvalFunction(_name, "unsupported", NoConfig, None,
                                        "not supported by Ocula", _why))

#: Every argument name of any function (a request schema lists them).
ARGUMENT_NAMES = sorted({f.name for fn in _REGISTRY.values()
                         for f in dataclasses.fields(fn.config_type)})
