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

from ocula.core.evaluation.analyses import get_analysis
from ocula.core.services import run_results
from ocula.core.services.evaluation import EvaluationService
from ocula.core.services.evaluation_sides import label_order
from ocula.core.store import schema as t
from ocula.errors import ValidationError

__all__ = ["AnalysisService"]

# Keypoint OKS has no TIDE definition (the paper and reference cover boxes and masks).
_ANALYSIS_IOU_TYPES = ("bbox", "segm")


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
        kind = "tide:" + hashlib.blake2b(orjson.dumps(
            [name, dataclasses.asdict(cfg), iou_type, max_ids],
            option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
        if keepable:
            with self.db.read() as conn:
                run = self._run_row(conn, run_id)
                kept = self._kept(conn, run, kind, slice_name, None)
            if kept is not None:
                return {"model_run_id": run_id, "slice": slice_name, "query": None, **kept}
        with self.db.read() as conn:
            version, gt, dt, pair_iou, order = self._evaluation_sides(
                conn, run_id, slice_name, annotation_version, iou_type, query=query)
            result = analysis.run(gt, dt, cfg, categories=label_order(order, gt, dt),
                                  pair_iou=pair_iou)
            body = result.to_dict(
                prediction_ids=self._public_ids(conn, t.predictions, dt.id),
                annotation_ids=self._public_ids(conn, t.annotations, gt.id),
                image_ids=self._item_refs_of(conn, np.concatenate([gt.image, dt.image])),
                max_ids=max_ids)
            fingerprint = (self._scope_state(conn, run_id, slice_name) if keepable
                           else None)
        out = {"annotation_version": version, "iou_type": iou_type, **body}
        if fingerprint is not None:
            with self.db.write() as conn:
                run_pk, slice_pk, state = fingerprint
                run_results.keep(conn, run_pk, kind, slice_pk, state, out)
        return {"model_run_id": run_id, "slice": slice_name, "query": query or None, **out}

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
