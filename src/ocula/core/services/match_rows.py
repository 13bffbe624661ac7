"""A commit's match rows: one per prediction, per ground truth and per item, written so
that a re-commit rewrites only the items whose rows changed.

Each ``match_items`` row keeps a 64-bit digest of everything the commit wrote for its
item (every column of its prediction and ground-truth match rows, and its counts). A
re-commit computes the new digests in numpy and compares them with the stored ones: an
item whose digest is unchanged keeps its rows untouched. Fixing a few labels and
committing again then writes a few items' rows instead of millions (2M predictions on
SQLite: the write falls from ~17 s to well under a second), and the indexes are kept,
not rebuilt. A commit whose rows mostly change (or the first) replaces them all, with
the indexes rebuilt once on SQLite.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, func, select

from ocula.core.evaluation import Detections, GroundTruth, MatchStatus
from ocula.core.evaluation.inputs import factorize
from ocula.core.evaluation.matching import STATUS_NAMES
from ocula.core.services import stats
from ocula.core.services.evaluation_sides import holds_most_predictions
from ocula.core.store import schema as t
from ocula.core.store.bulk import (
    copy_columns,
    fetch_tuples,
    in_values,
    indexes_rebuilt,
    insert_columns,
)
from ocula.core.store.copy_binary import Column

__all__ = ["item_digests", "write_matches"]

# Above this share of changed items, replacing every row (indexes rebuilt once) beats
# deleting and inserting item by item through the indexes.
_MOST_CHANGED = 0.25

_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit flips about half of the output bits."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _bits(values: np.ndarray) -> np.ndarray:
    """The 64 bits of each value (ints as two's complement, floats as IEEE doubles)."""
    v = np.asarray(values)
    if v.dtype.kind == "f":
        return np.ascontiguousarray(v, dtype=np.float64).view(_U64)
    return np.ascontiguousarray(v, dtype=np.int64).view(_U64)


def _label_bits(labels: np.ndarray) -> np.ndarray:
    """A stable 64-bit code per label string (the same in every process)."""
    if not len(labels):
        return np.zeros(0, dtype=_U64)
    values, inverse = factorize(labels if labels.dtype.kind == "U" else labels.astype(str))
    codes = np.array([int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(),
                                     "little") for v in values.tolist()], dtype=_U64)
    return codes[inverse.reshape(-1)]


def _row_hashes(side: int, columns: list[np.ndarray]) -> np.ndarray:
    h = np.full(len(columns[0]), _U64(side), dtype=_U64)
    with np.errstate(over="ignore"):
        for col in columns:
            h = _mix(h ^ col)
    return h


def _det_iou(match: Any) -> np.ndarray:
    """The IoU a prediction's row stores: with its match, else with the best-overlapping
    ground truth of its image (the "worst IoU" views read it)."""
    return np.where(match.det_gt_id >= 0, match.det_iou, match.det_best_iou).astype(np.float64)


def item_digests(gt: GroundTruth, dt: Detections, match: Any) -> np.ndarray:
    """One signed 64-bit digest per item of ``match.image`` (in its order) of every value
    a commit writes for the item: each prediction's and ground truth's match row (order
    free: rows are summed) and the item's counts."""
    with np.errstate(over="ignore"):
        pred = _row_hashes(1, [_bits(dt.id), _bits(match.det_gt_id), _bits(_det_iou(match)),
                               _bits(match.det_status), _label_bits(dt.label),
                               _bits(np.asarray(dt.score, dtype=np.float64))])
        ann = _row_hashes(2, [_bits(gt.id), _bits(match.gt_det_id), _bits(match.gt_iou),
                              _bits(match.gt_status), _label_bits(gt.label)])
        acc = np.zeros(len(match.image), dtype=_U64)
        np.add.at(acc, np.searchsorted(match.image, dt.image), pred)
        np.add.at(acc, np.searchsorted(match.image, gt.image), ann)
        counts = _row_hashes(3, [_bits(match.image_tp), _bits(match.image_fp),
                                 _bits(match.image_fn)])
        return _mix(acc ^ counts).view(np.int64)


def write_matches(conn: Connection, dataset_pk: int, run_pk: int, gt: GroundTruth,
                  dt: Detections, match: Any) -> int:
    """Store a commit's match rows and running totals, replacing the run's earlier ones;
    only the items whose rows changed are rewritten when few did. Returns the number of
    items written."""
    digests = item_digests(gt, dt, match)
    old = fetch_tuples(conn, select(t.match_items.c.item_pk, t.match_items.c.digest)
                       .where(t.match_items.c.run_pk == run_pk))
    items = None  # None: every item
    if old and all(d is not None for _, d in old):
        old_items = np.fromiter((r[0] for r in old), np.int64, len(old))
        old_digests = np.fromiter((r[1] for r in old), np.int64, len(old))
        order = np.argsort(old_items)
        old_items, old_digests = old_items[order], old_digests[order]
        at = np.minimum(np.searchsorted(old_items, match.image), max(len(old_items) - 1, 0))
        same = (old_items[at] == match.image) & (old_digests[at] == digests)
        changed = np.union1d(match.image[~same], np.setdiff1d(old_items, match.image))
        if len(changed) <= _MOST_CHANGED * max(len(match.image), len(old_items)):
            items = changed
    if items is not None and len(items):
        _replace(conn, run_pk, gt, dt, match, digests, items)
    if items is not None and not _complete(conn, run_pk, len(dt), len(gt)):
        # Rows that went missing outside a commit (predictions replaced take theirs
        # with them, models._drop_match_rows): the digests no longer describe the
        # table, so nothing is trusted.
        items = None
    if items is None:
        rebuilt = holds_most_predictions(conn, run_pk)
        with indexes_rebuilt(conn, (t.match_predictions, t.match_annotations), rebuilt):
            _replace(conn, run_pk, gt, dt, match, digests, None,
                     by_confidence=rebuilt and conn.dialect.name == "postgresql")
    # The totals from every row: cheap next to the rows, and never drift.
    stats.drop_run(conn, run_pk, (stats.MATCH,))
    stats.match_delta(run_pk, _label_status_counts(dt.label, match.det_status),
                      _label_status_counts(gt.label, match.gt_status)).save(conn, dataset_pk)
    return len(match.image) if items is None else len(items)


def _label_status_counts(labels: np.ndarray, status: np.ndarray
                         ) -> list[tuple[tuple[Any, str], int]]:
    """``((label, status name), rows)`` of each pair present, counted in numpy (labels
    numbered once per read-only column): 2.7M rows through a Counter of tuples took
    ~0.6 s."""
    if not len(labels):
        return []
    values, codes = factorize(labels)
    status = np.asarray(status, dtype=np.int64)
    width = int(status.max()) + 1
    pairs, counts = np.unique(codes.astype(np.int64) * width + status, return_counts=True)
    return [((values[p // width].item(), MatchStatus(p % width).name.lower()), n)
            for p, n in zip(pairs.tolist(), counts.tolist(), strict=True)]


def _complete(conn: Connection, run_pk: int, n_pred: int, n_gt: int) -> bool:
    """Whether the run holds exactly the rows a full write would have written."""
    def count(table: Any) -> int:
        return int(conn.scalar(select(func.count()).select_from(table).where(
            table.c.run_pk == run_pk)) or 0)
    return count(t.match_predictions) == n_pred and count(t.match_annotations) == n_gt


def _replace(conn: Connection, run_pk: int, gt: GroundTruth, dt: Detections, match: Any,
             digests: np.ndarray, items: np.ndarray | None, by_confidence: bool = False
             ) -> None:
    """Delete the run's rows (of ``items`` only, if given) and insert the new ones;
    ``by_confidence``: the prediction rows in their confidence index's order (see
    :func:`_by_confidence`)."""
    for table in (t.match_predictions, t.match_annotations, t.match_items):
        where = [table.c.run_pk == run_pk]
        if items is not None:
            where.append(in_values(conn, table.c.item_pk, items))
        conn.execute(delete(table).where(*where))
    d = slice(None) if items is None else np.isin(dt.image, items)
    g = slice(None) if items is None else np.isin(gt.image, items)
    i = slice(None) if items is None else np.isin(match.image, items)

    def text(labels: np.ndarray, rows: Any) -> Column:
        # Numbered once per whole (read-only) column, then cut: no string per row.
        texts, codes = factorize(labels)
        return Column("text", codes[rows], texts=texts.tolist())

    det_ann, gt_pred = match.det_gt_id[d], match.gt_det_id[g]  # -1: no match
    area = _stored_area(conn, gt)[g]
    tables = [
        (t.match_predictions, {
            "prediction_pk": Column("int4", dt.id[d]), "item_pk": Column("int4", dt.image[d]),
            "annotation_pk": Column("int4", det_ann, det_ann < 0),
            "iou": Column("float8", _det_iou(match)[d]),
            "status": Column("text", match.det_status[d], texts=STATUS_NAMES),
            "label": text(dt.label, d), "confidence": Column("float8", dt.score[d])}),
        (t.match_annotations, {
            "annotation_pk": Column("int4", gt.id[g]), "item_pk": Column("int4", gt.image[g]),
            "prediction_pk": Column("int4", gt_pred, gt_pred < 0),
            "iou": Column("float8", match.gt_iou[g]),
            "status": Column("text", match.gt_status[g], texts=STATUS_NAMES),
            "label": text(gt.label, g), "area": Column("float8", area, np.isnan(area))}),
        (t.match_items, {
            "item_pk": Column("int4", match.image[i]), "tp": Column("int4", match.image_tp[i]),
            "fp": Column("int4", match.image_fp[i]), "fn": Column("int4", match.image_fn[i]),
            "digest": Column("int8", digests[i])}),
    ]
    if by_confidence:
        order = _by_confidence(dt.score[d], match.det_status[d])
        tables[0] = (tables[0][0], {name: _taken(c, order) for name, c in tables[0][1].items()})
    for table, columns in tables:
        _insert(conn, table, run_pk, columns)


def _stored_area(conn: Connection, gt: GroundTruth) -> np.ndarray:
    """Each ground truth's ``area`` column (NaN: NULL), which its match row keeps so that
    "missed boxes, largest first" walks one index instead of sorting every miss joined
    to its annotation (5M boxes, SQLite: ~1 s). Read from the store where the side does
    not hold it (keypoints take their box part's area)."""
    if gt.stored_area is not None:
        return gt.stored_area
    a = t.annotations
    found = dict(fetch_tuples(conn, select(a.c.pk, a.c.area).where(
        in_values(conn, a.c.pk, gt.id))))
    return np.fromiter((np.nan if (v := found.get(pk)) is None else v
                        for pk in gt.id.tolist()), np.float64, len(gt))


def _by_confidence(confidence: np.ndarray, status: np.ndarray) -> np.ndarray:
    """The order of prediction rows by ``(confidence, status name)``, the key of the
    ``(run_pk, confidence, status)`` index after the run's own: PostgreSQL's sort checks
    whether its input is sorted already, so rows COPYed in that order (into a table
    whose indexes are built afterwards) make that build a scan (2M rows, one process:
    2.4 -> 0.6 s) for ~0.2 s of numpy. The heap has no order of its own to keep (the
    primary key is rebuilt too: 0.73 -> 0.86 s)."""
    rank = np.argsort(np.argsort(np.array(STATUS_NAMES, dtype=object)))
    return np.lexsort((rank[np.asarray(status, dtype=np.int64)],
                       np.asarray(confidence, dtype=np.float64)))


def _taken(column: Column, rows: np.ndarray) -> Column:
    return Column(column.kind, np.asarray(column.values)[rows],
                  None if column.nulls is None else np.asarray(column.nulls)[rows],
                  column.texts)


def _insert(conn: Connection, table: Any, run_pk: int, columns: dict[str, Column]) -> None:
    """Rows of ``run_pk`` held as numpy columns. PostgreSQL: COPY data laid out by numpy
    (:func:`~ocula.core.store.bulk.copy_columns`), no Python object per value (beside
    the commit's other threads, per-row writes waited on the GIL: 2M rows ~4.5 s against
    0.8 s alone). SQLite: each column as a Python list, laid straight into each
    statement's parameters (no tuple per row: 2M rows 2.3 -> 1.4 s beside the commit's
    other work)."""
    n = len(next(iter(columns.values())).values)
    if conn.dialect.name == "postgresql":
        copy_columns(conn, table, ("run_pk", *columns), [
            Column("int4", np.full(n, run_pk, dtype=np.int64)), *columns.values()])
        return
    marks = {name: _NULL_PK for name, c in columns.items()
             if c.kind == "int4" and c.nulls is not None}
    insert_columns(conn, table, list(columns),
                   [_for_insert(c, name in marks) for name, c in columns.items()],
                   {"run_pk": run_pk}, null_marks=marks)


# Stands for NULL in a nullable key column on SQLite (bulk.insert_columns' null_marks):
# keys are positive.
_NULL_PK = -1


def _for_insert(column: Column, marked: bool) -> np.ndarray:
    """A column's values as :func:`~ocula.core.store.bulk.insert_columns` takes them
    (NULL as None, or as ``_NULL_PK`` where ``marked``; texts as an object array of
    shared strings, not one made per row)."""
    if column.kind == "text":
        values = np.asarray(column.texts, dtype=object)[column.values]
    else:
        values = column.values
    if column.nulls is not None:
        if marked:
            values = np.where(column.nulls, _NULL_PK, values)
            if np.count_nonzero(values == _NULL_PK) != np.count_nonzero(column.nulls):
                raise ValueError(f"a key column holds {_NULL_PK}, the value that stands "
                                 "for NULL")
        else:
            values = np.where(column.nulls, None, values)
    return values
