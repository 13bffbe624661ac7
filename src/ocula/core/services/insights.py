"""Insights: chart data for a dataset, a slice or a query result.

A whole dataset is answered from running totals that every write keeps
(``insights_totals``, ``stats``): a few hundred rows, whatever the dataset's size. A
slice or query result is an arbitrary set of items: it is counted from the dataset's
columns held in memory (``insights_columns``: read once per state of the data, then a
``bincount`` per chart), with the same results as scanning the rows with GROUP BYs
(``insights_scan``, the reference). Both the columns and the results are keyed by a cheap
fingerprint of the data (label version, item and prediction counters, run commits, slice
membership), which any write changes.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, func, select

from ocula.core.services import stats
from ocula.core.services.base import ServiceBase
from ocula.core.services.insights_columns import ColumnInsights, Columns
from ocula.core.services.insights_scan import ScanInsights
from ocula.core.services.insights_totals import TotalsInsights
from ocula.core.store import schema as t
from ocula.errors import QueryError

_CACHE_SIZE = 32


class InsightsService(ServiceBase):
    """Chart data: label, size and metadata distributions and per-class run results."""

    _insights_cache: dict[tuple, dict[str, Any]]
    _insights_lock = threading.Lock()

    def insights(self, dataset: str, *, slice: str | None = None, query: str | None = None,
                 metadata_sample: int = 1000, fresh: bool = False) -> dict[str, Any]:
        """Distributions for a dataset, optionally within a slice and/or an item query.

        Returns ``{"scope", "labels": {"annotations", "predictions": {run: ...}},
        "annotations_per_item", "area", "aspect", "metadata": {field: ...},
        "runs": {run: {"classes": [...]}}}``; each bucket is ``{"count", "query",
        "target", ...}``. For a whole dataset metadata field types are inferred from
        every item; within a slice or query, from the first ``metadata_sample`` items
        in scope. ``fresh`` bypasses the cache of slice and query results (a whole
        dataset is never cached: its totals are always current).
        """
        if slice is None and not (query and query.strip()):
            return self._dataset_insights(dataset, metadata_sample)
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            slice_row = None
            if slice is not None:
                slice_row = self._slice_in(conn, ds, slice)
                if slice_row.kind != "item":
                    raise QueryError(f"slice {slice_row.name!r} holds objects; insights "
                                     "take item slices")
            parts = self._fingerprint(conn, ds.pk)
            state = tuple(parts.values())
            builder = ColumnInsights(self, conn, ds, slice_row, query, metadata_sample,
                                     lambda runs: self._columns(conn, ds.pk, runs, parts))
            # A result is kept for the very items it counted (the digest of their pks):
            # slice membership, or what an in_slice() of the query selects, can change
            # without changing the fingerprint.
            key = (ds.pk, slice_row.name if slice_row else None, query, metadata_sample,
                   state, builder.scope_digest())
            cache = self.__dict__.setdefault("_insights_cache", {})
            if not fresh and key in cache:
                return cache[key]
            result = builder.build()
        with self._insights_lock:
            if len(cache) >= _CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = result
        return result

    def _columns(self, conn: Connection, dataset_pk: int, run_pks: list[int],
                 parts: dict[str, tuple]) -> Columns:
        """The dataset's insights columns as of ``parts`` (its fingerprint by group of
        columns), the groups whose data changed since they were last read read now
        (one set kept per dataset)."""
        held = self.__dict__.setdefault("_insights_columns", {})
        with self._insights_lock:
            found = held.get(dataset_pk)
        if found is not None and found.parts == parts:
            return found
        columns = Columns(conn, dataset_pk, run_pks, parts, found)
        with self._insights_lock:
            held[dataset_pk] = columns
        return columns

    def _dataset_insights(self, dataset: str, metadata_sample: int) -> dict[str, Any]:
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            ready = stats.is_ready(conn, ds.pk)
        if not ready:
            # A dataset from before the totals existed: count it once.
            with self.db.write() as conn:
                if not stats.is_ready(conn, ds.pk):
                    stats.rebuild(conn, ds.pk)
        with self.db.read() as conn:
            return TotalsInsights(self, conn, ds, metadata_sample).build()

    def scan_insights(self, dataset: str) -> dict[str, Any]:
        """Whole-dataset insights computed by scanning the rows, ignoring the totals
        (the reference the totals are checked against; slow on large datasets)."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            return ScanInsights(self, conn, ds, None, None, 1000).build()

    def _fingerprint(self, conn: Connection, dataset_pk: int) -> dict[str, tuple]:
        """What the insights columns were read from, by group of columns (``gt``,
        ``pred``, ``match``, ``meta``): each part changes whenever anything its group
        holds changes. Each part of a part is an index look-up (max of a key) or a few
        rows of totals, not a scan. Slice membership is no part of it: a scoped result
        is keyed by the items it counted."""
        items = t.items
        mine = items.c.dataset_pk == dataset_pk
        # The item count from the running totals (items by their number of boxes) when
        # complete: counting a million items' index entries takes ~100 ms on PostgreSQL.
        totals = stats.totals_of(conn, dataset_pk, (stats.PER_ITEM,))
        count = sum(totals[stats.PER_ITEM].values()) if totals is not None else \
            conn.scalar(select(func.count()).select_from(items).where(mine))
        # One aggregate per statement: SQLite answers a lone min()/max() from an index.
        shape = (count, conn.scalar(select(func.max(items.c.pk)).where(mine)))
        edited = conn.scalar(select(func.max(items.c.updated_at)).where(mine))
        version = conn.scalar(select(func.max(t.annotation_versions.c.version)).where(
            t.annotation_versions.c.dataset_pk == dataset_pk))
        runs = tuple(map(tuple, conn.execute(
            select(t.model_runs.c.pk, t.model_runs.c.committed_at).where(
                t.model_runs.c.dataset_pk == dataset_pk).order_by(t.model_runs.c.pk))))
        boxes = conn.scalar(select(func.max(t.annotations.c.pk)))
        predictions = conn.scalar(select(func.max(t.predictions.c.pk)))
        return {"gt": (shape, version, boxes), "pred": (shape, runs, predictions),
                "match": (shape, version, boxes, runs, predictions),
                "meta": (shape, edited)}
