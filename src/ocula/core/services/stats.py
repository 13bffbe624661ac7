"""Running totals behind whole-dataset insights.

A whole-dataset insights call at a million items is several scans of millions of rows
(tens of seconds on SQLite). Instead, every write that changes what insights count adds
its *change* to the ``dataset_stats`` table, in the same transaction, computed in Python
from rows the write already holds — no extra scans. Insights then read a few hundred
rows. What is counted (``kind`` → ``key``):

- ``gt``: current annotations by ``[label, area bucket, aspect bucket]``
- ``per_item``: items by their number of current annotations (``0`` included)
- ``meta``: items by ``[field, value]`` for scalar top-level metadata values, and by
  ``[field]`` for any other (nested) value; these rows also carry ``field``, ``vtype``
  (str, bool, num, null, nested) and ``num`` so one field is read by index ranges
- ``meta_n``: items by ``[field, vtype]``
- ``meta_q``: items by ``[field, group]`` of numeric values, a group being the floats
  that share their sign, exponent and top mantissa bits (``num`` = the group's smallest
  float): a histogram sums groups, reading single values only near its bin edges
- ``pred``: a run's predictions by label (``run_pk`` set)
- ``match``: a committed run's match rows by ``[side, label, status]`` (``run_pk`` set)
- ``ready``: present once a dataset's totals are complete

Datasets made before these totals existed have no ``ready`` row; :func:`rebuild`
computes their totals from scratch once (and serves tests as the reference).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, delete, func, select

from ocula.core.services.base import chunks
from ocula.core.store import schema as t
from ocula.core.store.bulk import fetch_tuples

GT, PER_ITEM, META, META_N, META_Q = "gt", "per_item", "meta", "meta_n", "meta_q"
PRED, MATCH, READY = "pred", "match", "ready"
# Kinds with a few rows each (META has one per distinct value: read by field).
SMALL_KINDS = (GT, PER_ITEM, META_N, PRED, MATCH, READY)


def value_type(value: Any) -> str:
    """The ``vtype`` of a metadata value: str, bool, num, null or nested."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, int | float):
        return "num"
    return "nested"


def log2_bucket(value: Any) -> int | None:
    """``floor(log2(value))`` exactly (no rounding near powers of two), None for a
    missing, zero or negative value."""
    if value is None or not value > 0 or math.isinf(value):
        return None
    return math.frexp(value)[1] - 1


def gt_counts(rows: Iterable[tuple[Any, Any, Any, Any]]) -> Counter:
    """Annotations ``(label, area, width, height)`` counted by ``(label, area bucket,
    aspect bucket)``; buckets as :func:`log2_bucket` (sizes are never negative)."""
    tally = AnnotationTally()
    for _ in tally.rows(((0, *r) for r in rows), GT_COLUMNS):
        pass
    return tally.keys


# The columns an AnnotationTally reads.
GT_COLUMNS = ("item_pk", "label", "area", "width", "height")


class AnnotationTally:
    """Counts annotation rows by key and by item as they go into an insert.

    At millions of boxes per call the counting must cost far less than the insert, so
    rows are bucketed with numpy a batch at a time (frexp is exact, as
    :func:`log2_bucket`)."""

    BATCH = 65_536

    def __init__(self) -> None:
        self.keys: Counter = Counter()
        self.items: Counter = Counter()

    def rows(self, rows: Iterable[tuple[Any, ...]], columns: tuple[str, ...]
             ) -> Iterator[tuple[Any, ...]]:
        """Pass ``rows`` (tuples in ``columns`` order) through, counting them."""
        at = tuple(columns.index(c) for c in GT_COLUMNS)
        buf: list[tuple[Any, ...]] = []
        for r in rows:
            buf.append(r)
            yield r
            if len(buf) >= self.BATCH:
                self.count(*(list(map(itemgetter(i), buf)) for i in at))
                buf = []
        if buf:
            self.count(*(list(map(itemgetter(i), buf)) for i in at))

    def count(self, item_pks: list[int], labels: list[Any], areas: list[Any],
              widths: list[Any], heights: list[Any]) -> None:
        """Count rows given column by column (the columns of GT_COLUMNS)."""
        if not item_pks:
            return
        pks, per_item = np.unique(np.array(item_pks, dtype=np.int64), return_counts=True)
        self.items.update(dict(zip(pks.tolist(), per_item.tolist(), strict=True)))
        key, names = gt_keys(labels, areas, widths, heights)
        unique, counts = np.unique(key, return_counts=True)
        for k, n in zip(unique.tolist(), counts.tolist(), strict=True):
            self.keys[gt_key(k, names)] += n


_NO_BUCKET = -2048  # below any float64 exponent: "no bucket"


def gt_keys(labels: list[Any], areas: list[Any], widths: list[Any],
            heights: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Annotations' ``(label, area bucket, aspect bucket)`` as one int64 per row (read
    back with :func:`gt_key`) and the labels its codes stand for. Buckets as
    :func:`log2_bucket` (frexp is exact), computed with numpy for millions of rows."""
    codes = {v: i for i, v in enumerate(dict.fromkeys(labels))}
    label_code = np.fromiter(map(codes.__getitem__, labels), np.int64, len(labels))
    area, w, h = map(_floats, (areas, widths, heights))
    # Zero or missing sizes (NaN here) have no bucket, as log2() gives none in SQL.
    area_b = np.where(area > 0, np.frexp(np.where(area > 0, area, 1.0))[1] - 1, _NO_BUCKET)
    has_aspect = (w > 0) & (h > 0)
    aspect = np.divide(w, h, out=np.ones_like(w), where=has_aspect)
    aspect_b = np.where(has_aspect, np.frexp(aspect)[1] - 1, _NO_BUCKET)
    return (label_code * 4096 + area_b + 2048) * 4096 + aspect_b + 2048, list(codes)


def gt_key(key: int, names: list[Any]) -> tuple[Any, int | None, int | None]:
    """The ``(label, area bucket, aspect bucket)`` of a :func:`gt_keys` code."""
    code, rest = divmod(key, 4096 * 4096)
    ab, sb = divmod(rest, 4096)
    return names[code], None if ab == 0 else ab - 2048, None if sb == 0 else sb - 2048


def _floats(values: list[Any]) -> np.ndarray:
    """A column as float64, None as NaN."""
    try:
        return np.fromiter(values, np.float64, len(values))
    except TypeError:  # a None among them
        return np.array(values, dtype=np.float64)


def meta_values(metadata: Iterable[Mapping[str, Any] | None]) -> Counter:
    """Items' top-level metadata counted by ``(field, vtype, value)``; numbers as floats
    (their totals are kept by value, not by spelling), nested values as None. Cheap
    per item: the JSON keys are made once per distinct entry (:func:`meta_keys`)."""
    counts: Counter = Counter()
    for md in metadata:
        if not md:
            continue
        for field, value in md.items():
            vtype = value_type(value)
            counts[(field, vtype, float(value) if vtype == "num"
                    else None if vtype == "nested" else value)] += 1
    return counts


def meta_keys(field: str, vtype: str, value: Any) -> list[tuple[str, str]]:
    """The ``(kind, key)`` totals an item with ``field = value`` counts under."""
    keys = [(META, json.dumps([field]) if vtype == "nested" else json.dumps([field, value])),
            (META_N, json.dumps([field, vtype]))]
    if vtype == "num":
        keys.append((META_Q, json.dumps([field, value_group(value)])))
    return keys


# Mantissa bits dropped from a float's ordered bit pattern to form its value group:
# keeping 8 puts 256 groups in each power of two.
_GROUP_SHIFT = 44
_SIGN = 1 << 63


def _ordered(value: float) -> int:
    """The float's bits as an integer that sorts like the float."""
    bits = struct.unpack("<q", struct.pack("<d", value))[0]
    return bits if bits >= 0 else -(bits & (_SIGN - 1)) - 1


def _from_ordered(ordered: int) -> float:
    bits = ordered if ordered >= 0 else (-(ordered + 1)) | _SIGN
    return struct.unpack("<d", struct.pack("<Q", bits & ((1 << 64) - 1)))[0]


def value_group(value: float) -> int:
    """The group of a float: floats of one group form one interval."""
    return _ordered(value) >> _GROUP_SHIFT


def group_start(group: int) -> float:
    """The smallest float of a group."""
    return _from_ordered(group << _GROUP_SHIFT)


class Delta:
    """Changes to a dataset's totals, gathered during one write."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, str, str]] = Counter()

    def add(self, kind: str, key: str, n: int = 1, run_pk: int = 0) -> None:
        self.counts[(run_pk, kind, key)] += n

    def add_items(self, metadata: Iterable[Mapping[str, Any] | None], sign: int = 1) -> None:
        """New (``sign=1``) or removed (``-1``) items with no annotations yet counted."""
        metadata = list(metadata)
        self.add_metadata(meta_values(metadata), sign)
        self.counts[(0, PER_ITEM, "0")] += sign * len(metadata)

    def change_metadata(self, old: Mapping[str, Any] | None,
                        new: Mapping[str, Any] | None) -> None:
        self.add_metadata(meta_values([old]), -1)
        self.add_metadata(meta_values([new]))

    def add_metadata(self, values: Counter, sign: int = 1) -> None:
        """Items counted by :func:`meta_values`, added (1) or taken away (-1)."""
        for entry, n in values.items():
            for kind, key in meta_keys(*entry):
                self.counts[(0, kind, key)] += sign * n

    def add_annotations(self, rows: Iterable[tuple[Any, Any, Any, Any]], sign: int = 1) -> None:
        """Annotations as ``(label, area, width, height)`` gained (1) or closed (-1)."""
        self.add_gt_counts(gt_counts(rows), sign)

    def add_gt_counts(self, counts: Counter, sign: int = 1) -> None:
        for key, n in counts.items():
            self.counts[(0, GT, json.dumps(list(key)))] += sign * n

    def annotation_write(self, current_item_pks: Iterable[int], replaced: Iterable[Any],
                         tally: AnnotationTally) -> None:
        """One annotate call: ``current_item_pks`` the item of each current annotation
        of the touched items before it, ``replaced`` the rows it closed, ``tally`` what
        it inserted."""
        closed = list(replaced)
        self.add_annotations(((r.label, r.area, r.width, r.height) for r in closed), -1)
        self.add_gt_counts(tally.keys)
        before = Counter(current_item_pks)
        after = before + tally.items
        after.subtract(r.item_pk for r in closed)
        self.move_items({pk: before[pk] for pk in tally.items}, after)

    def annotation_removal(self, conn: Connection, rows: list[Any]) -> None:
        """Current annotation ``rows`` (with item_pk, label, area, width, height) about
        to be closed; reads their items' counts, so call it before closing them."""
        a = t.annotations
        self.add_annotations(((r.label, r.area, r.width, r.height) for r in rows), -1)
        touched = list({r.item_pk for r in rows})
        before: Counter = Counter()
        for part in chunks(touched):
            before.update(dict(conn.execute(
                select(a.c.item_pk, func.count()).where(a.c.item_pk.in_(part),
                                                        a.c.version_to.is_(None))
                .group_by(a.c.item_pk)).all()))
        after = before.copy()
        after.subtract(r.item_pk for r in rows)
        self.move_items({pk: before[pk] for pk in touched}, after)

    def move_items(self, before: Mapping[int, int], after: Mapping[int, int]) -> None:
        """Items whose number of current annotations went from ``before[pk]`` to
        ``after[pk]``."""
        for pk, old in before.items():
            new = after[pk]
            if new != old:
                self.counts[(0, PER_ITEM, str(old))] -= 1
                self.counts[(0, PER_ITEM, str(new))] += 1

    def add_predictions(self, run_pk: int, labels: Iterable[str | None], sign: int = 1) -> None:
        self.add_counts(Counter({(run_pk, PRED, label): n
                                 for label, n in Counter(labels).items()}), sign)

    def add_counts(self, counts: Counter, sign: int = 1) -> None:
        """Counts by ``(run_pk, kind, value)``, the value made into its JSON key."""
        for (run_pk, kind, value), n in counts.items():
            key = json.dumps(list(value) if isinstance(value, tuple) else value)
            self.counts[(run_pk, kind, key)] += sign * n

    def save(self, conn: Connection, dataset_pk: int) -> None:
        """Add these changes to the stored totals (inside the caller's transaction)."""
        changed = [(k, n) for k, n in self.counts.items() if n]
        if not changed:
            return
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # One order for every writer: concurrent PostgreSQL transactions then take the
        # rows' locks in the same order and cannot deadlock.
        rows = sorted((dataset_pk, run_pk, kind, key, _hash(key), n,
                       *(_meta_columns(kind, key) if kind in (META, META_Q)
                         else (None, None, None)))
                      for (run_pk, kind, key), n in changed)
        conn.exec_driver_sql(
            "INSERT INTO dataset_stats (dataset_pk, run_pk, kind, key, key_hash, count, "
            f"field, vtype, num) VALUES ({', '.join([mark] * 9)}) "
            "ON CONFLICT (dataset_pk, run_pk, kind, key_hash) "
            "DO UPDATE SET count = dataset_stats.count + excluded.count", rows)
        if any(n < 0 for _, n in changed):
            # Totals that fell to zero go, so a value no item has any more is not listed.
            conn.execute(delete(t.dataset_stats).where(
                t.dataset_stats.c.dataset_pk == dataset_pk, t.dataset_stats.c.count == 0))
        self.counts.clear()


def _meta_columns(kind: str, key: str) -> tuple[str, str, float | None]:
    if kind == META_Q:
        field, group = json.loads(key)
        return field, "num", group_start(group)
    field, *value = json.loads(key)
    if not value:
        return field, "nested", None
    vtype = value_type(value[0])
    return field, vtype, float(value[0]) if vtype == "num" else None


def _hash(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def mark_ready(conn: Connection, dataset_pk: int) -> None:
    d = Delta()
    d.add(READY, "")
    d.save(conn, dataset_pk)


def is_ready(conn: Connection, dataset_pk: int) -> bool:
    return conn.scalar(select(t.dataset_stats.c.pk).where(
        t.dataset_stats.c.dataset_pk == dataset_pk, t.dataset_stats.c.run_pk == 0,
        t.dataset_stats.c.kind == READY)) is not None


def totals_of(conn: Connection, dataset_pk: int, kinds: tuple[str, ...],
              run_pk: int = 0) -> dict[str, Counter] | None:
    """A few small kinds of a dataset's totals (``kind -> Counter(decoded key ->
    count)``), or None while its totals are not complete (callers then count rows): what
    pages show at every load (item, box and prediction counts, labels) without counting
    millions of rows."""
    s = t.dataset_stats
    rows = fetch_tuples(conn, select(s.c.kind, s.c.key, s.c.count).where(
        s.c.dataset_pk == dataset_pk, s.c.run_pk.in_([0, run_pk]),
        s.c.kind.in_((*kinds, READY)), s.c.count != 0))
    out: dict[str, Counter] = {k: Counter() for k in kinds}
    ready = False
    for kind, key, n in rows:
        if kind == READY:
            ready = True
        else:
            value = json.loads(key)
            out[kind][tuple(value) if isinstance(value, list) else value] += n
    return out if ready else None


def drop_run(conn: Connection, run_pk: int, kinds: tuple[str, ...] = (PRED, MATCH)) -> None:
    conn.execute(delete(t.dataset_stats).where(t.dataset_stats.c.run_pk == run_pk,
                                               t.dataset_stats.c.kind.in_(kinds)))


def drop_dataset(conn: Connection, dataset_pk: int) -> None:
    conn.execute(delete(t.dataset_stats).where(t.dataset_stats.c.dataset_pk == dataset_pk))


def match_delta(run_pk: int, pred_counts: Iterable[tuple[tuple[Any, str], int]],
                gt_counts: Iterable[tuple[tuple[Any, str], int]]) -> Delta:
    """A committed run's match rows counted as ``((label, status), rows)`` of predictions
    and of ground truth."""
    d = Delta()
    for side, counts in (("p", pred_counts), ("a", gt_counts)):
        d.add_counts(Counter({(run_pk, MATCH, (side, *key)): n for key, n in counts}))
    return d


def load(conn: Connection, dataset_pk: int) -> dict[tuple[int, str], Counter]:
    """The stored totals but ``meta`` (one row per distinct value, read by field):
    ``(run_pk, kind) -> Counter(decoded key -> count)``."""
    out: dict[tuple[int, str], Counter] = {}
    rows = fetch_tuples(conn, select(t.dataset_stats.c.run_pk, t.dataset_stats.c.kind,
                                     t.dataset_stats.c.key, t.dataset_stats.c.count)
                        .where(t.dataset_stats.c.dataset_pk == dataset_pk,
                               t.dataset_stats.c.kind.in_(SMALL_KINDS),
                               t.dataset_stats.c.count != 0))
    for run_pk, kind, key, n in rows:
        value = json.loads(key) if key else None
        if isinstance(value, list):
            value = tuple(value)
        out.setdefault((run_pk, kind), Counter())[value] += n
    return out


def rebuild(conn: Connection, dataset_pk: int) -> None:
    """Compute a dataset's totals from its rows, replacing any stored ones (for
    datasets older than the totals, and as the reference the running totals must
    equal)."""
    drop_dataset(conn, dataset_pk)
    d = Delta()
    items = t.items
    n_items = conn.scalar(select(func.count()).where(items.c.dataset_pk == dataset_pk))
    d.add_metadata(meta_values(conn.scalars(select(items.c.metadata).where(
        items.c.dataset_pk == dataset_pk))))
    a = t.annotations
    current = [a.c.dataset_pk == dataset_pk, a.c.version_to.is_(None)]
    d.add_annotations(fetch_tuples(conn, select(a.c.label, a.c.area, a.c.width, a.c.height)
                                   .where(*current)))
    per_item = Counter(n for _, n in conn.execute(
        select(a.c.item_pk, func.count()).where(*current).group_by(a.c.item_pk)))
    per_item[0] += n_items - sum(per_item.values())
    for n, c in per_item.items():
        if c:
            d.add(PER_ITEM, str(n), c)
    runs = conn.execute(select(t.model_runs.c.pk, t.model_runs.c.committed_at)
                        .where(t.model_runs.c.dataset_pk == dataset_pk)).all()
    d.add_counts(prediction_counts(conn, lambda tb: [tb.c.run_pk.in_([r.pk for r in runs])]))
    committed = [r.pk for r in runs if r.committed_at is not None]
    d.add_counts(match_counts(conn, lambda tb: [tb.c.run_pk.in_(committed)]))
    d.add(READY, "")
    d.save(conn, dataset_pk)
    if conn.dialect.name == "postgresql":
        # Up to millions of new rows at once: plan the reads with real row counts now
        # rather than after autovacuum gets round to it.
        conn.exec_driver_sql("ANALYZE dataset_stats")


def item_removal(conn: Connection, item_pk: int, metadata: Mapping[str, Any] | None) -> Delta:
    """What deleting an item takes away: its metadata, current annotations,
    predictions and match rows (read before the delete)."""
    d = Delta()
    d.change_metadata(metadata, None)
    a = t.annotations
    rows = conn.execute(select(a.c.label, a.c.area, a.c.width, a.c.height).where(
        a.c.item_pk == item_pk, a.c.version_to.is_(None))).all()
    d.add_annotations(rows, -1)
    d.add(PER_ITEM, str(len(rows)), -1)

    def of_item(table: Table) -> list[Any]:
        return [table.c.item_pk == item_pk]

    d.add_counts(prediction_counts(conn, of_item), -1)
    d.add_counts(match_counts(conn, of_item), -1)
    return d


Where = Callable[[Table], list[Any]]


def prediction_counts(conn: Connection, where: Where) -> Counter:
    """Predictions by ``(run_pk, PRED, label)``; ``where(table)``: the conditions."""
    p = t.predictions
    return Counter({(run_pk, PRED, label): n for run_pk, label, n in conn.execute(
        select(p.c.run_pk, p.c.label, func.count()).where(*where(p))
        .group_by(p.c.run_pk, p.c.label))})


def match_counts(conn: Connection, where: Where, sides: str = "pa") -> Counter:
    """Match rows by ``(run_pk, MATCH, (side, label, status))``, side "p" for
    predictions and "a" for ground truth (those of ``sides``); ``where(table)``: the
    conditions."""
    counts: Counter = Counter()
    for side, table in (("p", t.match_predictions), ("a", t.match_annotations)):
        if side not in sides:
            continue
        for run_pk, label, status, n in conn.execute(
                select(table.c.run_pk, table.c.label, table.c.status, func.count())
                .where(*where(table))
                .group_by(table.c.run_pk, table.c.label, table.c.status)):
            counts[(run_pk, MATCH, (side, label, status))] += n
    return counts
