"""Insights of a slice or query result from columns held in memory.

A slice or query result is an arbitrary set of items, so its charts cannot come from the
dataset's running totals; scanning the rows for each one (``insights_scan``) reads every
box, prediction and match row in scope, about 30 s for half of a million-item dataset.
Instead, the columns those scans group by are read once per state of the data (the
insights fingerprint, which every write changes) into numpy arrays keyed by item: each
box's ``(label, area bucket, aspect bucket)`` code, each prediction's ``(run, label)``,
each match row's ``(run, side, label, status)``, and each metadata field's value per
item (read the first time a scope charts that field). A scope is then a boolean mask
over item pks and every chart a ``bincount`` of the rows the mask selects: exact counts,
the same as the scan's (tests compare the two on both databases).

Buckets are computed as the running totals compute them (``stats.gt_keys``); metadata
values are read with the scan's own SQL expressions, so types and numbers agree.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, defaultdict
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import ARRAY, Connection, Integer, Text, any_, cast, func, literal, select

from ocula.core.services import stats
from ocula.core.services.evaluation_sides import mostly_this_run
from ocula.core.services.insights_scan import (
    _REST,
    MAX_CATEGORIES,
    NUMERIC_BINS,
    ScanInsights,
    bin_edges,
)
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_ints, iter_tuples


class _Coder:
    """Codes for values met chunk by chunk: each distinct value's index, in order of
    first appearance."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}

    def codes(self, values: list[Any]) -> np.ndarray:
        for value in dict.fromkeys(values):
            self.index.setdefault(value, len(self.index))
        return np.fromiter(map(self.index.__getitem__, values), np.int32, len(values))

    @property
    def values(self) -> list[Any]:
        return list(self.index)


def _pks(rows: list[tuple[Any, ...]]) -> np.ndarray:
    """The first column (an item pk) of driver rows."""
    return np.fromiter(map(itemgetter(0), rows), np.int64, len(rows))


def _of_runs(table: Any, run_pks: list[int], one_pass: bool) -> Any:
    """SQL: the rows of ``run_pks``; with ``one_pass`` (the runs hold most of SQLite's
    predictions, and so of its match rows: :func:`mostly_this_run`) as a term no index
    serves (``run_pk + 0``): one pass over the table in row order beats the run index's
    row look-ups in another order (100k images, 2M match rows: ~7 s against ~3 s)."""
    if one_pass:
        return (table.c.run_pk + 0).in_(run_pks)
    return table.c.run_pk.in_(run_pks)


# What each group of columns is read from: a group is read again only when its part of
# the insights fingerprint changed (a metadata edit re-reads no box, a new run no
# metadata).
GROUPS = ("gt", "pred", "match", "meta")


class Columns:
    """One dataset's insights columns, as of one state of its data. Rows are read in
    chunks, each turned into arrays at once, so a million items' rows never live as
    Python objects together. ``parts``: each group's part of the fingerprint; the groups
    of ``old`` whose part is unchanged are kept, not read again."""

    def __init__(self, conn: Connection, dataset_pk: int, run_pks: list[int],
                 parts: dict[str, Any], old: Columns | None = None):
        self.lock = threading.Lock()
        self.parts = parts
        kept = {g for g in GROUPS if old is not None and old.parts.get(g) == parts.get(g)}
        self.meta: dict[str, Any] = {}
        if old is not None and "meta" in kept:
            with old.lock:  # another request may be adding a field to it
                self.meta = dict(old.meta)
        if old is not None and "gt" in kept:
            self.gt_item, self.gt_code, self.gt_names = old.gt_item, old.gt_code, old.gt_names
        else:
            self._read_gt(conn, dataset_pk)
        p = t.predictions
        one_pass = not {"pred", "match"} <= kept and mostly_this_run(conn, run_pks)
        if old is not None and "pred" in kept:
            self.pred_item, self.pred_code, self.pred_keys = \
                old.pred_item, old.pred_code, old.pred_keys
        else:
            self.pred_item, self.pred_code, self.pred_keys = self._keyed(conn, select(
                p.c.item_pk, p.c.run_pk, p.c.label).where(_of_runs(p, run_pks, one_pass)),
                _Coder())
        if old is not None and "match" in kept:
            self.match_item, self.match_code, self.match_keys = \
                old.match_item, old.match_code, old.match_keys
        else:
            self._read_match(conn, run_pks, one_pass)
        # The greatest item pk any row refers to: the size of a scope's mask.
        self.top = max(int(a.max(initial=0)) for a in (
            self.gt_item, self.pred_item, self.match_item))
        # Current boxes by item pk (items past the end have none).
        self.boxes_per_item = np.bincount(self.gt_item)

    def _read_gt(self, conn: Connection, dataset_pk: int) -> None:
        a = t.annotations
        gt = _Coder()
        items, codes = [], []
        for rows in iter_tuples(conn, select(
                a.c.item_pk, a.c.label, a.c.area, a.c.width, a.c.height).where(
                a.c.dataset_pk == dataset_pk, a.c.version_to.is_(None))):
            key, names = stats.gt_keys(*(list(map(itemgetter(i), rows)) for i in range(1, 5)))
            unique, inverse = np.unique(key, return_inverse=True)
            local = gt.codes([stats.gt_key(k, names) for k in unique.tolist()])
            items.append(_pks(rows))
            codes.append(local[inverse.reshape(-1)])
        self.gt_item, self.gt_code, self.gt_names = _joined(items, codes, gt.values)

    def _read_match(self, conn: Connection, run_pks: list[int], one_pass: bool) -> None:
        match = _Coder()
        items, codes = [], []
        for side, table in (("p", t.match_predictions), ("a", t.match_annotations)):
            item, code, _ = self._keyed(conn, select(
                table.c.item_pk, table.c.run_pk, literal(side), table.c.label,
                table.c.status).where(_of_runs(table, run_pks, one_pass)), match)
            items.append(item)
            codes.append(code)
        self.match_item, self.match_code, self.match_keys = _joined(items, codes, match.values)

    @staticmethod
    def _keyed(conn: Connection, query: Any, coder: _Coder
               ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """Rows ``(item_pk, *key)``: item pks, key codes and the keys."""
        items, codes = [], []
        for rows in iter_tuples(conn, query):
            items.append(_pks(rows))
            codes.append(coder.codes([row[1:] for row in rows]))
        return _joined(items, codes, coder.values)

    def field(self, key: str, reader: ScanInsights, numeric: bool) -> tuple[np.ndarray, Any]:
        """A metadata field per item pk: value codes and the values they stand for (the
        JSON text of each value the scan's GROUP BY tells apart), or floats (NaN: not a
        number) when ``numeric``."""
        return self.fields([(key, numeric)], reader)[0]

    def fields(self, wanted: list[tuple[str, bool]], reader: ScanInsights
               ) -> list[tuple[np.ndarray, Any]]:
        """:meth:`field` of each ``(key, numeric)``; those not yet held are read in one
        pass over the items (each pass reads every item's metadata)."""
        names = [("num:" if numeric else "raw:") + key for key, numeric in wanted]
        with self.lock:
            missing = [(name, key, numeric) for name, (key, numeric)
                       in dict(zip(names, wanted, strict=True)).items()
                       if name not in self.meta]
            if missing:
                self._read_fields(missing, reader)
            return [self.meta[name] for name in names]

    def _read_fields(self, missing: list[tuple[str, str, bool]], reader: ScanInsights
                     ) -> None:
        exprs = []
        for _, key, numeric in missing:
            expr = reader._json_value(key)
            # jsonb as text: what tells values apart, without decoding each in Python.
            exprs.append(reader._json_number(expr) if numeric else
                         cast(expr, Text) if reader.dialect == "postgresql" else expr)
        pks: list[np.ndarray] = []
        values: list[list[Any]] = [[] for _ in missing]
        for rows in iter_tuples(reader.conn, select(t.items.c.pk, *exprs).where(
                t.items.c.dataset_pk == reader.ds.pk)):
            pks.append(_pks(rows))
            for i, column_values in enumerate(values, 1):
                column_values += map(itemgetter(i), rows)
        at = np.concatenate([np.zeros(0, np.int64), *pks])
        size = int(at.max(initial=0)) + 1
        for (name, _, numeric), got in zip(missing, values, strict=True):
            column: np.ndarray
            if numeric:
                column = np.full(size, np.nan)
                column[at] = np.array(got, dtype=np.float64)
                self.meta[name] = (column, None)
            else:
                coder = _Coder()
                column = np.full(size, -1, dtype=np.int32)
                column[at] = coder.codes(got)
                self.meta[name] = (column, coder.values)


def _joined(items: list[np.ndarray], codes: list[np.ndarray],
            keys: list[Any]) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    pks = np.concatenate([np.zeros(0, np.int64), *items])
    if pks.max(initial=0) < 2 ** 31:  # half the memory for any realistic catalog
        pks = pks.astype(np.int32)
    return pks, np.concatenate([np.zeros(0, np.int32), *codes]), keys


def _top(counts: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` greatest counts, greatest first, ties in index order: the
    first ``k`` of a stable sort by descending count, without sorting a free-text
    field's million counts."""
    if len(counts) <= k:
        return np.argsort(-counts, kind="stable")
    kth = np.partition(counts, len(counts) - k)[len(counts) - k]  # the k-th greatest
    above = np.flatnonzero(counts > kth)
    chosen = np.concatenate([above, np.flatnonzero(counts == kth)[:k - len(above)]])
    return chosen[np.argsort(-counts[chosen], kind="stable")]


def _among(column: Any, values: list[int], dialect: str) -> Any:
    """``column IN values`` with the values bound as one parameter (an array, or JSON
    text on SQLite): a thousand bound parameters cost more to render and send than the
    query takes to run."""
    if dialect == "postgresql":
        return column == any_(literal(values, ARRAY(Integer)))
    members = func.json_each(literal(json.dumps(values))).table_valued("value")
    return column.in_(select(members.c.value))


class ColumnInsights(ScanInsights):
    """Insights of a slice or query result from a dataset's :class:`Columns`."""

    def __init__(self, svc: Any, conn: Connection, ds: Any, slice_row: Any,
                 query: str | None, sample: int, columns_of: Any):
        super().__init__(svc, conn, ds, slice_row, query, sample)
        self.columns_of = columns_of

    def scope_digest(self) -> str:
        """A digest of the pks of the items in scope (read here, once per builder)."""
        return hashlib.blake2b(self._scope().tobytes(), digest_size=16).hexdigest()

    def _scope(self) -> np.ndarray:
        """The pks of the items in scope, in order."""
        if self.__dict__.get("pks") is None:
            pks = self._scope_pks()
            present = np.zeros(int(pks.max(initial=0)) + 1, dtype=bool)
            present[pks] = True
            self.pks = np.flatnonzero(present)
        return self.pks

    def build(self) -> dict[str, Any]:
        self.cols: Columns = self.columns_of([r.pk for r in self.runs])
        pks = self._scope()
        # The scope as a mask over item pks, covering every row's item.
        self.mask = np.zeros(max(self.cols.top, int(pks.max(initial=0))) + 1, dtype=bool)
        self.mask[pks] = True
        # Field types come from the first items in scope, as in the scan.
        self.item_where = [_among(t.items.c.pk, pks[:self.sample].tolist(), self.dialect)]
        return self._build()

    def _scope_pks(self) -> np.ndarray:
        """The pks of the items in scope (unordered), read in bulk: a slice's from its
        own member rows (no join with the items), a query's from the items it selects.
        A query within a slice: on PostgreSQL both read so and intersected here (its
        metadata conditions are answered from a GIN index over every item anyway, and a
        semi-join would hash the members); on SQLite in one statement, which evaluates
        the query on the slice's members only (half the JSON read for half the items)."""
        members = None
        if self.slice_row is not None:
            if self.plan.condition is not None and self.dialect != "postgresql":
                return fetch_ints(self.conn, select(t.items.c.pk).where(*self.plan.where))
            members = fetch_ints(self.conn, select(t.slice_items.c.item_pk).where(
                t.slice_items.c.slice_pk == self.slice_row.pk))
            if self.plan.condition is None:
                return members
        items = t.items
        pks = fetch_ints(self.conn, select(items.c.pk).where(
            items.c.dataset_pk == self.ds.pk,
            *([] if self.plan.condition is None else [self.plan.condition])))
        if members is None:
            return pks
        inside = np.zeros(max(int(pks.max(initial=0)), int(members.max(initial=0))) + 1,
                          dtype=bool)
        inside[members] = True
        return pks[inside[pks]]

    def _count(self, items: np.ndarray, codes: np.ndarray, keys: list[Any]) -> Counter:
        n = np.bincount(codes[self.mask[items]], minlength=len(keys))
        return Counter({keys[i]: int(c) for i, c in enumerate(n.tolist()) if c})

    def count_items(self) -> int:
        return len(self.pks)

    def gt_counts(self) -> Counter:
        return self._count(self.cols.gt_item, self.cols.gt_code, self.cols.gt_names)

    def prediction_counts(self) -> dict[int, Counter]:
        per_run: dict[int, Counter] = defaultdict(Counter)
        for (run_pk, label), n in self._count(self.cols.pred_item, self.cols.pred_code,
                                              self.cols.pred_keys).items():
            per_run[run_pk][label] += n
        return per_run

    def per_item_counts(self, n_items: int) -> Counter:
        boxes = self.cols.boxes_per_item
        per_item = boxes[self.pks[self.pks < len(boxes)]]
        counts = Counter({0: int(np.count_nonzero(self.pks >= len(boxes)))})
        counts.update({n: int(c) for n, c in enumerate(np.bincount(per_item).tolist()) if c})
        return counts

    def match_counts(self, run_pk: int) -> Counter:
        if self.__dict__.get("matched") is None:  # every run's, counted once
            self.matched = self._count(self.cols.match_item, self.cols.match_code,
                                       self.cols.match_keys)
        return Counter({(side, label, status): n for (run, side, label, status), n
                        in self.matched.items() if run == run_pk})

    def metadata(self) -> dict[str, Any]:
        """As the scan's: value counts of each field of the sample's, or a histogram of
        its numbers in 12 bins between the scope's least and greatest (each value's bin
        found by comparing with the same edges as the scan's ``CASE``)."""
        out: dict[str, Any] = {}
        fields = self._sample_fields()
        self.cols.fields([(key, kind == "number") for key, (kind, _) in fields.items()], self)
        for key, (kind, seen) in fields.items():
            if kind == "number":
                column, _ = self.cols.field(key, self, numeric=True)
                values = column[self.pks]
                numbers = values[~np.isnan(values)]
                if not len(numbers):
                    out[key] = self._numeric(key, Counter({None: len(values)}), None, None,
                                             1.0)
                    continue
                lo, hi = float(numbers.min()), float(numbers.max())
                width = (hi - lo) / NUMERIC_BINS if hi > lo else 1.0
                bins = np.searchsorted(np.array(bin_edges(lo, width)), numbers, side="right")
                grouped = Counter({b: int(n) for b, n in enumerate(np.bincount(bins).tolist())
                                   if n})
                if len(values) > len(numbers):
                    grouped[None] = len(values) - len(numbers)
                out[key] = self._numeric(key, grouped, lo, hi, width)
                continue
            column, distinct = self.cols.field(key, self, numeric=False)
            counts = np.bincount(column[self.pks], minlength=len(distinct))
            grouped: Counter = Counter()
            if seen > MAX_CATEGORIES * 4:
                # Free text: its top values only, the rest as "other" (as the scan's).
                for i in _top(counts, MAX_CATEGORIES).tolist():
                    if counts[i]:
                        grouped[distinct[i]] = int(counts[i])
                grouped[_REST] = len(self.pks) - sum(grouped.values())
            else:
                grouped.update({distinct[i]: int(n) for i, n in enumerate(counts.tolist())
                                if n})
            other = grouped.pop(_REST, 0)
            decoded: Counter = Counter()
            for raw, n in grouped.items():
                decoded[json.dumps(None if raw is None else json.loads(raw))] += n
            out[key] = self._categorical(key, decoded, other)
        return out

