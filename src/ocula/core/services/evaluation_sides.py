"""The two sides of an evaluation, read from the store as the engine's columns.

Each object is evaluated once per IoU type. An object is one source record whose parts
share an annotation id base (``"17"``, ``"17/polygon"``, ``"17/mask"``,
``"17/keypoints"``; :data:`ocula.core.types.PART_SUFFIXES`), grouped here in SQL:

* ``bbox``: an object's box part, else the pixel box of its polygon or mask (an empty
  mask: ``[0, 0, 0, 0]``, as pycocotools' ``toBbox``);
* ``segm``: polygons and masks, rasterised or decoded by
  :mod:`ocula.core.evaluation.segm`;
* ``keypoints``: keypoint parts, with their object's box, area and crowd flag from its
  box part (which COCO's OKS reads).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    Connection,
    Select,
    Text,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)

from ocula.core.evaluation import Detections, GroundTruth
from ocula.core.evaluation.inputs import distinct
from ocula.core.evaluation.keypoints import KeypointPairOKS, keypoint_boxes
from ocula.core.evaluation.segm import MaskPairIoU, MaskSet
from ocula.core.services import stats
from ocula.core.services.annotations import at_version
from ocula.core.services.run_results import item_state
from ocula.core.services.side_columns import (
    array_columns,
    detections_of,
    ground_truth_of,
    row_columns,
)
from ocula.core.services.sides_cache import cached, database, grown
from ocula.core.store import bulk
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples
from ocula.core.types import PART_SUFFIXES

__all__ = ["IOU_TYPES", "SEGM_TYPES", "holds_most_predictions", "label_order",
           "mostly_this_run", "read_sides"]

SEGM_TYPES = ("mask", "polygon")
IOU_TYPES = ("bbox", "segm", "keypoints")


def _segm_columns(rows: list[Any], *, scores: bool) -> tuple[dict[str, np.ndarray], MaskSet]:
    """Columns and masks of ``(pk, item_pk, label, x, y, w, h, area, crowd | confidence,
    type, geometry, item height, item width)`` rows (geometry JSON text or decoded)."""
    n = len(rows)
    masks = MaskSet.from_geometry(
        (r[9] for r in rows),
        (json.loads(r[10]) if isinstance(r[10], str | bytes) else r[10] for r in rows),
        [r[11] for r in rows], [r[12] for r in rows])
    bbox = np.array([[np.nan if v is None else v for v in r[3:7]] for r in rows],
                    dtype=np.float64).reshape(n, 4)
    out = {
        "id": np.fromiter((r[0] for r in rows), np.int64, n),
        "image": np.fromiter((r[1] for r in rows), np.int64, n),
        "label": np.array([r[2] for r in rows], dtype=object).astype(str) if n
        else np.array([], dtype=str),
        "bbox": np.nan_to_num(bbox),  # empty masks have no box; IoU never reads it
    }
    if scores:
        # pycocotools' loadRes: a detection's area is its pixel count, or its box's w*h
        # when the results file gives boxes; the COCO importer stores that on the mask.
        # A polygon's stored area is its shoelace area, so polygons take their pixels.
        stored = np.array([np.nan if r[7] is None or r[9] != "mask" else r[7] for r in rows],
                          dtype=np.float64)
        out["area"] = np.where(np.isnan(stored), masks.area, stored)
        out["extra"] = np.array([1.0 if r[8] is None else r[8] for r in rows],
                                dtype=np.float64)
    else:
        # Ground truth keeps its own (COCO segmentation) area.
        stored = np.array([np.nan if r[7] is None else r[7] for r in rows], dtype=np.float64)
        out["area"] = np.where(np.isnan(stored), masks.area, stored)
        out["stored_area"] = stored
        out["extra"] = np.array([bool(r[8]) for r in rows], dtype=bool)
    return out, masks


def label_order(coco_order: list[str], gt: GroundTruth, dt: Detections) -> list[str] | None:
    """The order classes are averaged in: pycocotools averages over categories in id
    order, and a float sum in another order can differ in its last bit. Labels the COCO
    categories do not name follow, sorted; None (sorted labels) without categories."""
    if not coco_order:
        return None
    present = set(distinct(gt.label, dt.label).tolist())
    known = set(coco_order)
    return [*coco_order, *sorted(present - known)]


def _base_of(col: Any) -> Any:
    """SQL: the object id an annotation id belongs to (``"17/mask"`` -> ``"17"``;
    :func:`ocula.core.types.base_id`)."""
    whens = [(func.substr(col, func.length(col) - (len(suffix) - 1)) == suffix,
              func.substr(col, 1, func.length(col) - len(suffix)))
             for suffix in PART_SUFFIXES.values()]
    return case(*whens, else_=col)


def _one_part_per_object(table: Any, same_state: Any) -> Any:
    """SQL condition for box evaluation: boxes, and the polygons and masks of objects
    that have no box part. A COCO record imported as a box plus a polygon is one object,
    not two ground truths; a mask-only prediction is scored by its mask's box, as
    pycocotools' ``loadRes`` derives it. ``same_state(sibling)`` restricts the sibling
    to the same dataset and label version (annotations) or run (predictions)."""
    sib = table.alias("sibling")
    has_box = exists().where(sib.c.item_pk == table.c.item_pk, sib.c.type == "box",
                             sib.c.annotation_id == _base_of(table.c.annotation_id),
                             same_state(sib))
    return or_(table.c.type == "box",
               and_(table.c.type.in_(("polygon", "mask")), ~has_box))


def _gt_columns(conn: Connection, dataset_pk: int, version: int | None,
                item_pks: Any = None) -> GroundTruth:
    a = t.annotations
    q = (select(a.c.pk, a.c.item_pk, a.c.label, a.c.x, a.c.y, a.c.width, a.c.height,
                a.c.area, a.c.iscrowd)
         .where(a.c.dataset_pk == dataset_pk, at_version(a, version),
                _one_part_per_object(
                    a, lambda sib: and_(sib.c.dataset_pk == dataset_pk,
                                        at_version(sib, version)))))
    if item_pks is not None:
        q = q.where(a.c.item_pk.in_(item_pks))
    return ground_truth_of(_by_id(_box_columns(conn, q, a.c.dataset_pk, dataset_pk,
                                               scores=False)))


def mostly_this_run(conn: Connection, run_pk: int | Collection[int]) -> bool:
    """Whether a run (or runs together) holds most of SQLite's prediction rows (from the
    running totals), and so of its match rows once committed: then one pass over the
    table beats its ``(run_pk, item_pk)`` index, whose row look-ups cost SQLite three
    times as much (2M predictions: 2.1 s against 6 s), and rebuilding the match indexes
    beats updating them row by row."""
    if conn.dialect.name != "sqlite":
        return False  # PostgreSQL's planner weighs this itself
    return holds_most_predictions(conn, run_pk)


def holds_most_predictions(conn: Connection, run_pk: int | Collection[int]) -> bool:
    """Whether a run (or runs together) holds most of the catalog's prediction rows
    (from the running totals), on any database."""
    s = t.dataset_stats
    totals = dict(conn.execute(select(s.c.run_pk, func.sum(s.c.count)).where(
        s.c.kind == stats.PRED, s.c.run_pk != 0).group_by(s.c.run_pk)).all())
    runs = [run_pk] if isinstance(run_pk, int) else list(run_pk)
    mine = sum(totals.get(r) or 0 for r in runs)
    return mine > 0 and 2 * mine >= sum(totals.values())


def _by_id(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Columns in row id order (ties between equal scores keep upload order, as
    pycocotools keeps file order): sorted here rather than by the database, which
    would sort millions of rows in a temporary B-tree."""
    ids = c["id"]
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return c  # a table scan returns them in order already
    order = np.argsort(ids, kind="stable")
    return {k: v[order] for k, v in c.items()}


def _dt_columns(conn: Connection, run_pk: int, item_pks: Any = None) -> Detections:
    p = t.predictions
    # ``run_pk + 0`` is no indexed term: SQLite then scans the table once.
    mine = ((p.c.run_pk + 0) == run_pk if item_pks is None and mostly_this_run(conn, run_pk)
            else p.c.run_pk == run_pk)
    q = (select(p.c.pk, p.c.item_pk, p.c.label, p.c.x, p.c.y, p.c.width, p.c.height,
                p.c.area, p.c.confidence)
         .where(mine, _one_part_per_object(p, lambda sib: sib.c.run_pk == run_pk)))
    if item_pks is not None:
        q = q.where(p.c.item_pk.in_(item_pks))
    return detections_of(_by_id(_box_columns(conn, q, p.c.run_pk, run_pk, scores=True)))


def _box_columns(conn: Connection, q: Select[Any], owner: Any, owner_pk: int, *,
                 scores: bool) -> dict[str, np.ndarray]:
    """The columns of ``q``'s ``(pk, item_pk, label, x, y, w, h, area, confidence |
    crowd)`` rows (:func:`row_columns`). PostgreSQL reads them as arrays
    (:func:`~ocula.core.store.bulk.fetch_arrays`: 2M predictions 5.9 -> ~3 s), each
    label as its number among the labels of the table's rows whose ``owner`` column (run
    or dataset, leading an ``(owner, label)`` index) is ``owner_pk``, NULLs coalesced
    to what :func:`row_columns` reads them as."""
    if conn.dialect.name != "postgresql":
        return row_columns(fetch_tuples(conn, q), scores=scores)
    table = owner.table
    names = _labels_of(conn, owner, owner_pk)
    listed = func.unnest(bindparam(None, names, type_=ARRAY(Text))).table_valued(
        "name", with_ordinality="code").render_derived(name="listed")
    nan = literal_column("'NaN'::float8")
    pk, item, label, *floats, extra = q.selected_columns
    arrays = bulk.fetch_arrays(conn, q.with_only_columns(
        pk, item, case((label.is_(None), 0), else_=func.coalesce(listed.c.code, -1)),
        *(func.coalesce(c, nan) for c in floats),
        func.coalesce(extra, nan) if scores else func.coalesce(extra, false()),
    ).outerjoin_from(table, listed, listed.c.name == label),
        ["int8", "int8", "int8", *["float8"] * len(floats), "float8" if scores else "bool"])
    if len(arrays[2]) and int(arrays[2].min()) < 0:
        # A label the index walk did not list (a collation that deems two strings
        # equal): read the rows as they are.
        return row_columns(fetch_tuples(conn, q), scores=scores)
    return array_columns(arrays, [None, *names], scores=scores)


def _labels_of(conn: Connection, owner: Any, value: int) -> list[str]:
    """The distinct labels of the rows whose ``owner`` column is ``value``, by a walk of
    the ``(owner, label)`` index: one probe per label, not a pass over millions of rows
    (PostgreSQL; the table and column names are the schema's own)."""
    table, column = owner.table.name, owner.name
    rows = conn.exec_driver_sql(
        f'WITH RECURSIVE l(label) AS ('
        f'SELECT min(label) FROM "{table}" WHERE "{column}" = %(v)s UNION ALL '
        f'SELECT (SELECT min(label) FROM "{table}" WHERE "{column}" = %(v)s '
        f'AND label > l.label) FROM l WHERE l.label IS NOT NULL) '
        f'SELECT label FROM l WHERE label IS NOT NULL', {"v": value}).all()
    return [r[0] for r in rows]


def _uploaded(conn: Connection, key: tuple[Any, ...], read: Callable[[], Any]) -> Any:
    """A side (``key[0]``: "gt" or "dt") as the uploads that wrote it kept it, if those
    are its rows under ``key`` (``services.upload_sides``), else ``read()``."""
    chunk = grown(database(conn), key)
    if chunk is None:
        return read()
    return ground_truth_of(chunk) if key[0] == "gt" else detections_of(chunk)


def _segm_gt_columns(conn: Connection, dataset_pk: int, version: int | None,
                     item_pks: Any = None) -> tuple[GroundTruth, MaskSet]:
    a, i = t.annotations, t.items
    q = (select(a.c.pk, a.c.item_pk, a.c.label, a.c.x, a.c.y, a.c.width, a.c.height,
                a.c.area, a.c.iscrowd, a.c.type, a.c.geometry, i.c.height, i.c.width)
         .join(i, i.c.pk == a.c.item_pk)
         .where(a.c.dataset_pk == dataset_pk, at_version(a, version),
                a.c.type.in_(SEGM_TYPES))
         .order_by(a.c.pk))
    if item_pks is not None:
        q = q.where(a.c.item_pk.in_(item_pks))
    c, masks = _segm_columns(fetch_tuples(conn, q), scores=False)
    return GroundTruth(c["image"], c["label"], c["bbox"], area=c["area"],
                       iscrowd=c["extra"], id=c["id"], stored_area=c["stored_area"]), masks


def _segm_dt_columns(conn: Connection, run_pk: int,
                     item_pks: Any = None) -> tuple[Detections, MaskSet]:
    p, i = t.predictions, t.items
    q = (select(p.c.pk, p.c.item_pk, p.c.label, p.c.x, p.c.y, p.c.width, p.c.height,
                p.c.area, p.c.confidence, p.c.type, p.c.geometry, i.c.height, i.c.width)
         .join(i, i.c.pk == p.c.item_pk)
         .where(p.c.run_pk == run_pk, p.c.type.in_(SEGM_TYPES)).order_by(p.c.pk))
    if item_pks is not None:
        q = q.where(p.c.item_pk.in_(item_pks))
    c, masks = _segm_columns(fetch_tuples(conn, q), scores=True)
    return Detections(c["image"], c["label"], c["bbox"], c["extra"], area=c["area"],
                      id=c["id"]), masks


def _triplets(geometry: Any) -> list[float]:
    """COCO's flat ``x, y, v`` list of a stored keypoints geometry: a point without
    coordinates is ``0, 0, 0`` (not labelled), a hidden one ``v = 1``, a visible one 2."""
    g = json.loads(geometry) if isinstance(geometry, str | bytes) else geometry or {}
    out: list[float] = []
    for k in g.get("keypoints") or []:
        x, y = k.get("x"), k.get("y")
        if x is None or y is None:
            out += (0.0, 0.0, 0.0)
        else:
            out += (float(x), float(y), 2.0 if k.get("visible", True) else 1.0)
    return out


def _with_box_part(table: Any, same_state: Any) -> tuple[Any, Any]:
    """``(box alias, outer join)``: each keypoints row with its object's box part."""
    box = table.alias("box")
    on = and_(box.c.item_pk == table.c.item_pk, box.c.type == "box",
              box.c.annotation_id == _base_of(table.c.annotation_id), same_state(box))
    return box, table.outerjoin(box, on)


def _kp_gt_columns(conn: Connection, dataset_pk: int, version: int | None,
                   item_pks: Any = None) -> tuple[GroundTruth, list[list[float]]]:
    """Keypoint ground truth with its object's box, area and crowd flag (COCO's OKS
    scales by the area; a ground truth with no labelled point uses the box). Without a
    box part: the extent of the labelled points and its area."""
    a = t.annotations
    box, joined = _with_box_part(a, lambda b: and_(b.c.dataset_pk == dataset_pk,
                                                   at_version(b, version)))
    q = (select(a.c.pk, a.c.item_pk, a.c.label, box.c.x, box.c.y, box.c.width, box.c.height,
                box.c.area, box.c.iscrowd, a.c.geometry, box.c.pk)
         .select_from(joined)
         .where(a.c.dataset_pk == dataset_pk, at_version(a, version), a.c.type == "keypoints")
         .order_by(a.c.pk))
    if item_pks is not None:
        q = q.where(a.c.item_pk.in_(item_pks))
    rows = fetch_tuples(conn, q)
    kps = [_triplets(r[9]) for r in rows]
    fixed = []
    for r, kp in zip(rows, kps, strict=True):
        if r[10] is None:
            xs = [kp[j] for j in range(0, len(kp), 3) if kp[j + 2] > 0]
            ys = [kp[j + 1] for j in range(0, len(kp), 3) if kp[j + 2] > 0]
            x, y = (min(xs), min(ys)) if xs else (0.0, 0.0)
            w, h = (max(xs) - x, max(ys) - y) if xs else (0.0, 0.0)
            r = (*r[:3], x, y, w, h, w * h, False)
        fixed.append(r)
    c = row_columns(fixed, scores=False)
    labelled = np.array([sum(1 for v in kp[2::3] if v > 0) for kp in kps], dtype=np.int64)
    # pycocotools ignores a ground truth with num_keypoints == 0 (not as a crowd).
    return GroundTruth(c["image"], c["label"], c["bbox"], area=c["area"], iscrowd=c["extra"],
                       id=c["id"], ignore=labelled == 0), kps


def _kp_dt_columns(conn: Connection, run_pk: int,
                   item_pks: Any = None) -> tuple[Detections, list[list[float]]]:
    """Keypoint predictions; a prediction's area is its object's box part's (the COCO
    importer stores the one ``loadRes`` gives), else the extent of all its points."""
    p = t.predictions
    box, joined = _with_box_part(p, lambda b: b.c.run_pk == run_pk)
    q = (select(p.c.pk, p.c.item_pk, p.c.label, box.c.x, box.c.y, box.c.width, box.c.height,
                box.c.area, p.c.confidence, p.c.geometry, box.c.pk)
         .select_from(joined)
         .where(p.c.run_pk == run_pk, p.c.type == "keypoints").order_by(p.c.pk))
    if item_pks is not None:
        q = q.where(p.c.item_pk.in_(item_pks))
    rows = fetch_tuples(conn, q)
    kps = [_triplets(r[9]) for r in rows]
    extent = keypoint_boxes(kps) if kps else np.zeros((0, 4))
    fixed = [r if r[10] is not None else (*r[:3], *e, float(e[2] * e[3]), r[8])
             for r, e in zip(rows, extent.tolist(), strict=True)]
    c = row_columns(fixed, scores=True)
    return Detections(c["image"], c["label"], c["bbox"], c["extra"], area=c["area"],
                      id=c["id"]), kps


def read_sides(conn: Connection, run: Any, version: int | None, scope: Any,
               iou_type: str, *, sigmas: Any = None
               ) -> tuple[GroundTruth, Detections, MaskPairIoU | KeypointPairOKS | None]:
    """Ground truth, predictions and, for ``segm`` and ``keypoints``, the IoU (mask IoU,
    or OKS with ``sigmas``) of their pairs."""
    if iou_type == "bbox":
        if scope is not None:
            return (_gt_columns(conn, run.dataset_pk, version, scope),
                    _dt_columns(conn, run.pk, scope), None)
        # The whole dataset's columns, kept in memory between requests (sides_cache).
        ds_id, latest = conn.execute(
            select(t.datasets.c.id, select(func.max(t.annotation_versions.c.version))
                   .where(t.annotation_versions.c.dataset_pk == run.dataset_pk)
                   .scalar_subquery()).where(t.datasets.c.pk == run.dataset_pk)).one()
        items = tuple(item_state(conn, run.dataset_pk))
        # Every write to ground truth opens a version: the latest one is the current
        # labels, whichever way it is asked for.
        labels = latest if version is None else version
        gt_key = ("gt", ds_id, labels, items)
        dt_key = ("dt", run.id, str(run.predictions_at), items)
        return (cached(conn, gt_key, lambda: _uploaded(conn, gt_key, lambda: _gt_columns(
                    conn, run.dataset_pk, version))),
                cached(conn, dt_key, lambda: _uploaded(conn, dt_key, lambda: _dt_columns(
                    conn, run.pk))), None)
    if iou_type == "keypoints":
        gt, gt_kps = _kp_gt_columns(conn, run.dataset_pk, version, scope)
        dt, dt_kps = _kp_dt_columns(conn, run.pk, scope)
        return gt, dt, KeypointPairOKS(gt, dt, gt_kps, dt_kps, sigmas=sigmas)
    gt, gt_masks = _segm_gt_columns(conn, run.dataset_pk, version, scope)
    dt, dt_masks = _segm_dt_columns(conn, run.pk, scope)
    return gt, dt, MaskPairIoU(dt_masks, gt_masks, gt.iscrowd)

