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

import json
import threading
from collections import Counter, defaultdict
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from ocula.core.services import stats
from ocula.core.services.insights_scan import (
    _REST,
    MAX_CATEGORIES,
    NUMERIC_BINS,
    ScanInsights,
    bin_edges,
)
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples


def _codes(values: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Each value's index among the distinct values (in order of first appearance)."""
    distinct = list(dict.fromkeys(values))
    index = {v: i for i, v in enumerate(distinct)}
    return np.fromiter(map(index.__getitem__, values), np.int64, len(values)), distinct


def _keys(columns: list[list[Any]]) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Rows' keys (a tuple of one value per column) as codes, and the keys."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    parts = []
    for column in columns:
        part, distinct = _codes(column)
        code = code * len(distinct) + part
        parts.append(distinct)
    unique, inverse = np.unique(code, return_inverse=True)
    keys = []
    for k in unique.tolist():
        key = []
        for distinct in reversed(parts):
            k, at = divmod(k, len(distinct))
            key.append(distinct[at])
        keys.append(tuple(reversed(key)))
    return inverse.reshape(-1), keys


def _pks(column: list[Any]) -> np.ndarray:
    return np.fromiter(column, np.int64, len(column))


class Columns:
    """One dataset's insights columns, as of one state of its data."""

    def __init__(self, conn: Connection, dataset_pk: int, run_pks: list[int]):
        self.lock = threading.Lock()
        self.meta: dict[str, Any] = {}
        a = t.annotations
        item, label, area, width, height = self._read(conn, select(
            a.c.item_pk, a.c.label, a.c.area, a.c.width, a.c.height).where(
            a.c.dataset_pk == dataset_pk, a.c.version_to.is_(None)), 5)
        self.gt_item = _pks(item)
        gt, names = stats.gt_keys(label, area, width, height)
        unique, inverse = np.unique(gt, return_inverse=True)
        self.gt_code = inverse.reshape(-1)
        self.gt_names = [stats.gt_key(k, names) for k in unique.tolist()]
        p = t.predictions
        run, item, label = self._read(conn, select(p.c.run_pk, p.c.item_pk, p.c.label).where(
            p.c.run_pk.in_(run_pks)), 3)
        self.pred_item = _pks(item)
        self.pred_code, self.pred_keys = _keys([run, label])
        items, codes, keys = [], [], []
        for side, table in (("p", t.match_predictions), ("a", t.match_annotations)):
            run, item, label, status = self._read(conn, select(
                table.c.run_pk, table.c.item_pk, table.c.label, table.c.status).where(
                table.c.run_pk.in_(run_pks)), 4)
            code, found = _keys([run, label, status])
            items.append(_pks(item))
            codes.append(code + len(keys))
            keys += [(r, side, lab, st) for r, lab, st in found]
        self.match_item = np.concatenate(items)
        self.match_code = np.concatenate(codes)
        self.match_keys = keys

    @staticmethod
    def _read(conn: Connection, query: Any, width: int) -> list[list[Any]]:
        rows = fetch_tuples(conn, query)
        return [list(map(itemgetter(i), rows)) for i in range(width)]

    def field(self, key: str, reader: ScanInsights, numeric: bool) -> tuple[np.ndarray, Any]:
        """A metadata field per item pk: value codes and the values they stand for (as the
        scan's GROUP BY gives them), or floats (NaN: not a number) when ``numeric``."""
        name = ("num:" if numeric else "raw:") + key
        with self.lock:
            if name not in self.meta:
                expr = reader._json_value(key)
                if numeric:
                    expr = reader._json_number(expr)
                pks, values = self._read(reader.conn, select(t.items.c.pk, expr).where(
                    t.items.c.dataset_pk == reader.ds.pk), 2)
                top = max(pks, default=0)
                if numeric:
                    column = np.full(top + 1, np.nan)
                    column[pks] = np.array(values, dtype=np.float64)
                    self.meta[name] = (column, None)
                else:
                    if reader.dialect == "postgresql":  # jsonb arrives decoded
                        values = [None if v is None else json.dumps(v) for v in values]
                    codes, distinct = _codes(values)
                    column = np.full(top + 1, -1, dtype=np.int64)
                    column[pks] = codes
                    self.meta[name] = (column, distinct)
            return self.meta[name]


class ColumnInsights(ScanInsights):
    """Insights of a slice or query result from a dataset's :class:`Columns`."""

    def __init__(self, svc: Any, conn: Connection, ds: Any, slice_row: Any,
                 query: str | None, sample: int, columns_of: Any):
        super().__init__(svc, conn, ds, slice_row, query, sample)
        self.columns_of = columns_of

    def build(self) -> dict[str, Any]:
        # The scope's item pks, read once (no temporary table: every chart is counted
        # here); straight from the driver's cursor, as 500k Row objects cost more.
        result = self.conn.execute(self.scope_items)
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        self.pks = np.sort(np.fromiter(map(itemgetter(0), rows), np.int64, len(rows)))
        # Field types come from the first items in scope, as in the scan.
        self.item_where = [t.items.c.pk.in_(self.pks[:self.sample].tolist())]
        self.cols: Columns = self.columns_of([r.pk for r in self.runs])
        top = max(int(self.pks.max(initial=0)), *(int(a.max(initial=0)) for a in (
            self.cols.gt_item, self.cols.pred_item, self.cols.match_item)))
        self.mask = np.zeros(top + 1, dtype=bool)
        self.mask[self.pks] = True
        return self._build()

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
        inside = self.cols.gt_item[self.mask[self.cols.gt_item]]
        per_item = np.bincount(inside, minlength=len(self.mask))[self.pks]
        counts = Counter({0: 0})
        counts.update({n: int(c) for n, c in enumerate(np.bincount(per_item).tolist()) if c})
        return counts

    def match_counts(self, run_pk: int) -> Counter:
        return Counter({(side, label, status): n for (run, side, label, status), n
                        in self._count(self.cols.match_item, self.cols.match_code,
                                       self.cols.match_keys).items() if run == run_pk})

    def metadata(self) -> dict[str, Any]:
        """As the scan's: value counts of each field of the sample's, or a histogram of
        its numbers in 12 bins between the scope's least and greatest (each value's bin
        found by comparing with the same edges as the scan's ``CASE``)."""
        out: dict[str, Any] = {}
        for key, (kind, seen) in self._sample_fields().items():
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
                order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
                for i in order.tolist():
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

