"""Whole-dataset insights from the running totals (``ocula.core.services.stats``).

The same chart data as a scan computes, read from a few hundred rows of totals instead
of millions of annotations, predictions and match rows. Slices and query results are
arbitrary item sets, so they are still computed by scanning (``insights.py``).

One difference from a scan: metadata field types are inferred from every item, not
from a sample of the first ones.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Connection

from ocula.core.services import stats
from ocula.core.services.insights_scan import NUMERIC_BINS, ScanInsights, field_kind


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
        items' counts by ``[field, value]``."""
        values: dict[str, Counter] = defaultdict(Counter)
        nested: Counter = Counter()
        kinds: dict[str, Counter] = defaultdict(Counter)
        for key, n in self._total(stats.META).items():
            field = key[0]
            if len(key) == 1:
                nested[field] += n
                continue
            value = key[1]
            if isinstance(value, bool | str):
                kinds[field]["categorical"] += n
            elif isinstance(value, int | float):
                kinds[field]["number"] += n
            values[field][value] += n
        out: dict[str, Any] = {}
        for field in sorted(kinds):
            with_field = sum(values[field].values()) + nested[field]
            if field_kind(kinds[field]) == "number":
                out[field] = self._number_field(field, values[field])
            else:
                decoded: Counter = Counter()
                for value, n in values[field].items():
                    decoded[json.dumps(value)] += n
                # Items without the field count as null, as in a scan.
                decoded["null"] += self.n_items - with_field
                if not decoded["null"]:
                    del decoded["null"]
                out[field] = self._categorical(field, decoded, nested[field])
        return out

    def _number_field(self, field: str, values: Counter) -> dict[str, Any]:
        numbers = [(float(v), n) for v, n in values.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)]
        lo = min(v for v, _ in numbers)
        hi = max(v for v, _ in numbers)
        width = (hi - lo) / NUMERIC_BINS if hi > lo else 1.0
        grouped: Counter = Counter()
        for v, n in numbers:
            grouped[math.floor((v - lo) / width)] += n
        missing = self.n_items - sum(n for _, n in numbers)
        if missing:
            grouped[None] += missing
        return self._numeric(field, grouped, lo, hi, width)
