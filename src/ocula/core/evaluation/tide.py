"""TIDE: how much AP a run would gain if each kind of error were fixed.

Bolya et al., *TIDE: A General Toolbox for Identifying Object Detection Errors*
(ECCV 2020), reference implementation ``dbolya/tide`` (``tidecv``). Detections are
matched COCO-style at the foreground threshold ``t_f`` (0.5). Every false positive gets
exactly one error type, tested in the reference's order (the first that applies wins);
IoUs are with the regular (not crowd, not ``ignore``) ground truth of its image:

1. **Bkg** — the image has no ground truth at all;
2. **Loc** — ``t_b <= IoU < t_f`` with the best-overlapping ground truth of its class;
3. **Cls** — ``IoU >= t_f`` with a ground truth of another class;
4. **Dupe** — ``IoU >= t_f`` with a ground truth of its class that a higher-scoring
   detection already matched;
5. **Bkg** — ``IoU < t_b`` with every ground truth;
6. **Both** — anything else (``t_b <= IoU < t_f`` with another class, …).

A ground truth no detection matched is **Miss** unless a Cls or Loc error points at it
(fixing that error would find it).

The oracle fix of each type, as the reference applies it:

* Cls and Loc: among the Cls/Loc errors pointing at one unmatched ground truth, the
  highest-scoring becomes a true positive (Cls: relabelled to the ground truth's class,
  Loc: its box snapped to it); the others, and errors pointing at an already matched
  ground truth, are dropped;
* Both, Dupe, Bkg: the detection is dropped;
* Miss: the ground truth is taken out of the count (the reference's ``-1`` fix).

``dAP`` of a type is ``max(AP_fixed - AP, 0)`` with only that type fixed (the reference's
non-progressive ``fix_main_errors``). The two special errors: **FP** re-scores every true
positive 1 and every false positive 0 (perfect precision at the same recall), **FN**
takes every unmatched ground truth out of the count (perfect recall at the same
precision); their ``dAP`` is not clamped, as in the reference.

AP is COCO's at ``t_f``: 101 recall points, precision made monotone, classes with ground
truth averaged, so the base AP equals pycocotools' AP50 on the same data (tested). Where
the reference differs from COCO, this module follows COCO, so every number is a change
of the AP50 Ocula reports:

* ground truth outside COCO's "all" area range (``0..1e10``) is ignored, and so is an
  unmatched detection outside it (pycocotools);
* at most ``max_dets`` detections per image *and class* (reference: per image);
* crowd regions absorb detections as in COCO (``>=`` the threshold, crowd IoU, only when
  no regular ground truth is free); absorbed detections count neither way and are not
  errors (the reference still classifies them, and lets a Cls/Loc fix add them);
* equal scores keep COCO's order (image key, then row) in every fixed evaluation too,
  so fixing nothing gives the base AP exactly (the reference puts errors before true
  positives, hence its clamp at 0);
* the mean runs over the classes with ground truth in the base evaluation (COCO); a
  class left with no ground truth by a fix scores 0 if it still has detections, and
  drops out of the mean if not (the reference's rule); a fix that leaves no class at
  all has ``fixed_ap`` -1 and dAP 0 (the reference divides by zero);
* the interval bounds are the paper's (``t_b <= IoU < t_f``, ``IoU < t_b``); the
  reference tests ``<= t_f`` and ``<= t_b``, which only changes the name of an error at
  exactly a threshold, never a dAP (both fixes drop the detection).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ocula.core.evaluation import tide_ap
from ocula.core.evaluation.coco import COCO_AREA_RANGES
from ocula.core.evaluation.inputs import (
    Detections,
    GroundTruth,
    LabelSpace,
    factorize,
    stable_argsort,
)
from ocula.core.evaluation.kernels import box_best_ious
from ocula.core.evaluation.matching import (
    MatchStatus,
    _best_per_det,
    match_detections,
    pairs_within,
)
from ocula.errors import ParameterError, ValidationError

__all__ = [
    "ERROR_TYPES",
    "SPECIAL_TYPES",
    "TideConfig",
    "TideErrors",
    "TideResult",
    "evaluate_tide",
]

#: The six main error types, in the reference's report order.
ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "miss")
#: The two special errors: all false positives / all false negatives fixed.
SPECIAL_TYPES = ("fp", "fn")
#: TIDE's own short names, for display.
ERROR_NAMES = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg",
               "miss": "Miss", "fp": "FP", "fn": "FN"}
ERROR_DESCRIPTIONS = {
    "cls": "IoU >= t_f with a ground truth of another class",
    "loc": "t_b <= IoU < t_f with a ground truth of the right class",
    "both": "wrong class and t_b <= IoU < t_f",
    "dupe": "IoU >= t_f with a ground truth of its class already matched by a "
            "higher-scoring prediction",
    "bkg": "IoU < t_b with every ground truth",
    "miss": "ground truth that no prediction matched and no Cls/Loc fix would find",
    "fp": "every false positive (perfect precision at the same recall)",
    "fn": "every missed ground truth (perfect recall at the same precision)",
}
_CODE = {name: i for i, name in enumerate(ERROR_TYPES)}
PairIoU = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TideConfig:
    """Parameters of :func:`evaluate_tide` (TIDE's defaults)."""

    #: ``t_f``: IoU of a match, and of the Cls/Dupe tests.
    pos_threshold: float = 0.5
    #: ``t_b``: below it a detection overlaps nothing (Bkg).
    background_threshold: float = 0.1
    #: detections kept per image and class, highest scores first (COCO's 100).
    max_dets: int = 100

    def __post_init__(self) -> None:
        tf, tb = self.pos_threshold, self.background_threshold
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (tf, tb)):
            raise ValidationError("TIDE thresholds must be numbers")
        if not (0 < tb < 1 and 0 < tf <= 1):
            raise ValidationError(
                "TIDE needs 0 < background_threshold < 1 and 0 < pos_threshold <= 1, got "
                f"background_threshold={tb}, pos_threshold={tf}")
        if tb >= tf:
            raise ParameterError(
                "TIDE needs 0 < background_threshold < pos_threshold <= 1, got "
                f"background_threshold={tb}, pos_threshold={tf}")
        if isinstance(self.max_dets, bool) or not isinstance(self.max_dets, int) \
                or self.max_dets < 1:
            raise ValidationError(f"max_dets must be a positive integer, got {self.max_dets!r}")


@dataclass(frozen=True)
class TideErrors:
    """The errors of one type, as aligned columns (one row per error).

    ``det_id`` is the prediction's id (-1 for Miss); ``gt_id`` the ground truth the
    error is about (Cls/Loc: the one its fix would find; Dupe: the one already matched;
    Both: the best-overlapping; Miss: the missed one; -1 for Bkg); ``suppressor_id``
    the detection that matched it (Dupe; else -1). ``label`` is the class the error
    counts under (the predicted label; the ground truth's for Miss), ``iou`` the IoU
    with ``gt_id`` (0 without), ``becomes_tp`` whether fixing it yields a true positive.
    """

    kind: str
    det_id: np.ndarray
    gt_id: np.ndarray
    suppressor_id: np.ndarray
    image: np.ndarray
    label: np.ndarray
    score: np.ndarray
    iou: np.ndarray
    becomes_tp: np.ndarray

    def __len__(self) -> int:
        return len(self.det_id)


@dataclass(frozen=True)
class TideResult:
    """Everything :func:`evaluate_tide` computes. APs are fractions (TIDE prints ×100).

    ``delta_ap[type]`` is the mAP gained by fixing that type (six main types and
    ``fp``/``fn``); ``class_ap[k]`` / ``class_delta_ap[type][k]`` the same per class
    (``labels[k]``), NaN where the class is out of the mean. ``fixed_ap[type]`` is the mAP
    with that type fixed.
    """

    config: TideConfig
    labels: list[Any]
    ap: float
    class_ap: np.ndarray
    fixed_ap: dict[str, float]
    delta_ap: dict[str, float]
    class_delta_ap: dict[str, np.ndarray]
    errors: dict[str, TideErrors]
    num_ground_truth: np.ndarray  #: ``[K]`` regular ground truth per class
    num_detections: np.ndarray  #: ``[K]`` evaluated detections (TP or FP) per class
    num_true_positives: np.ndarray  #: ``[K]``
    fp_det_id: np.ndarray  #: every false positive (the ``fp`` special error)
    fn_gt_id: np.ndarray  #: every unmatched ground truth (the ``fn`` special error)

    def counts(self) -> dict[str, int]:
        """Number of errors of each type (``fp``/``fn``: all false positives/negatives)."""
        out = {k: len(self.errors[k]) for k in ERROR_TYPES}
        out["fp"], out["fn"] = len(self.fp_det_id), len(self.fn_gt_id)
        return out

    def listed_ids(self, max_ids: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The prediction ids, annotation ids and images that :meth:`to_dict` lists with
        the same ``max_ids``: the ones whose public names it needs."""
        def first(ids: np.ndarray) -> np.ndarray:
            return ids if max_ids is None else ids[:max_ids]
        shown = [self.errors[k] for k in ERROR_TYPES]
        pred = [first(e.det_id) for e in shown] + [first(e.suppressor_id) for e in shown]
        ann = [first(e.gt_id) for e in shown]
        images = [first(e.image) for e in shown]
        pred.append(first(self.fp_det_id))
        ann.append(first(self.fn_gt_id))

        def joined(parts: list[np.ndarray]) -> np.ndarray:
            values = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            return np.unique(values[values >= 0]) if values.dtype.kind in "iu" else \
                np.unique(values)
        return joined(pred), joined(ann), joined(images)

    def to_dict(self, *, prediction_ids: Mapping[int, Any] | None = None,
                annotation_ids: Mapping[int, Any] | None = None,
                image_ids: Mapping[Any, Any] | None = None,
                max_ids: int | None = None) -> dict[str, Any]:
        """JSON-friendly form. The ``*_ids`` mappings translate engine ids to public
        ones (missing keys pass through); ``max_ids`` caps each id list (``truncated``
        says so; counts and dAPs always cover every error)."""
        def pid(v: int) -> Any:
            return None if v < 0 else (prediction_ids or {}).get(v, v)

        def aid(v: int) -> Any:
            return None if v < 0 else (annotation_ids or {}).get(v, v)

        def cap(n: int) -> int:
            return n if max_ids is None else min(n, max_ids)

        errors: dict[str, Any] = {}
        for kind in ERROR_TYPES:
            e = self.errors[kind]
            n = cap(len(e))
            image = e.image[:n].tolist()
            errors[kind] = {
                "name": ERROR_NAMES[kind], "description": ERROR_DESCRIPTIONS[kind],
                "delta_ap": self.delta_ap[kind], "fixed_ap": self.fixed_ap[kind],
                "count": len(e), "truncated": n < len(e),
                "prediction_ids": [pid(v) for v in e.det_id[:n].tolist()],
                "annotation_ids": [aid(v) for v in e.gt_id[:n].tolist()],
                "suppressor_ids": [pid(v) for v in e.suppressor_id[:n].tolist()],
                "items": [(image_ids or {}).get(v, v) for v in image],
                "labels": e.label[:n].tolist(),
                "scores": [None if np.isnan(s) else s for s in e.score[:n].tolist()],
                "ious": e.iou[:n].tolist(),
                "becomes_tp": e.becomes_tp[:n].tolist(),
            }
        special = {
            "fp": {"ids": self.fp_det_id, "key": "prediction_ids", "map": pid},
            "fn": {"ids": self.fn_gt_id, "key": "annotation_ids", "map": aid},
        }
        specials: dict[str, Any] = {}
        for kind, s in special.items():
            ids = s["ids"]
            n = cap(len(ids))
            specials[kind] = {
                "name": ERROR_NAMES[kind], "description": ERROR_DESCRIPTIONS[kind],
                "delta_ap": self.delta_ap[kind], "fixed_ap": self.fixed_ap[kind],
                "count": len(ids), "truncated": n < len(ids),
                s["key"]: [s["map"](v) for v in ids[:n].tolist()],
            }
        # Each error list counted by label once (not a pass over it per label).
        counts = {t: _label_counts(self.errors[t].label) for t in ERROR_TYPES}
        per_class = []
        for k, label in enumerate(self.labels):
            mine = {t: int(counts[t].get(label, 0)) for t in ERROR_TYPES}
            per_class.append({
                "label": label,
                "ap": _float_or_none(self.class_ap[k]),
                "num_ground_truth": int(self.num_ground_truth[k]),
                "num_predictions": int(self.num_detections[k]),
                "num_true_positives": int(self.num_true_positives[k]),
                "delta_ap": {t: _float_or_none(self.class_delta_ap[t][k])
                             for t in (*ERROR_TYPES, *SPECIAL_TYPES)},
                "counts": mine,
            })
        return {
            "analysis": "tide", "config": asdict(self.config), "ap": self.ap,
            "num_ground_truth": int(self.num_ground_truth.sum()),
            "num_predictions": int(self.num_detections.sum()),
            "num_true_positives": int(self.num_true_positives.sum()),
            "errors": errors, "special": specials, "per_class": per_class,
        }


def _float_or_none(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def _label_counts(labels: np.ndarray) -> dict[Any, int]:
    """``{label: rows}`` (labels numbered by a dict, not sorted: an error list can hold
    a million rows)."""
    if not len(labels):
        return {}
    values, codes = factorize(labels)
    return dict(zip(values.tolist(), np.bincount(codes).tolist(), strict=True))


def evaluate_tide(
    gt: GroundTruth,
    dt: Detections,
    config: TideConfig | None = None,
    *,
    categories: Sequence[Any] | np.ndarray | None = None,
    pair_iou: PairIoU | None = None,
    match: Any = None,
) -> TideResult:
    """TIDE's error breakdown of ``dt`` against ``gt`` (see the module docstring).

    Args:
        gt, dt: the two sides as columns (crowd and ``ignore`` rows honoured as COCO does).
        config: thresholds and max-dets (:class:`TideConfig`; TIDE's defaults).
        categories: labels to evaluate, in report order (rows with other labels are
            left out, as in :func:`~ocula.core.evaluation.evaluate_coco`). Default: every
            label present, sorted.
        pair_iou: optional IoU of aligned (detection row, ground-truth row) pairs, e.g.
            mask IoU; default COCO box IoU.
        match: these sides' ``match_detections`` at ``pos_threshold`` with ``pair_iou``
            and per-class matching, if the caller has it (a commit does): used when no
            image holds more than ``max_dets`` detections of a class, the caller's
            word, and no row is left out or ignored here; else matched again.
    """
    return TideBreakdown(gt, dt, config, categories=categories, pair_iou=pair_iou,
                         match=match).result()


class TideBreakdown:
    """TIDE's classification of every error of two sides, from which
    :meth:`result` gives the breakdown of all images or of some of them. Each image's
    errors depend on that image alone, so a subset's breakdown needs no new matching or
    classification (a commit's slices); only its APs are recomputed. Arguments as
    :func:`evaluate_tide`'s."""

    def __init__(self, gt: GroundTruth, dt: Detections, config: TideConfig | None = None,
                 *, categories: Sequence[Any] | np.ndarray | None = None,
                 pair_iou: PairIoU | None = None, match: Any = None) -> None:
        cfg = config or TideConfig()
        space = LabelSpace(categories) if categories is not None else LabelSpace.union(
            gt.label, dt.label)
        g_rows = np.flatnonzero(space.index(gt.label) >= 0)
        d_rows = np.flatnonzero(space.index(dt.label) >= 0)
        if len(g_rows) < len(gt) or len(d_rows) < len(dt):
            gt, dt = gt.subset(g_rows), dt.subset(d_rows)
            if pair_iou is not None:
                outer = pair_iou
                pair_iou = lambda d, g: outer(d_rows[d], g_rows[g])  # noqa: E731
            match = None  # rows renumbered
        lo, hi = COCO_AREA_RANGES["all"]
        outside = (gt.area < lo) | (gt.area > hi)
        if outside.any():  # pycocotools ignores them, like an ``ignore`` row
            gt = gt.subset(np.arange(len(gt)))
            gt.ignore = gt.ignore | outside
            match = None
        n_cls = len(space)
        gk, dk = space.index(gt.label), space.index(dt.label)
        tf, tb = float(cfg.pos_threshold), float(cfg.background_threshold)
        m = match if match is not None else match_detections(
            gt, dt, iou_threshold=tf, max_dets=cfg.max_dets, pair_iou=pair_iou)

        images, inverse = factorize(np.concatenate([gt.image, dt.image]))
        gimg, dimg = inverse[:len(gt)], inverse[len(gt):]
        regular = ~(gt.iscrowd | gt.ignore)
        gt_used = m.gt_status == MatchStatus.TP
        det_tp = m.det_status == MatchStatus.TP
        # An unmatched detection outside COCO's "all" area range is ignored (pycocotools).
        det_fp = (m.det_status == MatchStatus.FP) & (dt.area >= lo) & (dt.area <= hi)

        # IoUs of every false positive with the regular ground truth of its image.
        fp_rows = np.flatnonzero(det_fp)
        n_dt = len(dt)
        if pair_iou is None:
            (same_max, same_arg, other_max, other_arg, used_max,
             used_arg) = box_best_ious(gt, dt, fp_rows, dimg, gimg, regular, gk, dk,
                                       gt_used, len(images))
        else:
            pd, pg = pairs_within(dimg[fp_rows], gimg)
            pd = fp_rows[pd]
            keep = regular[pg]
            pd, pg = pd[keep], pg[keep]
            piou = np.asarray(pair_iou(pd, pg), dtype=np.float64) if len(pd) else np.zeros(0)
            same = dk[pd] == gk[pg]
            same_max, same_arg = _best_per_det(n_dt, pd, pg, piou, same)
            other_max, other_arg = _best_per_det(n_dt, pd, pg, piou, ~same)
            used_max, used_arg = _best_per_det(n_dt, pd, pg, piou, same & gt_used[pg])
        has_gt = np.bincount(gimg[regular], minlength=len(images)) > 0

        f = fp_rows
        kind = np.select(
            [~has_gt[dimg[f]],
             (same_max[f] >= tb) & (same_max[f] < tf),
             other_max[f] >= tf,
             used_max[f] >= tf,
             np.maximum(same_max[f], other_max[f]) < tb],
            [_CODE["bkg"], _CODE["loc"], _CODE["cls"], _CODE["dupe"], _CODE["bkg"]],
            default=_CODE["both"]).astype(np.int64)
        best_any = np.where(same_max[f] >= other_max[f], same_arg[f], other_arg[f])
        target = np.select([kind == _CODE["loc"], kind == _CODE["cls"],
                            kind == _CODE["dupe"], kind == _CODE["both"]],
                           [same_arg[f], other_arg[f], used_arg[f], best_any], default=-1)
        safe_t = np.maximum(target, 0)
        target_iou = np.select([kind == _CODE["loc"], kind == _CODE["cls"],
                                kind == _CODE["dupe"], kind == _CODE["both"]],
                               [same_max[f], other_max[f], used_max[f],
                                np.maximum(same_max[f], other_max[f])], default=0.0)

        # BestGTMatch: of the Cls/Loc errors on one still-unmatched ground truth, the
        # highest-scoring (first in score order on ties) is the one a fix turns into a TP.
        fixable = np.isin(kind, (_CODE["cls"], _CODE["loc"])) & (target >= 0)
        fixable &= ~gt_used[safe_t] if len(gt) else False
        becomes_tp = np.zeros(len(f), dtype=bool)
        cand = np.flatnonzero(fixable)
        if len(cand):
            by = cand[np.lexsort((f[cand], -dt.score[f[cand]], target[cand]))]
            first = np.concatenate(([True], target[by][1:] != target[by][:-1]))
            becomes_tp[by[first]] = True
        usable = np.zeros(len(gt), dtype=bool)
        usable[target[fixable]] = True
        unmatched = regular & (m.gt_status == MatchStatus.FN)
        missed = np.flatnonzero(unmatched & ~usable)

        # Every error list is in score order (misses: row order), most confident first.
        fp_order = np.argsort(-dt.score[f], kind="stable")  # ties: row order (f ascends)
        errors: dict[str, TideErrors] = {}
        for name in ERROR_TYPES[:-1]:
            sel = fp_order[kind[fp_order] == _CODE[name]]
            rows = f[sel]
            sup = m.gt_det_index[safe_t[sel]] if len(gt) else np.zeros(len(sel), np.int64)
            errors[name] = TideErrors(
                kind=name, det_id=dt.id[rows],
                gt_id=np.where(target[sel] >= 0, gt.id[safe_t[sel]] if len(gt) else -1, -1),
                suppressor_id=np.where((kind[sel] == _CODE["dupe"]) & (sup >= 0),
                                       dt.id[np.maximum(sup, 0)] if n_dt else -1, -1),
                image=images[dimg[rows]], label=dt.label[rows], score=dt.score[rows],
                iou=target_iou[sel], becomes_tp=becomes_tp[sel])
        errors["miss"] = TideErrors(
            kind="miss", det_id=np.full(len(missed), -1, np.int64), gt_id=gt.id[missed],
            suppressor_id=np.full(len(missed), -1, np.int64), image=images[gimg[missed]],
            label=gt.label[missed], score=np.full(len(missed), np.nan),
            iou=np.zeros(len(missed)), becomes_tp=np.zeros(len(missed), dtype=bool))

        # The data points of AP: every TP and FP detection; fixes edit copies of them.
        pts = np.flatnonzero(det_tp | det_fp)
        p_cls, p_score, p_tp = dk[pts], dt.score[pts], det_tp[pts]
        p_img = dimg[pts]
        fp_pos = np.searchsorted(pts, f)  # each false positive's data point
        # The rankings each fix evaluates: most fixes only drop data points or turn
        # some into TPs, which keeps the others' order, so they filter the base ranking;
        # relabelling (cls) and rescoring (fp) rank again. A subset of the points keeps
        # its order in each, so an image subset filters these too.
        # The points by image then row (``pts`` ascends), from which each ranking sorts.
        by_image = stable_argsort(p_img)
        # One sort by score for both rankings of the real scores (relabelling keeps
        # them): the cls fix's points are a subset, in that order.
        by_score = tide_ap.score_order(by_image, p_score)
        base_order = tide_ap.class_ranked(by_score, p_cls)
        mine = kind == _CODE["cls"]
        cls_fixed = p_cls.copy()
        won = mine & becomes_tp
        cls_fixed[fp_pos[won]] = gk[target[won]]
        keep_cls = np.ones(len(pts), dtype=bool)
        keep_cls[fp_pos[mine & ~becomes_tp]] = False
        cls_order = tide_ap.class_ranked(by_score[keep_cls[by_score]], cls_fixed)
        self.__dict__.update(
            cfg=cfg, space=space, gt=gt, dt=dt, images=images, gimg=gimg, dimg=dimg,
            regular=regular, gk=gk, n_cls=n_cls, kind=kind, target=target,
            becomes_tp=becomes_tp, missed=missed, unmatched=unmatched, errors=errors,
            fp_rows=f, fp_order=fp_order, pts=pts, p_cls=p_cls, p_tp=p_tp, p_img=p_img,
            fp_pos=fp_pos, base_order=base_order, cls_fixed=cls_fixed, cls_order=cls_order,
            fp_rank=tide_ap.rank_from(by_image, p_cls, np.where(p_tp, 1.0, 0.0)))

    def result(self, images: np.ndarray | None = None,
               categories: Sequence[Any] | np.ndarray | None = None) -> TideResult:
        """The breakdown of the image keys ``images`` (default all), reported for
        ``categories`` (a subset of the breakdown's, in its order; default all): equal
        to evaluating those images' rows alone with those categories."""
        n_cls, gk, p_cls, p_tp = self.n_cls, self.gk, self.p_cls, self.p_tp
        if images is None:
            g_in = np.ones(len(self.gt), dtype=bool)
            d_in = np.ones(len(self.dt), dtype=bool)
        else:
            in_img = np.isin(self.images, images)
            g_in, d_in = in_img[self.gimg], in_img[self.dimg]
        p_in = d_in[self.pts]
        regular = self.regular & g_in
        missed = self.missed[g_in[self.missed]]

        def cut(order: np.ndarray) -> np.ndarray:
            return order if images is None else order[p_in[order]]

        base_order = cut(self.base_order)
        npig = np.bincount(gk[regular], minlength=n_cls).astype(np.int64)
        counted = npig > 0
        n_tp = np.bincount(p_cls[p_tp & p_in], minlength=n_cls)
        kind, fp_pos, becomes_tp = self.kind, self.fp_pos, self.becomes_tp

        def evaluate(fix: str | None) -> tuple[float, np.ndarray]:
            cls, tp, gts, order = p_cls, p_tp, npig, base_order
            if fix == "cls":
                cls, order = self.cls_fixed, cut(self.cls_order)
                tp = tp.copy()
                tp[fp_pos[(kind == _CODE[fix]) & becomes_tp]] = True
            elif fix in ("loc", "both", "dupe", "bkg"):
                mine = kind == _CODE[fix]
                tp = tp.copy()
                tp[fp_pos[mine & becomes_tp]] = True
                keep = np.ones(len(p_tp), dtype=bool)
                keep[fp_pos[mine & ~becomes_tp]] = False
                order = order[keep[order]]
            elif fix == "miss":
                gts = npig - np.bincount(gk[missed], minlength=n_cls)
            elif fix == "fp":
                order = cut(self.fp_rank)
            elif fix == "fn":
                gts = n_tp.astype(np.int64)
            return tide_ap.class_ap(cls, tp, order, gts, counted)

        ap, class_ap = evaluate(None)
        fixed_ap: dict[str, float] = {}
        delta: dict[str, float] = {}
        class_delta: dict[str, np.ndarray] = {}
        for name in (*ERROR_TYPES, *SPECIAL_TYPES):
            fixed, fixed_class = evaluate(name)
            fixed_ap[name] = fixed
            # A fix that leaves no class to average (-1, as COCO says "no ground truth";
            # the reference divides by zero) changes nothing.
            d = 0.0 if fixed < 0 or ap < 0 else fixed - ap
            cd = fixed_class - class_ap
            if name in ERROR_TYPES:  # the reference clamps the main errors only
                d, cd = max(d, 0.0), np.maximum(cd, 0.0)
            delta[name], class_delta[name] = float(d), cd
        errors = self.errors
        fp_det_id = self.dt.id[self.fp_rows[self.fp_order]]
        fn_gt_id = self.gt.id[np.flatnonzero(self.unmatched)]
        if images is not None:
            errors = {k: _errors_on(e, images) for k, e in errors.items()}
            fp_det_id = fp_det_id[d_in[self.fp_rows[self.fp_order]]]
            fn_gt_id = self.gt.id[np.flatnonzero(self.unmatched & g_in)]
        n_dets = np.bincount(p_cls[p_in], minlength=n_cls)
        labels = self.space.tolist()
        if categories is not None:
            # A category dropped here has no rows in these images: it is out of every
            # mean, so the means stay as they are.
            keep_k = self.space.index(np.asarray(categories))
            if (keep_k < 0).any():
                raise ValueError("categories must be among the breakdown's")
            labels = [labels[k] for k in keep_k.tolist()]
            class_ap, npig, n_dets, n_tp = (class_ap[keep_k], npig[keep_k], n_dets[keep_k],
                                            n_tp[keep_k])
            class_delta = {k: v[keep_k] for k, v in class_delta.items()}
        return TideResult(
            config=self.cfg, labels=labels, ap=ap, class_ap=class_ap, fixed_ap=fixed_ap,
            delta_ap=delta, class_delta_ap=class_delta, errors=errors,
            num_ground_truth=npig, num_detections=n_dets, num_true_positives=n_tp,
            fp_det_id=fp_det_id, fn_gt_id=fn_gt_id,
        )


def _errors_on(e: TideErrors, images: np.ndarray) -> TideErrors:
    keep = np.isin(e.image, images)
    return TideErrors(kind=e.kind, det_id=e.det_id[keep], gt_id=e.gt_id[keep],
                      suppressor_id=e.suppressor_id[keep], image=e.image[keep],
                      label=e.label[keep], score=e.score[keep], iou=e.iou[keep],
                      becomes_tp=e.becomes_tp[keep])
