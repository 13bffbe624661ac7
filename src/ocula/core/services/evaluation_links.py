"""Queries that open what a metric counts, for the run page's links.

Each confusion-matrix cell and each failure-summary number gets an object query of the
query language that selects exactly the objects behind it, or ``None`` where no query
does (and then the page shows the number without a link).

* The failure summary is counted in SQL over a run's committed match rows, and the
  query fields ``status``, ``iou`` and ``area`` read those same rows; but a query sees
  current labels only, and match rows of labels changed since the commit are not, so
  each query is kept only where it counts the summary's number.
* The confusion matrix is not: it matches class-agnostically, after a confidence cut,
  at the page's IoU, label version and slice, none of which the committed (per-class)
  matches need share. A cell's query is therefore first the ids of its objects
  (``id in [...]``), exact for any setting, while that fits in a link; a bigger cell
  gets the plain query over the committed matches (``status = tp and label = ...``)
  only when that query is checked to select the same objects, here, on these rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
from sqlalchemy import Connection, select

from ocula.core.evaluation import ConfusionMatrix
from ocula.core.services.insights_scan import quote
from ocula.core.store.bulk import iter_tuples

# A link carries its query in the URL (?q=, percent-encoded: about a third longer), and
# the server reads request lines of 16 KiB at most; the parser takes 10,000 characters.
MAX_LINK_QUERY = 7_000

#: ``names(kind, pks) -> {pk: public id}`` for ``kind`` "annotation" or "prediction".
Names: TypeAlias = Callable[[str, np.ndarray], dict[int, str]]
ById: TypeAlias = Callable[[Connection, list[str]], dict[str, np.ndarray]]

# The fewest characters an id takes in an id list (quotes and ", "): a cell with more
# ids than this allows cannot become an id query, so its names are never read.
MIN_ID_CHARS = 5


def _num(value: float) -> str:
    return repr(float(value))


def on_items(items: str | None) -> str:
    """The object-query condition keeping objects of the items an item query selects
    (the metrics' query scope), or nothing."""
    return f" and item({items})" if items else ""


def failure_queries(run_name: str, iou_threshold: float,
                    items: str | None = None) -> dict[str, dict[str, str]]:
    """The object query of each failure-summary number (the same cuts as
    ``failure_summary``: a missing IoU or area falls in the last bucket, as its
    ``CASE ... ELSE`` puts it there), on the items ``items`` selects if given."""
    run = f"run = {quote(run_name)}"
    fp = f"type = prediction and {run} and status = fp{on_items(items)}"
    fn = f"type = annotation and {run} and status = fn{on_items(items)}"
    thr = _num(iou_threshold)
    return {
        "false_positives": {
            "duplicate": f"{fp} and iou >= {thr}",
            "localisation": f"{fp} and iou >= 0.1 and iou < {thr}",
            "background": f"{fp} and not iou >= 0.1",
        },
        "false_negatives": {
            "small": f"{fn} and area < 1024",
            "medium": f"{fn} and area >= 1024 and area < 9216",
            "large": f"{fn} and not area < 9216",
        },
    }


def plain_query(kind: str, run: str, label: str | None, confidence: float) -> str:
    """The committed-match query a diagonal, background-row or background-column cell
    would be, were the committed matches the confusion matrix's (``label`` None: the
    same for every label)."""
    of = "" if label is None else f" and label = {quote(label)}"
    if kind == "annotation":
        return f"type = annotation and {run}{of} and status = fn"
    return (f"type = prediction and {run}{of} and status = "
            f"{'tp' if kind == 'tp' else 'fp'} and confidence >= {_num(confidence)}")


def confusion_queries(
    conn: Connection, cm: ConfusionMatrix, *, run_name: str, committed: bool,
    names: Names, confidence: float,
    selects: Callable[[Connection, str, np.ndarray], bool], past_labels: bool = False,
    items: str | None = None, by_id: ById | None = None,
) -> list[list[str | None]]:
    """One query per cell (rows: ground truth then background; columns: predictions then
    background), or ``None`` for an empty cell or one no query selects exactly.

    A cell with a predicted label opens its predictions; the background column (missed
    ground truth) opens the ground truth. ``selects(conn, query, pks)`` tells whether a
    query selects exactly the objects ``pks`` (sorted int64 pks) in the page's scope
    (False when refused).
    ``past_labels``: the matrix is of a label version, whose rows a query (which sees
    current labels) may not select even by their ids, so those queries are checked too.
    ``items``: the item query the metrics are scoped by (ids need it not; the
    committed-match queries keep to its items with ``item(...)``).
    ``by_id(conn, ids)``: the pks of ground truth that ``type = annotation and run = x``
    selects (in the page's scope) with each of these public ids; given, the id queries
    of a past version's missed cells are checked all at once from it (what each selects
    is those ids' rows: its one other condition is on the id), not one query per cell
    (80 classes on PostgreSQL: ~4 s, most of the metrics' time at 5k images).
    """
    run = f"run = {quote(run_name)}"
    k = len(cm.labels)
    out: list[list[str | None]] = [[None] * (k + 1) for _ in range(k + 1)]
    # The names of every cell small enough for an id query, in one read per kind.
    small = cm.counts <= MAX_LINK_QUERY // MIN_ID_CHARS
    in_small = small[cm.entry_row, cm.entry_col]
    missed_col = cm.entry_col == k
    ann_ids = names("annotation", cm.entry_gt_id[in_small & missed_col])
    pred_ids = names("prediction", cm.entry_det_id[in_small & ~missed_col])
    # Entries grouped by cell once (a stable sort keeps their order within a cell), not
    # a pass over every entry per cell: millions of entries, thousands of cells.
    n_cells = (k + 1) ** 2
    cell = np.asarray(cm.entry_row, dtype=np.int64) * (k + 1) + cm.entry_col
    by_cell = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[by_cell], np.arange(n_cells + 1))
    listed = _id_lists(cm, cell, in_small, missed_col, ann_ids, pred_ids, n_cells)
    checked: list[tuple[int, int, str, np.ndarray]] = []  # by_id's, decided after
    for r in range(k + 1):
        for c in range(k + 1):
            if not cm.counts[r, c]:
                continue
            at = r * (k + 1) + c
            missed = c == k
            kind = "annotation" if missed else "prediction"

            def want(at: int = at, missed: bool = missed) -> np.ndarray:
                hit = by_cell[bounds[at]:bounds[at + 1]]
                pks = (cm.entry_gt_id if missed else cm.entry_det_id)[hit]
                return np.sort(np.asarray(pks, dtype=np.int64))
            ids = listed.get(at)
            if ids is not None:
                query = f"type = {kind} and {run} and id in [{ids}]"
                if len(query) <= MAX_LINK_QUERY:
                    if not (missed and past_labels):
                        out[r][c] = query
                    elif by_id is not None:
                        checked.append((r, c, query, want()))
                    elif selects(conn, query, want()):
                        out[r][c] = query
                    continue
            if not committed or (r != c and r != k and not missed):
                continue  # an off-diagonal confusion has no committed-match equivalent
            plain = plain_query("annotation" if missed else ("fp" if r == k else "tp"),
                                 run, str(cm.labels[c if r == k else r]),
                                 confidence) + on_items(items)
            if selects(conn, plain, want()):
                out[r][c] = plain
    if checked and by_id is not None:
        found = by_id(conn, sorted({ann_ids[p] for *_, pks in checked for p in pks.tolist()}))
        for r, c, query, pks in checked:
            got = [found.get(ann_ids[p], pks[:0]) for p in pks.tolist()]
            if np.array_equal(np.unique(np.concatenate(got)), pks):
                out[r][c] = query
    return out


def _id_lists(cm: ConfusionMatrix, cell: np.ndarray, in_small: np.ndarray,
              missed_col: np.ndarray, ann_ids: dict[int, str], pred_ids: dict[int, str],
              n_cells: int) -> dict[int, str]:
    """``{cell: its quoted, comma-separated ids}`` of the cells small enough for an id
    query whose list fits in a link, in entry order. Lengths are summed first, so the
    lists of cells that cannot fit are never built; names are quoted one by one only
    when some name needs an escape (a commit at 100k images, three scopes, ~345k ids:
    ~0.35 -> ~0.13 s of CPU)."""
    rows = np.flatnonzero(in_small)
    if not len(rows):
        return {}
    pks = np.where(missed_col[rows], cm.entry_gt_id[rows], cm.entry_det_id[rows]).tolist()
    missed = missed_col[rows].tolist()
    texts = [ann_ids[p] if m else pred_ids[p] for p, m in zip(pks, missed, strict=True)]
    joined = "".join(texts)
    escaped = '"' in joined or "\\" in joined
    if escaped:
        texts = [quote(x) for x in texts]
    # Each id's share of its list: its text, ", " and, when not quoted yet, the quotes.
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + (
        2 if escaped else 4)
    cells = cell[rows]
    fits = np.bincount(cells, weights=lengths, minlength=n_cells) <= MAX_LINK_QUERY
    keep = fits[cells]
    order = np.argsort(cells[keep], kind="stable")
    kept_rows = np.flatnonzero(keep)[order].tolist()
    kept_cells = cells[keep][order]
    if not len(kept_rows):
        return {}
    starts = np.flatnonzero(np.r_[True, kept_cells[1:] != kept_cells[:-1]]).tolist()
    ends = [*starts[1:], len(kept_rows)]
    out: dict[int, str] = {}
    sep, end = (", ", "") if escaped else ('", "', '"')
    for a, b in zip(starts, ends, strict=True):
        out[int(kept_cells[a])] = end + sep.join(texts[i] for i in kept_rows[a:b]) + end
    return out


def plain_queries(run: str, labels: Any, confidence: float, items: str | None = None
                  ) -> dict[str, tuple[str, Any]]:
    """``{query: (kind, label)}``: the committed-match query :func:`confusion_queries`
    may ask of each label's big cells (kinds ``annotation``, ``tp``, ``fp``), so a
    caller can answer them all at once instead of one query per cell."""
    return {plain_query(kind, run, str(label), confidence) + on_items(items): (kind, label)
            for label in labels for kind in ("annotation", "tp", "fp")}


def object_pks(plan: Any) -> Callable[[Connection], np.ndarray]:
    """The pks an object plan selects (one kind per plan here), sorted, read in one
    statement per branch straight from the driver (a cell can hold a million boxes)."""
    def read(conn: Connection) -> np.ndarray:
        found: list[int] = []
        for b in plan.branches:
            for rows in iter_tuples(conn, select(b.scope.pk_col).select_from(
                    b.scope.from_clause()).where(*b.where)):
                found.extend(r[0] for r in rows)
        return np.unique(np.asarray(found, dtype=np.int64))
    return read


__all__ = ["MAX_LINK_QUERY", "ById", "Names", "confusion_queries", "failure_queries", "object_pks",
           "on_items", "plain_queries", "plain_query"]
