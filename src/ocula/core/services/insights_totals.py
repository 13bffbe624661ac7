"""Whole-dataset insights from the running totals (``ocula.core.services.stats``).

The same chart data as a scan computes, read from a few hundred rows of totals instead
of millions of annotations, predictions and match rows. Slices and query results are
arbitrary item sets, so they are still computed by scanning (``insights.py``).

Differences from a scan: metadata field types are inferred from every item, not from a
sample of the first ones; a text field with more than 1,000 distinct values lists its top
values with ties broken in index order (a scan, in whatever order its GROUP BY gives).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Connection, func, select

from ocula.core.services import stats
from ocula.core.services.insights_scan import (
    MAX_CATEGORIES,
    NUMERIC_BINS,
    ScanInsights,
    bin_edges,
    field_kind,
)
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples

# A text field with more distinct values than this lists its top values only.
_ALL_VALUES = 1000


class TotalsInsights(ScanInsights):
    """Insights of a whole dataset, read from its totals."""

    def __init__(self, svc: Any, conn: Connection, ds: Any, sample: int):
        super().__init__(svc, conn, ds, None, None, sample)
        self.totals = stats.load(conn, ds.pk)

    def build(self) -> dict[str, Any]:
        return self._build()

    def _total(self, kind: str, run_pk: int = 0) -> Counter:
        return self.totals.get((run_pk, kind), Counter())

    def count_items(self) -> int:
        return sum(self._total(stats.PER_ITEM).values())

    def gt_counts(self) -> Counter:
        return self._total(stats.GT)

    def per_item_counts(self, n_items: int) -> Counter:
        return self._total(stats.PER_ITEM)

    def prediction_counts(self) -> dict[int, Counter]:
        return {r.pk: self._total(stats.PRED, r.pk) for r in self.runs}

    def match_counts(self, run_pk: int) -> Counter:
        return self._total(stats.MATCH, run_pk)

    def metadata(self) -> dict[str, Any]:
        """Per field: value counts or a histogram, as the scan gives them, from the
        items' counts by ``[field, value]`` (read by index ranges: a field with a
        million distinct values costs a handful of range reads)."""
        per_type: dict[str, Counter] = defaultdict(Counter)
        for (field, vtype), n in self._total(stats.META_N).items():
            per_type[field][vtype] += n
        out: dict[str, Any] = {}
        for field in sorted(per_type):
            n = per_type[field]
            kinds = Counter({"categorical": n["str"] + n["bool"], "number": n["num"]})
            if not kinds["categorical"] and not kinds["number"]:
                continue  # only nulls and nested values: not charted, as in a scan
            missing = self.n_items - sum(n.values())
            if field_kind(kinds) == "number":
                out[field] = self._number_field(field, self.n_items - n["num"])
            else:
                out[field] = self._text_field(field, n, missing)
        return out

    def _meta_rows(self, field: str, vtype: str, kind: str = stats.META) -> Any:
        s = t.dataset_stats
        # Every index column, nothing else (meta rows have run_pk 0): index-only reads.
        return [s.c.dataset_pk == self.ds.pk, s.c.kind == kind,
                s.c.field == field, s.c.vtype == vtype, s.c.count != 0]

    def _text_field(self, field: str, n: Counter, missing: int) -> dict[str, Any]:
        s = t.dataset_stats
        distinct = self.conn.scalar(select(func.count()).select_from(
            select(s.c.pk).where(*self._meta_rows(field, "str")).limit(_ALL_VALUES + 1)
            .subquery()))
        strings = select(s.c.key, s.c.count).where(*self._meta_rows(field, "str"))
        if distinct > _ALL_VALUES:
            # Free text (file names, ids): the most frequent values only, straight from
            # the index (ties in index order).
            strings = strings.order_by(s.c.count.desc(), s.c.key_hash.desc()).limit(
                MAX_CATEGORIES)
        rows = fetch_tuples(self.conn, strings)
        rows += fetch_tuples(self.conn, select(s.c.key, s.c.count).where(
            *self._meta_rows(field, "bool")))
        decoded: Counter = Counter()
        for key, count in rows:
            decoded[json.dumps(json.loads(key)[1])] += count
        listed = sum(count for _, count in rows)
        other = n["str"] + n["bool"] - listed + n["num"] + n["nested"]
        # Items without the field count as null, as in a scan.
        if n["null"] + missing:
            decoded["null"] += n["null"] + missing
        return self._categorical(field, decoded, other)

    def _number_field(self, field: str, missing: int) -> dict[str, Any]:
        s = t.dataset_stats
        where = self._meta_rows(field, "num")
        # Two index seeks: SQLite scans the range for min() and max() in one statement.
        lo = self.conn.scalar(select(s.c.num).where(*where).order_by(s.c.num).limit(1))
        hi = self.conn.scalar(select(s.c.num).where(*where).order_by(s.c.num.desc()).limit(1))
        width = (hi - lo) / NUMERIC_BINS if hi > lo else 1.0
        # Bins as the scan's. Whole value groups inside a bin are summed from the
        # group totals; single values are read only in the groups cut by a bin edge.
        edges = [lo, *bin_edges(lo, width), math.inf]
        grouped: Counter = Counter()
        for b in range(NUMERIC_BINS):
            n = self._count_between(field, edges[b], edges[b + 1])
            if n:
                grouped[b] = n
        if missing:
            grouped[None] += missing
        return self._numeric(field, grouped, lo, hi, width)

    def _count_between(self, field: str, low: float, high: float) -> int:
        """Items whose number in ``field`` is >= low and < high."""
        s = t.dataset_stats

        def total(kind: str, a: float, b: float) -> int:
            return int(self.conn.scalar(select(func.sum(s.c.count)).where(
                *self._meta_rows(field, "num", kind), s.c.num >= a, s.c.num < b)) or 0)

        first = stats.value_group(low)
        # Start of the first whole group at or above low, and of the group holding high.
        whole_from = low if stats.group_start(first) == low else stats.group_start(first + 1)
        whole_to = high if math.isinf(high) else stats.group_start(stats.value_group(high))
        if whole_from >= whole_to:  # both edges in one group
            return total(stats.META, low, high)
        return (total(stats.META, low, whole_from) + total(stats.META_Q, whole_from, whole_to)
                + total(stats.META, whole_to, high))
