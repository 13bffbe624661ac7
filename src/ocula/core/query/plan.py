"""Executable queries: a parsed, compiled query plus paging, counting and describing.

:func:`plan_items` / :func:`plan_objects` turn query text into a plan; ``plan.page()``
runs one keyset page and ``plan.count()`` the total. Each page query selects only keys
(primary key and sort values); the service then loads the page's rows by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, case, func, literal, literal_column, select, union_all
from sqlalchemy.sql.elements import Null
from sqlalchemy.sql.util import find_tables

from ocula.core.query import ast
from ocula.core.query.compile import Branch, Compiler, err
from ocula.core.query.describe import describe_query
from ocula.core.query.fields import STATUS_VALUES, JsonRef
from ocula.core.query.paging import SortKey, after, decode_cursor, encode_cursor, fingerprint
from ocula.core.query.parser import parse
from ocula.core.query.scopes import is_field
from ocula.core.store import schema as t
from ocula.errors import ValidationError

MAX_PAGE_SIZE = 10_000
KIND_RANK = {"annotation": 0, "prediction": 1}


@dataclass
class Page:
    """Keys of one page: ``rows`` are (kind, pk) pairs in order (kind is "item" for item
    queries); ``next_cursor`` is None on the last page."""

    rows: list[tuple[str, int]]
    next_cursor: str | None


def _check_page_size(page_size: int) -> None:
    if not isinstance(page_size, int) or isinstance(page_size, bool) or \
            not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE:,}")


@dataclass
class ItemsPlan:
    """An item query over one dataset, optionally within one item slice."""

    query: ast.Query
    compiler: Compiler
    slice_pk: int | None = None
    description: str = ""
    keys: list[SortKey] = field(default_factory=list)
    where: list[Any] = field(default_factory=list)
    # The query's own condition (no dataset or slice), None when it has none.
    condition: Any = None

    def __post_init__(self) -> None:
        items = t.items
        self.where = [items.c.dataset_pk == self.compiler.dataset_pk]
        if self.slice_pk is not None:
            self.where.append(items.c.pk.in_(select(t.slice_items.c.item_pk).where(
                t.slice_items.c.slice_pk == self.slice_pk)))
        if self.query.where is not None:
            self.condition = self.compiler.condition(self.query.where, items).sql
            self.where.append(self.condition)
        keys: list[SortKey] = []
        desc = False
        if self.query.order is not None:
            keys = sort_keys(self.compiler, self.query.order, items, self.query.where)
            desc = self.query.order.descending
        self.keys = keys + [SortKey(items.c.pk, desc, "number")]
        self.description = describe_query(self.query, "items")

    def fingerprint(self) -> str:
        return fingerprint("items", self.query.text, self.compiler.dataset_pk, self.slice_pk)

    def page(self, conn: Connection, page_size: int, cursor: str | None) -> Page:
        _check_page_size(page_size)
        where = list(self.where)
        served = 0
        if cursor:
            values, served = decode_cursor(cursor, self.keys, self.fingerprint())
            where.append(after(self.keys, values))
        n = _remaining(self.query.limit, served, page_size)
        if n == 0:
            return Page([], None)
        stmt = (select(*[k.expr.label(f"k{i}") for i, k in enumerate(self.keys)])
                .where(*where).order_by(*[k.ordered() for k in self.keys]).limit(n + 1))
        rows = conn.execute(stmt).all()
        more = len(rows) > n
        rows = rows[:n]
        next_cursor = None
        if more and rows:
            next_cursor = encode_cursor(list(rows[-1]), self.fingerprint(), served + len(rows))
        return Page([("item", r[-1]) for r in rows], next_cursor)

    def count(self, conn: Connection) -> int:
        total = conn.scalar(select(func.count()).select_from(t.items).where(*self.where))
        return min(total, self.query.limit) if self.query.limit is not None else total


@dataclass
class ObjectsPlan:
    """An object query: one SQL branch per object kind it can match."""

    query: ast.Query
    compiler: Compiler
    slice_pk: int | None = None
    slice_kind: str = "item"
    description: str = ""
    branches: list[Branch] = field(default_factory=list)
    keys: list[list[SortKey]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # An object slice holds annotations and predictions alike: within one, a query
        # that names no type reads both (elsewhere, annotations).
        kinds = (("annotation", "prediction") if self.slice_pk is not None
                 and self.slice_kind == "object" else ("annotation",))
        self.branches = self.compiler.object_branches(self.query.where,
                                                      order=self.query.order,
                                                      default_kinds=kinds)
        desc = self.query.order.descending if self.query.order is not None else False
        for b in self.branches:
            keys = []
            if self.query.order is not None:
                keys = sort_keys(self.compiler, self.query.order, b.scope, b.node,
                                 uniform=len(self.branches) > 1)
            if len(self.branches) > 1:
                keys.append(SortKey(None, desc, "number", const=KIND_RANK[b.scope.kind]))
            keys.append(SortKey(b.scope.pk_col, desc, "number"))
            self.keys.append(keys)
            if self.slice_pk is not None:
                b.where.append(self._in_slice(b))
        self.description = describe_query(self.query, "objects",
                                          [b.scope.kind for b in self.branches])

    def _in_slice(self, b: Branch) -> Any:
        if self.slice_kind == "object":
            col = t.slice_objects.c[f"{b.scope.kind}_pk"]
            return b.scope.pk_col.in_(select(col).where(t.slice_objects.c.slice_pk
                                                        == self.slice_pk, col.is_not(None)))
        return b.scope.item_col.in_(select(t.slice_items.c.item_pk).where(
            t.slice_items.c.slice_pk == self.slice_pk))

    def fingerprint(self) -> str:
        return fingerprint("objects", self.query.text, self.compiler.dataset_pk, self.slice_pk)

    def _branch_selects(self, i: int, values: list[Any] | None, n: int
                        ) -> list[tuple[Any, Any]]:
        """The selects of branch ``i``'s parts, each with the constant of its first key
        (None where that key is not one; see :meth:`page`)."""
        b = self.branches[i]
        out = []
        for split_keys, split_extra in split_missing(self.keys[i]):
            for from_, keys, extra in iou_parts(b, split_keys, split_extra,
                                                self.compiler.dataset_pk):
                where = [*b.where, *extra]
                if values is not None:
                    where.append(after(keys, values))
                cols = [(literal(k.const) if k.is_const else k.expr).label(f"k{j}")
                        for j, k in enumerate(keys)]
                real = [k for k in keys if not k.is_const]
                first = keys[0].const if keys[0].is_const and not keys[0].desc else None
                out.append((first, select(*cols).select_from(from_).where(*where)
                            .order_by(*[k.ordered() for k in real]).limit(n + 1)))
        return out

    def page(self, conn: Connection, page_size: int, cursor: str | None) -> Page:
        _check_page_size(page_size)
        if not self.branches:
            return Page([], None)
        values, served = None, 0
        if cursor:
            values, served = decode_cursor(cursor, self.keys[0], self.fingerprint())
        n = _remaining(self.query.limit, served, page_size)
        if n == 0:
            return Page([], None)
        parts = [p for i in range(len(self.branches))
                 for p in self._branch_selects(i, values, n)]
        # Where every part's first key is a constant (the "missing last" rank of
        # split_missing, or the kind rank), the parts of a lower constant hold every
        # earlier row: the later ones are read only when those do not fill the page
        # (telling that a committed run's predictions all have match rows reads each).
        groups: dict[Any, list[Any]] = {}
        staged = all(first is not None for first, _ in parts)
        for first, sel in parts:
            groups.setdefault(first if staged else 0, []).append(sel)
        rows: list[Any] = []
        for group in sorted(groups):
            rows += self._merged(conn, groups[group], n + 1 - len(rows))
            if len(rows) > n:
                break
        more = len(rows) > n
        rows = rows[:n]
        kinds = [b.scope.kind for b in self.branches]
        out = []
        for r in rows:
            kind = kinds[0] if len(kinds) == 1 else ("annotation" if r[-2] == 0
                                                     else "prediction")
            out.append((kind, r[-1]))
        next_cursor = None
        if more and rows:
            next_cursor = encode_cursor(list(rows[-1]), self.fingerprint(), served + len(rows))
        return Page(out, next_cursor)

    def _merged(self, conn: Connection, selects: list[Any], n: int) -> list[Any]:
        """The first ``n`` rows of ``selects`` in the page's order."""
        if len(selects) == 1:
            return conn.execute(selects[0]).all()[:n]
        # Each branch (and each part of one: split_missing, iou_parts) is cut to its
        # page by its own index-friendly ORDER BY/LIMIT before the (small) union is merged.
        merged = union_all(*[s.subquery().select() for s in selects]).subquery()
        stmt = (select(merged).order_by(*[
            (merged.c[f"k{j}"].desc() if k.desc else merged.c[f"k{j}"].asc())
            for j, k in enumerate(self.keys[0])]).limit(n))
        return conn.execute(stmt).all()

    def count(self, conn: Connection) -> int:
        total = 0
        for b in self.branches:
            total += _count(conn, b, self.compiler.dataset_pk)
        return min(total, self.query.limit) if self.query.limit is not None else total

    def run_context(self) -> dict[str, Any]:
        """The run annotations' status refers to, when the query has one."""
        for b in self.branches:
            if b.scope.kind == "annotation" and b.scope.run is not None:
                return {"pk": b.scope.run.pk, "name": b.scope.run.name}
        return {}


def _count(conn: Connection, b: Branch, dataset_pk: int) -> int:
    """The number of ``b``'s rows. A run's ground truth whose conditions are all on its
    match rows (``run = "x" and status = fn and area < 1024``) is counted as its match
    rows less those whose annotation is no longer current (closed by an edit since the
    commit: a walk of the dataset's closed annotations), not by joining every match to
    its annotation: 1.4M misses at 5M boxes, read in area order through
    ``(run_pk, status, area)``, took 8 s on SQLite."""
    scope = b.scope
    rest = b.where[len(scope.base(dataset_pk)):]
    if scope.kind == "annotation" and scope.match_inner and scope.run is not None and \
            not any(_reads(w, scope.table) for w in rest):
        m, a = scope.match, scope.table
        mine = [m.c.run_pk == scope.run.pk, *rest]
        every = conn.scalar(select(func.count()).select_from(m).where(*mine))
        closed = conn.scalar(select(func.count()).select_from(a).where(
            a.c.dataset_pk == dataset_pk, a.c.version_to.is_not(None),
            select(literal(1)).where(m.c.annotation_pk == a.c.pk, *mine).exists()))
        return every - closed
    return conn.scalar(select(func.count()).select_from(_counted_from(b)).where(*b.where))


def _reads(condition: Any, table: Any) -> bool:
    return table in find_tables(condition, include_aliases=True, check_columns=True)


def _counted_from(b: Branch) -> Any:
    """What a count of ``b``'s rows reads: predictions driven from their match rows whose
    conditions are all on those rows (``run = "x" and status = tp``) are counted from
    the match table alone, whose index covers them, without looking each prediction up
    (3.6M true positives on SQLite: 8.2 -> 0.35 s). Every match row has its prediction:
    the services delete match rows with their prediction, item or run."""
    scope = b.scope
    if scope.kind == "prediction" and scope.match_inner and not any(
            _reads(w, scope.table) for w in b.where):
        return scope.match
    return scope.from_clause()


def sort_keys(compiler: Compiler, order: ast.OrderBy, scope: Any, node: ast.Node | None,
              *, uniform: bool = False) -> list[SortKey]:
    """ORDER BY terms for ``order`` in ``scope``; missing values sort last either way.

    Where the query guarantees a value (``confidence > 0.8 order by confidence``) the
    key is the bare column, which an index can serve; ``uniform`` (union branches must
    produce the same columns) keeps the general two-key form.
    """
    typed = compiler.operand(order.key, scope)
    desc = order.descending
    if typed.type == "json":
        ref: JsonRef = typed.sql
        rank = case((ref.json_type() == "number", 0), (ref.json_type() == "string", 1),
                    (ref.is_null(), 3), else_=2)
        text = ref.string()
        if compiler.dialect == "postgresql":
            text = text.collate("C")
        return [SortKey(rank, False, "number"),
                SortKey(func.coalesce(ref.number(), 0.0), desc, "number"),
                SortKey(func.coalesce(text, ""), desc, "string")]
    if typed.type not in ("number", "string", "enum"):
        raise err(f"cannot order by {typed.label}", order.pos)
    key_type = "number" if typed.type == "number" else "string"
    expr = typed.sql
    if typed.wrap is not None:
        raise err(f"cannot order objects by {typed.label}", order.pos)
    if key_type == "string" and compiler.dialect == "postgresql":
        expr = expr.collate("C")
    present = not typed.nullable or any(
        isinstance(c, ast.Compare | ast.In) and c.left == order.key
        and not (isinstance(c, ast.In) and c.negated)
        and not (isinstance(c, ast.Compare) and c.right.kind == "null")
        for c in ast.conjuncts(node))
    if isinstance(typed.sql, Null):
        # the field does not exist for this object kind: every row is "missing"
        return [SortKey(None, False, "number", const=1),
                SortKey(None, desc, key_type, const=0 if key_type == "number" else "")]
    if present and not uniform:
        return [SortKey(expr, desc, key_type)]
    missing = case((typed.sql.is_(None), 1), else_=0)
    default = 0 if key_type == "number" else ""
    return [SortKey(missing, False, "number", ranks=expr),
            SortKey(func.coalesce(expr, default), desc, key_type)]


def split_missing(keys: list[SortKey]) -> list[tuple[list[SortKey], list[Any]]]:
    """``keys`` as the parts a page reads separately, each with its extra condition:
    where the first key ranks missing values last (:func:`sort_keys`), the rows with a
    value, ordered by the bare column (an index serves ``order by confidence desc``
    instead of a sort of every row: 1M false positives on SQLite, ~14 s), then the rows
    without, the ranking key and the value key constants in each part (decided in
    Python by :func:`~ocula.core.query.paging.after`); else ``keys`` as they are."""
    if not keys or keys[0].ranks is None:
        return [(keys, [])]
    rank, value, *rest = keys
    bare = rank.ranks
    present = [SortKey(None, False, "number", const=0), SortKey(bare, value.desc, value.type),
               *rest]
    missing = [SortKey(None, False, "number", const=1),
               SortKey(None, value.desc, value.type,
                       const=0 if value.type == "number" else ""), *rest]
    return [(present, [bare.is_not(None)]), (missing, [bare.is_(None)])]


def _statuses(node: ast.Node | None) -> set[str]:
    """The prediction statuses a condition's top-level ``and`` terms leave possible."""
    left = set(STATUS_VALUES["prediction"])
    for c in ast.conjuncts(node):
        if isinstance(c, ast.Compare) and c.op in ("=", "!=") and is_field(c.left, "status") \
                and c.right.kind in ("name", "string"):
            named, negated = {str(c.right.value).lower()}, c.op == "!="
        elif isinstance(c, ast.In) and is_field(c.left, "status") and all(
                v.kind in ("name", "string") for v in c.values):
            named, negated = {str(v.value).lower() for v in c.values}, c.negated
        else:
            continue
        left = left - named if negated else left & named
    return left


def iou_parts(b: Branch, keys: list[SortKey], extra: list[Any], dataset_pk: int
              ) -> list[tuple[Any, list[SortKey], list[Any]]]:
    """``(from clause, keys, conditions)`` of each select one part of branch ``b``
    reads: where its predictions are ordered by IoU, one select per partial IoU index
    of the match rows (true positives, and the rest: ``schema.match_predictions``),
    each walking its index from the run's first key. One ``(run_pk, iou)`` index would
    make "true positives, worst IoU first" pass every less-overlapping false positive
    first (5M boxes: 1.7 s), and "false positives, best IoU first" every true positive.
    An outer-joined branch (no condition on the match) is read from the match rows
    here: its rows with an IoU are its predictions that have one."""
    scope = b.scope
    real = [k for k in keys if not k.is_const]
    if scope.kind != "prediction" or scope.match is None or not real \
            or real[0].expr is not scope.match.c.iou:
        return [(scope.from_clause(), keys, extra)]
    m = scope.match
    left = _statuses(b.node)
    tp = [m.c.status == literal_column("'tp'")] if "tp" in left else []
    other = [m.c.status != literal_column("'tp'")] if left - {"tp"} else []
    if not scope.match_inner:
        # Read as the scope driven from its match rows (a match row's run is its
        # prediction's), the key ending with the prediction's: the index's own order.
        inner = replace(scope, match_inner=True)
        extra = [*extra, *inner.base(dataset_pk)]
        keys = [SortKey(inner.pk_col, k.desc, k.type) if k.expr is scope.pk_col else k
                for k in keys]
        scope = inner
    from_ = scope.from_clause()
    return [(from_, keys, [*extra, *cond]) for cond in (tp, other) if cond]


def _remaining(limit: int | None, served: int, page_size: int) -> int:
    if limit is None:
        return page_size
    return max(0, min(page_size, limit - served))


def plan_items(conn: Connection, dataset_pk: int, dialect: str, text: str, *,
               slice_pk: int | None = None) -> ItemsPlan:
    """Parse and compile an item query."""
    query = parse(text)
    return ItemsPlan(query, Compiler(conn, dataset_pk, dialect), slice_pk)


def plan_objects(conn: Connection, dataset_pk: int, dialect: str, text: str, *,
                 slice_pk: int | None = None, slice_kind: str = "item") -> ObjectsPlan:
    """Parse and compile an object query."""
    query = parse(text)
    if query.order is not None and isinstance(query.order.key, ast.Call):
        raise err("objects can be ordered by a field only", query.order.pos)
    return ObjectsPlan(query, Compiler(conn, dataset_pk, dialect), slice_pk, slice_kind)
