"""Analyses of a model run by name (:mod:`ocula.core.evaluation.analyses`), on the sides
its metrics read: the TIDE error breakdown.

Results carry public ids (``pred_…``, ``ann_…``, item reference ids) behind every
count, so an app can open the boxes behind each error.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, select

from ocula.core.evaluation import Detections, GroundTruth
from ocula.core.evaluation.analyses import get_analysis
from ocula.core.evaluation.tide import TideBreakdown
from ocula.core.services import run_results
from ocula.core.services.evaluation import EvaluationService
from ocula.core.services.evaluation_links import MAX_LINK_QUERY, MIN_ID_CHARS
from ocula.core.services.evaluation_sides import label_order
from ocula.core.services.metrics_body import scope_labels
from ocula.core.store import schema as t
from ocula.errors import ValidationError

__all__ = ["AnalysisService"]

# Keypoint OKS has no TIDE definition (the paper and reference cover boxes and masks).
_ANALYSIS_IOU_TYPES = ("bbox", "segm")


# The most ids of each kind the run page asks for: no more than a link's query holds
# (runtide.js asks for MAX_LINK_QUERY / 5, the shortest id's characters).
RUN_PAGE_MAX_IDS = MAX_LINK_QUERY // MIN_ID_CHARS


def _kind(name: str, cfg: Any, iou_type: str, max_ids: int | None) -> str:
    """The ``run_results`` kind an analysis' answer is kept under, per its options."""
    return "tide:" + hashlib.blake2b(orjson.dumps(
        [name, dataclasses.asdict(cfg), iou_type, max_ids],
        option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


class AnalysisService(EvaluationService):
    def _analyse(self, name: str, run_id: str, config: Any, *, slice_name: str | None,
                 annotation_version: int | str | None, iou_type: str,
                 max_ids: int | None, query: str | None = None) -> dict[str, Any]:
        analysis = get_analysis(name, "run")
        cfg = analysis.config(config)  # bad parameters fail before any read
        if iou_type not in _ANALYSIS_IOU_TYPES:
            raise ValidationError(
                f"iou_type must be one of {list(_ANALYSIS_IOU_TYPES)} for the {name} "
                f"analysis, got {iou_type!r}")
        if max_ids is not None and (isinstance(max_ids, bool) or not isinstance(max_ids, int)
                                    or max_ids < 0):
            raise ValidationError(f"max_ids must be a non-negative integer, got {max_ids!r}")
        # Kept after the first answer for a scope at current labels, like the numbers
        # the commit keeps, and served while the data is unchanged (TIDE re-scores the
        # run once per error kind: minutes at millions of boxes).
        keepable = annotation_version is None and not query
        if keepable:
            with self.db.read() as conn:
                run = self._run_row(conn, run_id)
                kept = self._kept(conn, run, _kind(name, cfg, iou_type, max_ids), slice_name,
                                  None)
            if kept is not None:
                return {"model_run_id": run_id, "slice": slice_name, "query": None, **kept}
        with self.db.read() as conn:
            version, gt, dt, pair_iou, order = self._evaluation_sides(
                conn, run_id, slice_name, annotation_version, iou_type, query=query)
            out = self._analysis_body(conn, analysis, cfg, gt, dt, pair_iou, order,
                                      version=version, iou_type=iou_type, max_ids=max_ids)
            fingerprint = (self._scope_state(conn, run_id, slice_name) if keepable
                           else None)
        if fingerprint is not None:
            with self.db.write() as conn:
                run_pk, slice_pk, state = fingerprint
                run_results.keep(conn, run_pk, _kind(name, cfg, iou_type, max_ids), slice_pk,
                                 state, out)
        return {"model_run_id": run_id, "slice": slice_name, "query": query or None, **out}

    def _analysis_body(self, conn: Connection, analysis: Any, cfg: Any, gt: GroundTruth,
                       dt: Detections, pair_iou: Any, order: list[str], *,
                       version: int | None, iou_type: str, max_ids: int | None,
                       **options: Any) -> dict[str, Any]:
        """An analysis' answer on two sides, with public ids for the ids it lists."""
        result = analysis.run(gt, dt, cfg, categories=label_order(order, gt, dt),
                              pair_iou=pair_iou, **options)
        return self._result_body(conn, result, gt, dt, version=version, iou_type=iou_type,
                                 max_ids=max_ids)

    def _result_body(self, conn: Connection, result: Any, gt: GroundTruth, dt: Detections,
                     *, version: int | None, iou_type: str, max_ids: int | None
                     ) -> dict[str, Any]:
        """An analysis result's answer, with public ids for the ids it lists."""
        # Only the ids the answer lists are named: a capped answer (the run page's)
        # lists a few thousand of millions of boxes.
        listed = getattr(result, "listed_ids", None)
        pred, ann, images = (listed(max_ids) if listed is not None
                             else (dt.id, gt.id, np.concatenate([gt.image, dt.image])))
        body = result.to_dict(
            prediction_ids=self._public_ids(conn, t.predictions, pred),
            annotation_ids=self._public_ids(conn, t.annotations, ann),
            image_ids=self._item_refs_of(conn, images), max_ids=max_ids)
        return {"annotation_version": version, "iou_type": iou_type, **body}

    def _kept_analyses(self, conn: Connection, run: Any, config: dict[str, Any],
                       gt: GroundTruth, dt: Detections, pair_iou: Any, order: list[str],
                       scopes: list[tuple[np.ndarray | None, tuple[Any, ...]]],
                       match: Any = None) -> list[dict[str, dict[str, Any]]]:
        """At a commit: the TIDE breakdown the run page asks for (defaults, ids capped
        to what a link holds) of each scope (``(item pks or None, its sides)``), kept
        with the metrics so the page opens without re-scoring the run once per error
        kind. The whole dataset is classified once and each slice's breakdown cut from
        it. ``match``: the commit's own matching when it is TIDE's (IoU 0.5, per class,
        at most 100 detections an image and class)."""
        iou_type = config["iou_type"]
        if iou_type not in _ANALYSIS_IOU_TYPES:
            return [{} for _ in scopes]
        analysis = get_analysis("tide", "run")
        cfg = analysis.config(None)
        kind = _kind("tide", cfg, iou_type, RUN_PAGE_MAX_IDS)
        version = self._resolve_version(conn, run.dataset_pk, None)
        whole = TideBreakdown(gt, dt, cfg, categories=label_order(order, gt, dt),
                              pair_iou=pair_iou, match=match)
        out = []
        for members, sides in scopes:
            result = whole.result() if members is None else whole.result(
                members, categories=scope_labels(order, sides[0], sides[1]))
            out.append({kind: self._result_body(conn, result, *sides[:2], version=version,
                                                iou_type=iou_type,
                                                max_ids=RUN_PAGE_MAX_IDS)})
        return out

    def _item_refs_of(self, conn: Connection, item_pks: np.ndarray) -> dict[int, str]:
        wanted = np.unique(item_pks).tolist()
        out: dict[int, str] = {}
        for i in range(0, len(wanted), 10_000):  # bound the IN list
            chunk = wanted[i:i + 10_000]
            out.update((pk, ref) for pk, ref in conn.execute(
                select(t.items.c.pk, t.items.c.reference_id).where(t.items.c.pk.in_(chunk))))
        return out

    def run_error_breakdown(self, run_id: str, *, slice: str | None = None,  # noqa: A002
                            annotation_version: int | str | None = None,
                            iou_type: str = "bbox", pos_threshold: float = 0.5,
                            background_threshold: float = 0.1,
                            max_ids: int | None = None,
                            query: str | None = None) -> dict[str, Any]:
        """TIDE's error breakdown of a run (Bolya et al., ECCV 2020): how much AP (at
        ``pos_threshold``, COCO's AP50 by default) it would gain if each kind of error
        were fixed — ``cls``, ``loc``, ``both``, ``dupe``, ``bkg``, ``miss`` under
        ``errors``, all false positives / negatives (``fp``, ``fn``) under ``special``
        — with the count, the prediction and annotation ids and item reference ids of
        every error (``max_ids`` caps each list), and the same per class.
        ``iou_type="segm"`` uses mask IoU; ``query`` (an item condition, as for
        :meth:`run_metrics`) keeps to the items it selects. See ``docs/evaluation.md``."""
        return self._analyse(
            "tide", run_id, {"pos_threshold": pos_threshold,
                             "background_threshold": background_threshold},
            slice_name=slice, annotation_version=annotation_version, iou_type=iou_type,
            max_ids=max_ids, query=query)
