"""Committing model runs (match rows in the store) and their metrics.

``commit_run`` reads a run's predictions and the dataset's ground truth (current, or at
a label version) as numpy columns, matches them with the in-memory engine
(:mod:`ocula.core.evaluation`) and replaces the run's rows in the ``match_*`` tables, in
one transaction: a re-commit after any change gives exactly what a fresh commit gives.

What is evaluated depends on ``iou_type``:

* ``"bbox"`` (default): every object with an extent, once: its box part, else the pixel
  box of its polygon or mask. An object is one source record, whose parts share an
  ``annotation_id`` base (``"17"``, ``"17/polygon"``, ``"17/mask"``: see
  :data:`ocula.core.types.PART_SUFFIXES`), so a COCO record imported as box + polygon is
  one ground truth, and a mask-only run is scored by its masks' boxes, as pycocotools'
  ``loadRes`` derives them;
* ``"segm"``: mask and polygon predictions against mask and polygon ground truth, by
  pixel IoU, as COCO's ``segm`` protocol does. Polygons are rasterised at their item's
  size exactly as pycocotools rasterises them; masks are compared as RLE, never as
  bitmaps (:mod:`ocula.core.evaluation.segm`). The area that sets a ground truth's COCO
  size range is its stored area (COCO's segmentation ``area`` when imported); a
  predicted mask's is its stored area (the COCO importer stores the one ``loadRes``
  gives), a predicted polygon's its pixel count.

Documented behaviour for odd runs:

* a run with no predictions of the evaluated kind cannot be committed (ValidationError);
* predictions on items without ground truth are false positives;
* predicted labels the ground truth never uses are false positives, unless
  ``class_agnostic`` or ``allowed_label_matches`` lets them match; they are listed under
  ``unknown_labels`` in the commit summary;
* a prediction without a confidence scores 1.0 (ties keep upload order, as COCO does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, case, func, select, update

from ocula.core.evaluation import (
    Detections,
    GroundTruth,
    match_detections,
)
from ocula.core.evaluation.inputs import distinct
from ocula.core.query.plan import plan_items
from ocula.core.services import committed_matches, run_results
from ocula.core.services.base import bulk_operation, chunks, now
from ocula.core.services.committed_matches import CommittedMatches
from ocula.core.services.evaluation_keep import ResultKeeping
from ocula.core.services.evaluation_links import (
    failure_queries,
    object_pks,
    on_items,
    plain_queries,
    plain_query,
)
from ocula.core.services.evaluation_sides import (
    IOU_TYPES,
    SEGM_TYPES,
    read_sides,
)
from ocula.core.services.insights_scan import quote
from ocula.core.services.match_rows import write_matches
from ocula.core.services.metrics_body import metrics_body
from ocula.core.services.payloads import object_payload
from ocula.core.store import schema as t
from ocula.core.store.bulk import (
    fetch_tuples,
    in_values,
    iter_tuples,
)
from ocula.errors import QueryError, ValidationError


def _check_iou_type(iou_type: str) -> str:
    if iou_type not in IOU_TYPES:
        raise ValidationError(f"iou_type must be one of {list(IOU_TYPES)}, got {iou_type!r}")
    return iou_type


def _check_sigmas(sigmas: Any) -> Any:
    """Keypoint sigmas as JSON-able values: one list for every label, or a mapping
    label -> list (the commit keeps them, so metrics score with the same ones)."""
    if sigmas is None:
        return None
    def floats(values: Any, what: str) -> list[float]:
        if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
            raise ValidationError(f"{what} must be a list of numbers, got {values!r}")
        out = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise ValidationError(f"{what} must be positive numbers, got {v!r}")
            out.append(float(v))
        return out
    if isinstance(sigmas, Mapping):
        return {str(k): floats(v, f"kpt_sigmas[{k!r}]") for k, v in sigmas.items()}
    return floats(sigmas, "kpt_sigmas")


class EvaluationService(ResultKeeping):
    def _prediction_kinds(self, conn: Connection, run_pk: int) -> dict[str, int]:
        p = t.predictions
        return dict(conn.execute(select(p.c.type, func.count()).where(p.c.run_pk == run_pk)
                                 .group_by(p.c.type)).all())

    def _no_predictions(self, conn: Connection, run: Any, iou_type: str) -> ValidationError:
        """The error for a run with nothing to evaluate under ``iou_type``, naming the fix."""
        kinds = self._prediction_kinds(conn, run.pk)
        if iou_type == "keypoints":
            return ValidationError(
                f"model run {run.name!r} has no keypoints predictions to evaluate with "
                "iou_type='keypoints' (upload KeypointsPrediction objects)")
        if iou_type == "segm":
            hint = ("; it has box predictions: evaluate them with iou_type='bbox'"
                    if kinds.get("box") else "")
            return ValidationError(
                f"model run {run.name!r} has no mask or polygon predictions to evaluate "
                f"with iou_type='segm' (upload MaskPrediction or PolygonPrediction objects){hint}")
        hint = ("; its keypoints are evaluated with iou_type='keypoints'"
                if kinds.get("keypoints") else "")
        return ValidationError(f"model run {run.name!r} has no box, mask or polygon "
                               f"predictions to commit{hint}")

    # --- commit ---------------------------------------------------------------------

    @bulk_operation
    def commit_run(self, run_id: str, *, class_agnostic: bool = False,
                   allowed_label_matches: Iterable[Mapping[str, Any]] | None = None,
                   iou_threshold: float = 0.5,
                   annotation_version: int | str | None = None,
                   iou_type: str = "bbox",
                   kpt_sigmas: Sequence[float] | Mapping[str, Sequence[float]] | None = None
                   ) -> dict[str, Any]:
        """Match a run's predictions to the ground truth and store the result.

        Per prediction: TP/FP, matched ground truth, IoU (and the best IoU with any box,
        for "worst IoU" views); per ground truth: TP/FN/ignored (crowd) and its match;
        per item: TP/FP/FN counts. Replaces any earlier commit of the run.
        ``iou_type="segm"`` matches mask/polygon predictions to mask/polygon ground truth
        by pixel IoU instead of boxes by box IoU; ``iou_type="keypoints"`` matches
        keypoints by COCO's OKS, with ``kpt_sigmas`` per keypoint (one list for every
        label, or ``{label: [...]}``; default COCO's person sigmas for 17 keypoints), which
        the commit keeps for :meth:`run_metrics`.
        """
        if not 0.0 < float(iou_threshold) <= 1.0:
            raise ValidationError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        _check_iou_type(iou_type)
        allowed = [dict(m) for m in allowed_label_matches or []]
        sigmas = _check_sigmas(kpt_sigmas)
        config = {"class_agnostic": bool(class_agnostic), "allowed_label_matches": allowed,
                  "iou_threshold": float(iou_threshold), "iou_type": iou_type}
        if sigmas is not None:
            config["kpt_sigmas"] = sigmas
        # Read, match and write under the write lock: predictions or labels changing
        # half-way through must not leave matches of a state that never existed. The
        # match rows refer to the rows just read in this transaction, and nothing refers
        # to the rows it deletes (match rows, kept results, totals): SQLite's three
        # reference look-ups per match row are skipped (check_references=False).
        with self.db.write(check_references=False) as conn:
            run = self._run_row(conn, run_id)
            version = self._resolve_version(conn, run.dataset_pk, annotation_version)
            gt, dt, pair_iou = read_sides(conn, run, version, None, iou_type, sigmas=sigmas)
            if len(dt) == 0:
                raise self._no_predictions(conn, run, iou_type)
            latest = conn.scalar(select(func.max(t.annotation_versions.c.version)).where(
                t.annotation_versions.c.dataset_pk == run.dataset_pk))
            # The run page's numbers are kept for the current labels only; they are
            # computed while the rows are matched and written.
            with self._keeping_beside(version is None or version == latest, conn, run,
                                      config, gt, dt, pair_iou) as keeper:
                match = match_detections(gt, dt, iou_threshold=float(iou_threshold),
                                         class_agnostic=bool(class_agnostic),
                                         allowed_label_matches=allowed, max_dets=None,
                                         pair_iou=pair_iou)
                kept = keeper.start(match)
                write_matches(conn, run.dataset_pk, run.pk, gt, dt, match)
                conn.execute(update(t.model_runs).where(t.model_runs.c.pk == run.pk).values(
                    commit_config=config, committed_version=version, committed_at=now()))
                run_results.forget(conn, run.pk)
                if kept is not None:
                    after = self._run_row(conn, run_id)
                    # What needs no worker's numbers first, while they finish: the
                    # misses by size (SQL over the rows just written) and the rows
                    # just written, for the run page's link checks (at the current
                    # labels only: those are what the queries see).
                    misses = {pk: self._miss_counts(conn, after, run_results.slice_items(pk))
                              for pk in [None, *run_results.item_slices(conn, run.dataset_pk)]}
                    remembered = (committed_matches.key(conn, after),
                                  CommittedMatches.of(gt, dt, match))
                    self._keep_results(conn, after, kept.result(), misses)
        if kept is not None:
            committed_matches.keep(*remembered)
        unknown = sorted(set(distinct(dt.label).tolist()) - set(distinct(gt.label).tolist()))
        return {"model_run_id": run_id, "status": "committed", "tp": match.tp,
                "fp": match.fp, "fn": match.fn, "predictions": len(dt),
                "ground_truth": len(gt), "annotation_version": version,
                "unknown_labels": unknown, **config}

    # --- metrics --------------------------------------------------------------------

    def _scope(self, conn: Connection, dataset_pk: int, slice_name: str | None,
               query: str | None = None) -> Any:
        """The item pks metrics are scoped to (a SELECT), or None for every item: a
        slice's items, those an item query selects, or both at once."""
        if slice_name is None and not query:
            return None
        ds = conn.execute(select(t.datasets).where(t.datasets.c.pk == dataset_pk)).one()
        slice_pk = None if slice_name is None else self._slice_in(conn, ds, slice_name).pk
        if not query:
            return run_results.slice_items(slice_pk)
        plan = plan_items(conn, dataset_pk, self.db.dialect, query, slice_pk=slice_pk)
        if plan.query.order is not None or plan.query.limit is not None:
            raise ValidationError("a metrics scope is an item condition: drop its "
                                  "'order by' and 'limit'")
        return select(t.items.c.pk).where(*plan.where)

    def run_metrics(self, run_id: str, *, slice: str | None = None,
                    iou_threshold: float | None = None,
                    annotation_version: int | str | None = None,
                    confidence_threshold: float = 0.5,
                    iou_type: str = "bbox", query: str | None = None,
                    cells: bool = False) -> dict[str, Any]:
        """COCO metrics of a run, optionally on one slice and/or the items an item
        query selects (``query``, a condition), and against a label version.

        Returns the 12 COCO summary numbers (``stats``), per-class AP/AP50/AR, precision,
        recall and F1 at ``confidence_threshold`` (overall and per class), the best-F1
        threshold, 101-point PR curves per class and a class-agnostic confusion matrix
        with a background row/column, each cell with the object query that opens it;
        ``cells=True`` adds every counted pair's ids (as many entries as boxes).
        ``iou_threshold`` (default 0.5) is the IoU of the operating point and the
        confusion matrix; AP always spans .50:.95.
        ``iou_type="segm"`` gives COCO's mask metrics (pycocotools ``iouType="segm"``)
        from the run's mask/polygon predictions and the mask/polygon ground truth;
        ``iou_type="keypoints"`` COCO's 10 keypoint numbers (OKS, 20 detections per image,
        medium and large areas), with the sigmas the run was committed with.

        The whole dataset's and each slice's numbers with the default thresholds, at the
        labels of the commit, are kept by the commit and read back while the data is
        unchanged (:mod:`ocula.core.services.run_results`).
        """
        iou = 0.5 if iou_threshold is None else float(iou_threshold)
        with self.db.read() as conn:
            run = self._run_row(conn, run_id)
            if (iou == 0.5 and confidence_threshold == 0.5 and not query and not cells
                    and iou_type == (run.commit_config or {}).get("iou_type")):
                body = self._kept(conn, run, run_results.METRICS, slice, annotation_version)
                if body is not None:
                    return {"model_run_id": run_id, "slice": slice, "query": query,
                            "annotation_version": annotation_version, **body}
            version, gt, dt, pair_iou, order = self._evaluation_sides(
                conn, run_id, slice, annotation_version, iou_type, query=query)
            dataset_id = conn.scalar(select(t.datasets.c.id).where(
                t.datasets.c.pk == run.dataset_pk))

            # The committed-match query of each label and kind (what confusion_queries
            # asks of the large cells) is answered for every label at once: one query
            # per kind without its label condition, its objects grouped by label (what
            # `label = "x"` compares), instead of one query per cell.
            run_q = f"run = {quote(run.name)}"
            plain = plain_queries(run_q, distinct(gt.label, dt.label).tolist(),
                                  confidence_threshold, query)
            grouped: dict[str, dict[Any, np.ndarray]] = {}
            # The committed rows in memory, where this process wrote them and they are as
            # written (committed_matches), with the scope's items: looked up once, when a
            # cell first asks. Else SQL reads the rows.
            kept: list[tuple[Any, np.ndarray | None]] = []

            def by_label(conn: Connection, kind: str) -> dict[Any, np.ndarray]:
                if not kept:
                    rows = committed_matches.recall(conn, run)
                    scope = None if rows is None else self._scope(
                        conn, run.dataset_pk, slice, query)
                    kept.append((rows, None if scope is None else np.fromiter(
                        conn.execute(scope).scalars(), np.int64)))
                rows, items = kept[0]
                if rows is None:
                    every = plain_query(kind, run_q, None, confidence_threshold)
                    return self._pks_by(conn, dataset_id, every + on_items(query),
                                              slice)
                return rows.by_label(kind, confidence_threshold, items)

            def selects(conn: Connection, q: str, pks: np.ndarray) -> bool:
                if q in plain:
                    kind, label = plain[q]
                    if kind not in grouped:
                        grouped[kind] = by_label(conn, kind)
                    return np.array_equal(grouped[kind].get(label, pks[:0]), pks)
                try:
                    plan = self._objects_plan(conn, dataset_id, q, slice)[1]
                except QueryError:
                    return False
                # Counted first: most candidate queries differ in size, and a count
                # reads no rows into Python.
                return (plan.count(conn) == len(pks)
                        and np.array_equal(object_pks(plan)(conn), pks))

            def by_id(conn: Connection, ids: list[str]) -> dict[str, np.ndarray]:
                # What confusion_queries' id queries select, of all their ids at once.
                try:
                    return self._pks_by(conn, dataset_id, f"type = annotation and {run_q}",
                                        slice, key="id", among=ids)
                except QueryError:
                    return {}  # as each id query would be refused: no cell is linked

            def names(kind: str, pks: np.ndarray) -> dict[int, str]:
                table = t.annotations if kind == "annotation" else t.predictions
                return self._public_ids(conn, table, pks)

            body = metrics_body(
                conn, gt, dt, pair_iou, order, iou=iou,
                confidence_threshold=confidence_threshold, iou_type=iou_type,
                run_name=run.name, committed=run.committed_at is not None,
                past_labels=version is not None, items=query, names=names,
                selects=selects, cells=cells, by_id=by_id)
        return {"model_run_id": run_id, "slice": slice, "query": query,
                "annotation_version": version, **body}

    def _pks_by(self, conn: Connection, dataset_id: str, query: str,
                slice_name: str | None, *, key: str = "label",
                among: Sequence[str] | None = None) -> dict[Any, np.ndarray]:
        """``{value: pks}`` (sorted) of the objects an object query selects, by their
        column ``key``; with ``among``, of those whose ``key`` is one of these only."""
        plan = self._objects_plan(conn, dataset_id, query, slice_name)[1]
        found: dict[Any, list[int]] = {}
        for b in plan.branches:
            col = b.scope.table.c[key]
            for part in [None] if among is None else chunks(among):
                where = b.where if part is None else [*b.where, col.in_(list(part))]
                for rows in iter_tuples(conn, select(b.scope.pk_col, col)
                                        .select_from(b.scope.from_clause()).where(*where)):
                    for pk, value in rows:
                        found.setdefault(value, []).append(pk)
        return {value: np.unique(np.asarray(pks, dtype=np.int64))
                for value, pks in found.items()}

    def _scope_state(self, conn: Connection, run_id: str, slice_name: str | None
                     ) -> tuple[int, int | None, dict[str, Any]] | None:
        """``(run pk, slice pk, fingerprint)`` to keep a result under, or None where the
        scope is not kept (an object slice)."""
        run = self._run_row(conn, run_id)
        slice_pk = None
        if slice_name is not None:
            ds = conn.execute(select(t.datasets).where(t.datasets.c.pk == run.dataset_pk)).one()
            row = self._slice_in(conn, ds, slice_name)
            if row.kind != "item":
                return None
            slice_pk = row.pk
        return run.pk, slice_pk, run_results.state(conn, run, slice_pk)

    def _kept(self, conn: Connection, run: Any, kind: str, slice_name: str | None,
              annotation_version: int | str | None) -> dict[str, Any] | None:
        """What the commit kept for a scope, if the request is at the labels it scored
        and nothing it read has changed since."""
        if annotation_version is not None:
            return None
        slice_pk = None
        if slice_name is not None:
            ds = conn.execute(select(t.datasets).where(t.datasets.c.pk == run.dataset_pk)).one()
            row = self._slice_in(conn, ds, slice_name)
            if row.kind != "item":
                return None
            slice_pk = row.pk
        return run_results.kept(conn, run, kind, slice_pk)

    def _evaluation_sides(self, conn: Connection, run_id: str, slice_name: str | None,
                          annotation_version: int | str | None, iou_type: str, *,
                          query: str | None = None) -> tuple[
                              int | None, GroundTruth, Detections, Any, list[str]]:
        """``(label version, ground truth, predictions, pair IoU, COCO label order)`` of a
        run, on a slice and/or an item query's items or the whole dataset, as its metrics
        read them."""
        _check_iou_type(iou_type)
        run = self._run_row(conn, run_id)
        version = self._resolve_version(conn, run.dataset_pk, annotation_version)
        scope = self._scope(conn, run.dataset_pk, slice_name, query)
        committed = run.commit_config or {}
        sigmas = (committed.get("kpt_sigmas")
                  if committed.get("iou_type") == "keypoints" else None)
        gt, dt, pair_iou = read_sides(conn, run, version, scope, iou_type, sigmas=sigmas)
        # (A slice may hold none of the run's masks: that only scores empty.)
        wanted = {"segm": SEGM_TYPES, "keypoints": ("keypoints",)}.get(iou_type)
        if wanted and len(dt) == 0 and not any(
                self._prediction_kinds(conn, run.pk).get(k) for k in wanted):
            raise self._no_predictions(conn, run, iou_type)
        return version, gt, dt, pair_iou, self._coco_label_order(conn, run.dataset_pk)

    def _coco_label_order(self, conn: Connection, dataset_pk: int) -> list[str]:
        """Label names in COCO category id order, from the categories kept in the
        dataset's ``metadata["coco"]`` (``ocula import coco`` keeps them); else none."""
        meta = conn.scalar(select(t.datasets.c.metadata).where(t.datasets.c.pk == dataset_pk))
        cats = ((meta or {}).get("coco") or {}).get("categories") or []
        ids = [c.get("id") for c in cats if isinstance(c, dict)]
        kinds = {type(i) for i in ids}
        if not cats or len(kinds) != 1 or kinds - {int, str}:
            return []
        names: dict[str, None] = {}
        for cat in sorted((c for c in cats if isinstance(c, dict)), key=lambda c: c["id"]):
            names.setdefault(str(cat.get("name")), None)
        return list(names)

    def _public_ids(self, conn: Connection, table: Any, pks: np.ndarray) -> dict[int, str]:
        if not len(pks):
            return {}
        return dict(fetch_tuples(conn, select(table.c.pk, table.c.id).where(
            in_values(conn, table.c.pk, np.unique(pks)))))

    def run_failures(self, run_id: str, *, kind: str = "fp", limit: int = 20,
                     min_confidence: float = 0.0) -> list[dict[str, Any]]:
        """The committed run's worst boxes, for a patches view: ``fp`` (false positives,
        most confident first), ``fn`` (missed ground truth, largest first: big misses
        are the surprising ones) or ``low_iou`` (true positives, loosest fit first)."""
        if kind not in ("fp", "fn", "low_iou"):
            raise ValidationError(f"kind must be 'fp', 'fn' or 'low_iou', got {kind!r}")
        mp, ma = t.match_predictions, t.match_annotations
        with self.db.read() as conn:
            run = self._run_row(conn, run_id)
            if run.committed_at is None:
                raise ValidationError(f"model run {run.name!r} is not committed yet")
            if kind == "fn":
                obj = t.annotations
                q = (select(obj, ma.c.iou, ma.c.status, t.items.c.reference_id.label("ref"))
                     .join(ma, ma.c.annotation_pk == obj.c.pk)
                     .where(ma.c.run_pk == run.pk, ma.c.status == "fn")
                     .order_by(obj.c.area.desc(), obj.c.pk))
            else:
                obj = t.predictions
                status = "fp" if kind == "fp" else "tp"
                q = (select(obj, mp.c.iou, mp.c.status, t.items.c.reference_id.label("ref"))
                     .join(mp, mp.c.prediction_pk == obj.c.pk)
                     .where(mp.c.run_pk == run.pk, mp.c.status == status,
                            mp.c.confidence >= min_confidence))
                q = q.order_by(mp.c.confidence.desc() if kind == "fp" else mp.c.iou.asc(),
                               obj.c.pk)
            q = q.join(t.items, t.items.c.pk == obj.c.item_pk).limit(limit)
            rows = conn.execute(q).all()
        return [{**object_payload(r, r.ref), "iou": r.iou, "status": r.status} for r in rows]

    def failure_summary(self, run_id: str, *, slice: str | None = None,
                        query: str | None = None) -> dict[str, Any]:
        """Why a committed run fails, counted in SQL over its match rows (of one slice's
        items with ``slice``, an item slice's id or name, and/or of the items an item
        query selects, with ``query``).

        False positives by cause, from their best IoU with any ground truth:
        ``duplicate`` (IoU at or above the match threshold: the box it wanted was taken
        by a more confident prediction), ``localisation`` (0.1 ≤ IoU < threshold: a real
        object, the box is off) and ``background`` (IoU < 0.1: nothing there).
        Missed ground truth by COCO size: ``small`` (< 32² px), ``medium``, ``large``.
        """
        with self.db.read() as conn:
            run = self._run_row(conn, run_id)
            if run.committed_at is None:
                raise ValidationError(f"model run {run.name!r} is not committed yet")
            if not query:
                body = self._kept(conn, run, run_results.FAILURES, slice, None)
                if body is not None:
                    return {**body, "slice": slice, "query": query}
            scope = self._scope(conn, run.dataset_pk, slice, query)
            body = self._failure_counts(conn, run, scope)
        thr = body["iou_threshold"]
        return {**body, "slice": slice, "query": query,
                # The object query behind each number, for links to its patches.
                "queries": self._checked_failure_queries(
                    run, thr, body["false_positives"], body["false_negatives"], slice, query)}

    def _miss_counts(self, conn: Connection, run: Any, scope: Any) -> dict[str, int]:
        """A committed run's missed ground truth on ``scope`` (as in
        :meth:`_failure_counts`) by COCO's size, from the stored areas (their copies on
        the match rows: the ``(run_pk, status, area)`` index alone)."""
        ma = t.match_annotations
        size = case((ma.c.area < 32 ** 2, "small"), (ma.c.area < 96 ** 2, "medium"),
                    else_="large")
        fn_q = select(size, func.count()).where(ma.c.run_pk == run.pk, ma.c.status == "fn")
        if scope is not None:
            fn_q = fn_q.where(ma.c.item_pk.in_(scope))
        return dict(conn.execute(fn_q.group_by(size)).all())

    def _failure_counts(self, conn: Connection, run: Any, scope: Any,
                        fps: dict[str, int] | None = None,
                        fns: dict[str, int] | None = None) -> dict[str, Any]:
        """The failure summary's numbers over a committed run's match rows on ``scope``
        (a SELECT of item pks, or None for all); ``fps``, ``fns``: the false positives by
        cause and the misses by size, if the caller counted them already."""
        mp = t.match_predictions
        thr = float((run.commit_config or {}).get("iou_threshold", 0.5))
        iou_type = (run.commit_config or {}).get("iou_type", "bbox")
        if fps is None:
            cause = case((mp.c.iou >= thr, "duplicate"), (mp.c.iou >= 0.1, "localisation"),
                         else_="background")
            fp_q = select(cause, func.count()).where(mp.c.run_pk == run.pk,
                                                     mp.c.status == "fp")
            if scope is not None:
                fp_q = fp_q.where(mp.c.item_pk.in_(scope))
            fps = dict(conn.execute(fp_q.group_by(cause)).all())
        if fns is None:
            fns = self._miss_counts(conn, run, scope)
        return {"iou_threshold": thr, "iou_type": iou_type,
                "false_positives": {k: fps.get(k, 0) for k in
                                    ("duplicate", "localisation", "background")},
                "false_negatives": {k: fns.get(k, 0) for k in ("small", "medium", "large")}}

    def _checked_failure_queries(self, run: Any, thr: float, fps: dict[str, int],
                                 fns: dict[str, int], slice: str | None, items: str | None
                                 ) -> dict[str, dict[str, str | None]]:
        """Each failure number's query, or None where it does not count that number (a
        label changed since the commit keeps match rows no query sees)."""
        queries = failure_queries(run.name, thr, items)
        counts = {"false_positives": fps, "false_negatives": fns}
        with self.db.read() as conn:
            dataset_id = conn.scalar(select(t.datasets.c.id).where(
                t.datasets.c.pk == run.dataset_pk))
            return {part: {key: query if self._objects_plan(conn, dataset_id, query, slice)[1]
                           .count(conn) == counts[part].get(key, 0) else None
                           for key, query in qs.items()}
                    for part, qs in queries.items()}
