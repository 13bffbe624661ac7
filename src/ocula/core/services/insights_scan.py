"""Insights computed by scanning: distributions of a dataset, a slice or a query result.

Everything is a ``GROUP BY`` in the database; Python only reshapes the (small) grouped
rows into chart data. Every bucket carries the query that selects it (``query``, to be
run as an item or object query as ``target`` says), so a click on a bar can filter.

Histograms of box area use one bucket per power of two (``area >= 256 and area <
512``); aspect ratios (width / height) likewise (``aspect >= 0.5 and aspect < 1``), so
bucket edges print exactly and a bar's query selects exactly that bar's objects.

The count-gathering methods (``gt_counts``, ``per_item_counts``, ...) are what
``insights_totals.TotalsInsights`` replaces with reads of the running totals.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    case,
    cast,
    func,
    literal,
    select,
)

from ocula.core.query.parser import condition_text
from ocula.core.query.plan import plan_items
from ocula.core.services import stats
from ocula.core.services.base import ServiceBase
from ocula.core.store import schema as t
from ocula.errors import QueryError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
# Items-per-count histogram: counts above this share one "n or more" bucket.
MAX_PER_ITEM = 20
MAX_CATEGORIES = 25
NUMERIC_BINS = 12
# Most groups one metadata GROUP BY may produce before fields are split over passes.
MAX_GROUPS = 20_000
# Stands for "every other value" of a free-text field counted by its top values only.
_REST = object()
_CACHE_SIZE = 32


def quote(text: str) -> str:
    """A string literal of the query language."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(path: str) -> str:
    return "metadata." + (path if _NAME.match(path) else quote(path))


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class ScanInsights:
    """One insights computation by scanning (one read transaction)."""

    def __init__(self, svc: ServiceBase, conn: Connection, ds: Any, slice_row: Any,
                 query: str | None, sample: int):
        self.svc, self.conn, self.ds, self.query, self.sample = svc, conn, ds, query, sample
        self.slice_row = slice_row
        self.dialect = svc.db.dialect
        self.scoped = slice_row is not None or bool(query and query.strip())
        self.plan = plan = plan_items(conn, ds.pk, self.dialect, query or "",
                                      slice_pk=slice_row.pk if slice_row else None)
        if plan.query.limit is not None:
            raise QueryError("an insights scope cannot have a limit")
        # A bucket's query nests the scope's condition: its order by (which sorts, and
        # cannot stand inside item(...) or before "and") is no part of it.
        self.condition = condition_text(plan.query)
        self.item_where = plan.where
        self.scope_items = select(t.items.c.pk).where(*plan.where)
        self.runs = conn.execute(select(t.model_runs.c.pk, t.model_runs.c.name,
                                        t.model_runs.c.committed_at)
                                 .where(t.model_runs.c.dataset_pk == ds.pk)
                                 .order_by(t.model_runs.c.pk)).all()

    # --- bucket queries ---------------------------------------------------------------

    def q(self, condition: str, target: str) -> dict[str, str]:
        parts = []
        if self.slice_row is not None:
            parts.append(f"in_slice({quote(self.slice_row.name)})")
        if self.condition:
            parts.append(f"({self.condition})" if target == "items"
                         else f"item({self.condition})")
        if condition:
            parts.append(condition)
        return {"query": " and ".join(parts), "target": target}

    def _in_scope(self, item_col: Any) -> list[Any]:
        return [item_col.in_(self.scope_items)] if self.scoped else []

    def _floor(self, expr: Any) -> Any:
        if self.dialect == "postgresql":
            return func.floor(expr)
        # SQLAlchemy's pysqlite dialect replaces floor() with Python's math.floor (slow
        # per row, and it raises on NULL): truncate, then step down where truncation
        # went up (negative non-integers). Exact, unlike truncating a shifted value.
        whole = cast(expr, Integer)
        return whole - cast(expr < whole, Integer)

    def _log2_bucket(self, expr: Any) -> Any:
        if self.dialect == "postgresql":
            # PostgreSQL has no float log2; ln(x)/ln(2) can land a hair below an exact
            # power of two, so nudge it (numeric log would be exact but ~50x slower).
            return func.floor(func.ln(expr) / math.log(2) + 1e-12)
        return self._floor(func.log2(expr))

    # --- parts ----------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        if not self.scoped:
            return self._build()
        # Evaluate the scope (slice/query) once into a temporary table instead of once
        # per statement: a metadata condition is a scan of every item.
        scope = Table(f"ocula_scope_{secrets.token_hex(6)}", MetaData(),
                      Column("pk", Integer, primary_key=True), prefixes=["TEMPORARY"])
        scope.create(self.conn)
        try:
            self.conn.execute(scope.insert().from_select(["pk"], self.scope_items))
            if self.dialect == "postgresql":
                # Temporary tables are never auto-analysed; without row counts the
                # planner hashes whole tables instead of probing by item.
                self.conn.exec_driver_sql(f"ANALYZE {scope.name}")
            self.scope_items = select(scope.c.pk)
            self.item_where = [t.items.c.pk.in_(self.scope_items)]
            return self._build()
        finally:
            scope.drop(self.conn)

    def count_items(self) -> int:
        return self.conn.scalar(select(func.count()).select_from(t.items)
                                .where(*self.item_where))

    def _build(self) -> dict[str, Any]:
        n_items = self.count_items()
        self.n_items = n_items
        labels, area, aspect, n_ann = self.ground_truth()
        return {
            "scope": {"dataset_id": self.ds.id, "dataset": self.ds.name,
                      "slice": self.slice_row.name if self.slice_row else None,
                      "query": self.query or None, "items": n_items, "annotations": n_ann},
            "labels": {"annotations": labels, "predictions": self.predicted_labels()},
            "annotations_per_item": self.per_item(n_items),
            "area": area,
            "aspect": aspect,
            "metadata": self.metadata(),
            "runs": self.run_classes(),
        }

    def gt_counts(self) -> Counter:
        """Current annotations by (label, area bucket, aspect bucket)."""
        a = t.annotations
        area_b = self._log2_bucket(func.nullif(a.c.area, 0))
        aspect_b = self._log2_bucket(cast(a.c.width, Float) / func.nullif(a.c.height, 0))
        rows = self.conn.execute(
            select(a.c.label, area_b, aspect_b, func.count())
            .where(a.c.dataset_pk == self.ds.pk, a.c.version_to.is_(None),
                   *self._in_scope(a.c.item_pk))
            .group_by(a.c.label, area_b, aspect_b)).all()
        counts: Counter = Counter()
        for label, ab, sb, n in rows:
            counts[(label, None if ab is None else int(ab),
                    None if sb is None else int(sb))] += n
        return counts

    def ground_truth(self) -> tuple[list, list, list, int]:
        """Labels, area and aspect histograms of current annotations."""
        labels: Counter = Counter()
        areas: Counter = Counter()
        aspects: Counter = Counter()
        for (label, ab, sb), n in self.gt_counts().items():
            labels[label] += n
            areas[ab] += n
            aspects[sb] += n
        return (self._label_buckets(labels, "annotation", None),
                self._pow2_buckets(areas, "area"), self._pow2_buckets(aspects, "aspect"),
                sum(labels.values()))

    def _label_buckets(self, counts: Counter, kind: str, run: str | None) -> list[dict]:
        out = []
        for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            cond = "label = null" if label is None else f"label = {quote(label)}"
            if kind == "prediction":
                cond = f"type = prediction and run = {quote(run or '')} and {cond}"
            out.append({"label": label, "count": n, **self.q(cond, "objects")})
        return out

    def _pow2_buckets(self, counts: Counter, field: str) -> list[dict]:
        out = []
        for b in sorted(k for k in counts if k is not None):
            lo, hi = 2.0 ** b, 2.0 ** (b + 1)
            cond = f"{field} >= {_num(lo)} and {field} < {_num(hi)}"
            out.append({"min": lo, "max": hi, "count": counts[b], **self.q(cond, "objects")})
        if counts.get(None):
            cond = f"({field} = null or {field} = 0)" if field == "area" else f"{field} = null"
            out.append({"min": None, "max": None, "count": counts[None],
                        **self.q(cond, "objects")})
        return out

    def prediction_counts(self) -> dict[int, Counter]:
        """Each run's predictions by label."""
        per_run: dict[int, Counter] = defaultdict(Counter)
        for (run_pk, _, label), n in stats.prediction_counts(self.conn, lambda tb: [
                tb.c.run_pk.in_([r.pk for r in self.runs]),
                *self._in_scope(tb.c.item_pk)]).items():
            per_run[run_pk][label] += n
        return per_run

    def predicted_labels(self) -> dict[str, list]:
        if not self.runs:
            return {}
        per_run = self.prediction_counts()
        return {r.name: self._label_buckets(per_run[r.pk], "prediction", r.name)
                for r in self.runs}

    def per_item_counts(self, n_items: int) -> Counter:
        """Items by their number of current annotations."""
        a = t.annotations
        per = (select(a.c.item_pk, func.count().label("n"))
               .where(a.c.dataset_pk == self.ds.pk, a.c.version_to.is_(None),
                      *self._in_scope(a.c.item_pk))
               .group_by(a.c.item_pk).subquery())
        rows = self.conn.execute(select(per.c.n, func.count()).group_by(per.c.n)).all()
        counts = Counter({0: n_items - sum(c for _, c in rows)})
        counts.update(dict(rows))
        return counts

    def per_item(self, n_items: int) -> list[dict]:
        counts: Counter = Counter()
        for n, c in self.per_item_counts(n_items).items():
            counts[min(n, MAX_PER_ITEM)] += c
        out = []
        for n in sorted(counts):
            if counts[n] == 0 and n == 0:
                continue
            cond = f"count() >= {n}" if n == MAX_PER_ITEM else f"count() = {n}"
            out.append({"value": n, "or_more": n == MAX_PER_ITEM, "count": counts[n],
                        **self.q(cond, "items")})
        return out

    def match_counts(self, run_pk: int) -> Counter:
        """A committed run's match rows by (side "p"/"a", label, status)."""
        return Counter({key: n for (_, _, key), n in stats.match_counts(
            self.conn, lambda tb: [tb.c.run_pk == run_pk, *self._in_scope(tb.c.item_pk)]
        ).items()})

    def run_classes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for run in self.runs:
            if run.committed_at is None:
                out[run.name] = {"committed": False, "classes": []}
                continue
            stats: dict[Any, Counter] = defaultdict(Counter)
            for (side, label, status), n in self.match_counts(run.pk).items():
                stats[label][("gt_" if side == "a" else "") + status] += n
            classes = []
            for label in sorted(stats, key=str):
                s = stats[label]
                tp, fp, fn = s["tp"], s["fp"], s["gt_fn"]
                base = f"run = {quote(run.name)} and label = {quote(label)}" \
                    if label is not None else f"run = {quote(run.name)} and label = null"
                classes.append({
                    "label": label, "tp": tp, "fp": fp, "fn": fn,
                    "precision": tp / (tp + fp) if tp + fp else None,
                    "recall": s["gt_tp"] / (s["gt_tp"] + fn) if s["gt_tp"] + fn else None,
                    "queries": {
                        "tp": self.q(f"type = prediction and {base} and status = tp",
                                     "objects"),
                        "fp": self.q(f"type = prediction and {base} and status = fp",
                                     "objects"),
                        "fn": self.q(f"{base} and status = fn", "objects"),
                    }})
            out[run.name] = {"committed": True, "classes": classes}
        return out

    # --- metadata -------------------------------------------------------------------

    def _sample_fields(self) -> dict[str, tuple[str, int]]:
        """Top-level metadata keys of the first items in scope: (kind, distinct values
        seen) per key, kind "number" or "categorical" by majority."""
        rows = self.conn.scalars(select(t.items.c.metadata).where(*self.item_where)
                                 .order_by(t.items.c.pk).limit(self.sample)).all()
        kinds: dict[str, Counter] = defaultdict(Counter)
        seen: dict[str, set] = defaultdict(set)
        for md in rows:
            for key, value in (md or {}).items():
                if isinstance(value, bool | str):
                    kinds[key]["categorical"] += 1
                elif isinstance(value, int | float):
                    kinds[key]["number"] += 1
                else:
                    continue
                if len(seen[key]) <= MAX_CATEGORIES * 4:
                    seen[key].add(json.dumps(value))
        return {k: (field_kind(c), len(seen[k])) for k, c in sorted(kinds.items())}

    def metadata(self) -> dict[str, Any]:
        """Per field: value counts (categorical) or a histogram (numeric).

        Fields are counted together in as few ``GROUP BY`` passes as possible (each pass
        reads an item's metadata once; grouping sets of fields whose value counts
        multiply to at most ``MAX_GROUPS``), then summed per field in Python.
        """
        fields = self._sample_fields()
        if not fields:
            return {}
        raw = {k: self._json_value(k) for k in fields}
        numbers = {k: self._json_number(raw[k]) for k, (kind, _) in fields.items()
                   if kind == "number"}
        ranges: dict[str, tuple] = {}
        if numbers:
            aggs = []
            for expr in numbers.values():
                aggs += [func.min(expr), func.max(expr)]
            row = self.conn.execute(select(*aggs).where(*self.item_where)).one()
            for i, key in enumerate(numbers):
                ranges[key] = (row[2 * i], row[2 * i + 1])
        group_exprs: dict[str, Any] = {}
        width: dict[str, float] = {}
        for key, (kind, _) in fields.items():
            if kind != "number":
                group_exprs[key] = raw[key]
                continue
            lo, hi = ranges[key]
            if lo is None:
                continue
            width[key] = (hi - lo) / NUMERIC_BINS if hi > lo else 1.0
            group_exprs[key] = bin_of(numbers[key], lo, width[key])
        counts: dict[str, Counter] = {k: Counter() for k in group_exprs}
        many = [k for k, (kind, seen) in fields.items()
                if kind != "number" and seen > MAX_CATEGORIES * 4]
        for key in many:
            # Free text (file names, ids): its top values only, never every distinct one.
            expr = group_exprs.pop(key)
            rows = self.conn.execute(select(expr, func.count()).where(*self.item_where)
                                     .group_by(expr).order_by(func.count().desc())
                                     .limit(MAX_CATEGORIES)).all()
            counts[key].update(dict(rows))
            total = self.conn.scalar(select(func.count()).select_from(t.items)
                                     .where(*self.item_where))
            counts[key][_REST] = total - sum(n for _, n in rows)
        for batch in _batches({k: fields[k][1] + 1 if fields[k][0] != "number"
                               else NUMERIC_BINS + 1 for k in group_exprs}):
            exprs = [group_exprs[k] for k in batch]
            rows = self.conn.execute(select(*exprs, func.count()).where(*self.item_where)
                                     .group_by(*exprs)).all()
            for row in rows:
                for i, key in enumerate(batch):
                    counts[key][row[i]] += row[-1]
        out: dict[str, Any] = {}
        for key, (kind, _) in fields.items():
            if kind == "number":
                out[key] = self._numeric(key, counts.get(key, Counter()), *ranges[key],
                                         width.get(key, 1.0))
            else:
                grouped = counts[key]
                other = grouped.pop(_REST, 0)
                decoded: Counter = Counter()
                for raw, n in grouped.items():
                    decoded[json.dumps(self._decode(raw))] += n
                out[key] = self._categorical(key, decoded, other)
        return out

    def _json_value(self, key: str) -> Any:
        """The field as JSON: text on SQLite ('"rain"', '3', 'true'), jsonb on PG."""
        col = t.items.c.metadata
        if self.dialect == "postgresql":
            return col.op("#>", return_type=t.JsonType)(literal([key], ARRAY(Text)))
        return col.op("->", return_type=Text)(literal("$." + json.dumps(key)))

    def _json_number(self, value: Any) -> Any:
        if self.dialect == "postgresql":
            return case((func.jsonb_typeof(value) == "number",
                         cast(cast(value, Text), Float)))
        # JSON text starting with a digit or '-' is a number; strings start with '"'.
        first = func.substr(value, 1, 1)
        return case((first.in_(list("-0123456789")), cast(value, Float)))

    def _decode(self, value: Any) -> Any:
        if self.dialect == "postgresql" or value is None:
            return value
        return json.loads(value)

    def _categorical(self, key: str, decoded: Counter, other: int) -> dict[str, Any]:
        """Value counts of a field from counts by value as JSON text; ``other`` counts
        values already known to fall outside the listed ones."""
        values: list[dict[str, Any]] = []
        null_count = 0
        for text, n in sorted(decoded.items(), key=lambda kv: (-kv[1], kv[0])):
            v = json.loads(text)
            if isinstance(v, bool):
                values.append({"value": v, "count": n,
                               **self.q(f"{_key(key)} = {'true' if v else 'false'}", "items")})
            elif isinstance(v, str) and len(values) < MAX_CATEGORIES:
                values.append({"value": v, "count": n,
                               **self.q(f"{_key(key)} = {quote(v)}", "items")})
            elif v is None:
                null_count += n
            else:
                other += n
        if null_count:
            values.append({"value": None, "count": null_count,
                           **self.q(f"{_key(key)} = null", "items")})
        return {"type": "categorical", "values": values, "other": other}

    def _numeric(self, key: str, grouped: Counter, lo: Any, hi: Any,
                 width: float) -> dict[str, Any]:
        if lo is None:
            return {"type": "numeric", "buckets": [], "missing": sum(grouped.values())}
        counts: Counter = Counter()
        missing = 0
        for b, n in grouped.items():
            if b is None:
                missing += n
            else:
                counts[min(int(b), NUMERIC_BINS - 1)] += n
        buckets = []
        for b in sorted(counts):
            start = lo + b * width
            end = lo + (b + 1) * width
            last = b == NUMERIC_BINS - 1 or hi == lo
            cond = (f"{_key(key)} >= {_num(start)} and {_key(key)} "
                    f"{'<=' if last else '<'} {_num(hi if last else end)}")
            buckets.append({"min": start, "max": hi if last else end, "count": counts[b],
                            **self.q(cond, "items")})
        return {"type": "numeric", "buckets": buckets, "missing": missing,
                "min": lo, "max": hi, "missing_query": self.q(
                    f"not {_key(key)} >= {_num(lo)}", "items")["query"]}


def bin_edges(lo: float, width: float) -> list[float]:
    """Lower edges of histogram bins 1 .. NUMERIC_BINS-1 (bin 0 starts at ``lo``). A
    value's bin is decided by comparing with these, exactly as each bucket's query
    (``>= start and < end``) does, so a bar and its query always agree."""
    return [lo + b * width for b in range(1, NUMERIC_BINS)]


def bin_of(value: Any, lo: float, width: float) -> Any:
    """SQL: the histogram bin of ``value`` (NULL when it is not a number)."""
    edges = bin_edges(lo, width)
    return case(*[(value >= edge, b) for b, edge in reversed(list(enumerate(edges, 1)))],
                (value >= lo, 0))


def field_kind(counts: Counter) -> str:
    """A metadata field's type by majority of its values; a tie is categorical."""
    return "number" if counts["number"] > counts["categorical"] else "categorical"


def _batches(cardinality: dict[str, int]) -> list[list[str]]:
    """Fields grouped so each batch's estimated number of groups stays small."""
    batches: list[list[str]] = []
    current: list[str] = []
    product = 1
    for key, n in sorted(cardinality.items(), key=lambda kv: kv[1]):
        if current and product * n > MAX_GROUPS:
            batches.append(current)
            current, product = [], 1
        current.append(key)
        product *= n
    if current:
        batches.append(current)
    return batches


def dumps(result: dict[str, Any]) -> str:
    """Insights as JSON text (for a web app)."""
    return json.dumps(result)
