"""Compilation scopes and the rewriting done before SQL: per-kind specialisation.

An object query is compiled once per object kind it can match (see
:func:`object_kinds`); :func:`specialize` decides every ``type`` condition for that kind
and :func:`simplify` folds the resulting constants away.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_
from sqlalchemy.sql.elements import ColumnElement

from ocula.core.query import ast
from ocula.core.query.fields import FieldSpec, Kind
from ocula.errors import QueryError


def err(message: str, pos: ast.Pos | None) -> QueryError:
    return QueryError(message, line=pos.line if pos else None,
                      column=pos.column if pos else None)


@dataclass
class Run:
    pk: int
    name: str
    committed: bool


@dataclass
class Slice:
    pk: int
    name: str
    kind: str


@dataclass
class Cond:
    """A compiled condition; ``nullable`` says it may be SQL NULL (unknown) for a row,
    which ``not`` must treat as false so that ``not x`` means "x does not hold"."""

    sql: ColumnElement
    nullable: bool = True


@dataclass
class Typed:
    """A compiled operand: SQL plus the value type comparisons are checked against."""

    sql: Any
    type: str
    spec: FieldSpec | None
    label: str
    nullable: bool = True
    # Compiles a condition on this operand into one on the query's rows (used where the
    # operand lives in another table, e.g. an object's item reference id).
    wrap: Any = None


@dataclass
class ObjectScope:
    """One object kind inside one query: its table, match join and run context."""

    kind: Kind
    table: Any
    match: Any = None
    match_inner: bool = False
    run: Run | None = None
    run_pks: list[int] = field(default_factory=list)
    #: The query names its predictions by id, on SQLite: the run is then tested through
    #: ``run_pk + 0``, no indexed term, so that SQLite, which keeps no statistics, looks
    #: the ids up in their unique index instead of walking the run's rows (2M
    #: predictions: 100 ids in ~4 s through the run's index).
    by_ids: bool = False

    @property
    def run_col(self) -> ColumnElement:
        col = self.match.c.run_pk if self.match_inner else self.table.c.run_pk
        return col + 0 if self.by_ids else col

    @property
    def item_col(self) -> ColumnElement:
        return self.match.c.item_pk if self.match_inner else self.table.c.item_pk

    @property
    def pk_col(self) -> ColumnElement:
        if self.kind == "prediction" and self.match_inner:
            return self.match.c.prediction_pk
        return self.table.c.pk

    def from_clause(self) -> Any:
        if self.match is None:
            return self.table
        if self.kind == "annotation":
            on = and_(self.match.c.annotation_pk == self.table.c.pk,
                      self.match.c.run_pk == (self.run.pk if self.run else -1))
        else:
            on = self.match.c.prediction_pk == self.table.c.pk
        if self.match_inner:
            # Driving from the match table lets "status = fp ... order by confidence"
            # walk its (run_pk, confidence, status) index.
            return self.match.join(self.table, on)
        return self.table.outerjoin(self.match, on)

    def base(self, dataset_pk: int) -> list[ColumnElement]:
        if self.kind == "annotation":
            return [self.table.c.dataset_pk == dataset_pk, self.table.c.version_to.is_(None)]
        run_col = self.run_col
        if len(self.run_pks) == 1:
            return [run_col == self.run_pks[0]]
        return [run_col.in_(self.run_pks)]


@dataclass
class Branch:
    """The SQL pieces of one object kind of an object condition."""

    scope: ObjectScope
    node: ast.Node | None
    where: list[ColumnElement]


def simplify(node: ast.Node | None) -> ast.Node | None:
    """Fold constants: ``x and false`` → false, ``not true`` → false, ..."""
    if isinstance(node, ast.And | ast.Or):
        is_and = isinstance(node, ast.And)
        items = []
        for item in node.items:
            s = simplify(item)
            if isinstance(s, ast.Const):
                if s.value != is_and:
                    return ast.Const(not is_and, node.pos)
                continue
            items.append(s)
        if not items:
            return ast.Const(is_and, node.pos)
        return items[0] if len(items) == 1 else type(node)(tuple(items), node.pos)
    if isinstance(node, ast.Not):
        inner = simplify(node.item)
        if isinstance(inner, ast.Const):
            return ast.Const(not inner.value, node.pos)
        return ast.Not(inner, node.pos)
    return node


def is_field(node: Any, name: str) -> bool:
    return isinstance(node, ast.Field) and node.path == (name,)


def names_ids(node: ast.Node | None) -> bool:
    """Whether a condition requires ``id`` to be one of listed values (``id = x`` or
    ``id in [...]`` among its top-level ``and`` terms)."""
    terms = node.items if isinstance(node, ast.And) else (node,)
    return any((isinstance(t, ast.In) and not t.negated and is_field(t.left, "id"))
               or (isinstance(t, ast.Compare) and t.op == "=" and is_field(t.left, "id"))
               for t in terms)


def _kind_value(value: ast.Value) -> str:
    if value.kind not in ("name", "string") or str(value.value).lower() not in ("annotation",
                                                                                 "prediction"):
        raise err(f"type is annotation or prediction, not {value.text()}", value.pos)
    return str(value.value).lower()


def specialize(node: ast.Node | None, kind: Kind) -> ast.Node | None:
    """``node`` with every condition on ``type`` decided for objects of ``kind``."""
    if isinstance(node, ast.Compare) and is_field(node.left, "type"):
        if node.op not in ("=", "!="):
            raise err("type can only be compared with = or != (or in [...])", node.pos)
        same = _kind_value(node.right) == kind
        return ast.Const(same if node.op == "=" else not same, node.pos)
    if isinstance(node, ast.In) and is_field(node.left, "type"):
        inside = kind in {_kind_value(v) for v in node.values}
        return ast.Const(inside != node.negated, node.pos)
    if isinstance(node, ast.And | ast.Or):
        return type(node)(tuple(specialize(i, kind) for i in node.items), node.pos)
    if isinstance(node, ast.Not):
        return ast.Not(specialize(node.item, kind), node.pos)
    return node


def object_kinds(node: ast.Node | None,
                 default: tuple[Kind, ...] = ("annotation",)) -> list[Kind]:
    """The object kinds a condition can match: ``default`` (annotations) unless it
    mentions type."""
    mentions = any(isinstance(n, ast.Compare | ast.In) and is_field(n.left, "type")
                   for n in ast.walk(node))
    if not mentions:
        return list(default)
    kinds: list[Kind] = []
    for kind in ("annotation", "prediction"):
        s = simplify(specialize(node, kind))
        if not (isinstance(s, ast.Const) and s.value is False):
            kinds.append(kind)
    return kinds


def suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
