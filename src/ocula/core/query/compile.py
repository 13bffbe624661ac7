"""Syntax tree → SQLAlchemy Core, type-checked against the field registry.

Every value of a query reaches the database as a bound parameter; names (fields, runs,
slices) are resolved here to columns and integer keys, so no query text is ever
spliced into SQL.

Object queries run over two tables. A query is split per object kind: each condition on
``type`` is decided up front for that kind (``type = prediction`` is simply true for
predictions and false for annotations), and only kinds that can still match are
queried, so ``type = prediction and ...`` touches the predictions table alone.
Without any ``type`` condition an object query means ground-truth annotations.

Rules for runs (see docs/query-language.md):

* For predictions ``run = "name"`` filters by run; ``status`` and ``iou`` are the
  prediction's own match result.
* For annotations, a top-level ``run = "name"`` (joined with ``and``) names the run
  whose ``status``/``iou`` are meant. Without one, the dataset's only committed run is
  used; with several committed runs the query must name one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from ocula.core.query import ast
from ocula.core.query.fields import (
    FUNCTIONS,
    ITEM_FIELDS,
    OBJECT_FIELDS,
    STATUS_VALUES,
    FieldSpec,
    JsonRef,
    Kind,
)
from ocula.core.query.scopes import (
    Branch,
    Cond,
    ObjectScope,
    Run,
    Slice,
    Typed,
    err,
    is_field,
    names_ids,
    object_kinds,
    simplify,
    specialize,
    suggest,
)
from ocula.core.store import schema as t

ORDER_OPS = ("<", "<=", ">", ">=")
_KIND_WORD = {"number": "a number", "string": "a quoted string", "bool": "true or false",
              "null": "null", "name": "a bare word"}


class Compiler:
    """Compiles conditions of one dataset's queries (runs and slices resolved by name)."""

    def __init__(self, conn: Connection, dataset_pk: int, dialect: str):
        self.conn = conn
        self.dataset_pk = dataset_pk
        self.dialect = dialect
        self.runs = {r.name: Run(r.pk, r.name, r.committed_at is not None)
                     for r in conn.execute(select(t.model_runs.c.pk, t.model_runs.c.name,
                                                  t.model_runs.c.committed_at)
                                           .where(t.model_runs.c.dataset_pk == dataset_pk)
                                           .order_by(t.model_runs.c.pk))}
        self._slices: dict[str, Slice] | None = None

    # --- names ----------------------------------------------------------------------

    def run(self, value: ast.Value, *, committed: bool = False) -> Run:
        if value.kind not in ("string", "name"):
            raise err(f"a run is named by a quoted string, not {_KIND_WORD[value.kind]}",
                      value.pos)
        found = self.runs.get(str(value.value))
        if found is None:
            known = ", ".join(f'"{n}"' for n in self.runs) or "none"
            raise err(f"unknown run {value.text()} (runs of this dataset: {known})",
                      value.pos)
        if committed and not found.committed:
            raise err(f"run {value.text()} is not committed yet, so it has no match results;"
                      " commit it first", value.pos)
        return found

    def slice(self, value: ast.Value) -> Slice:
        if self._slices is None:
            self._slices = {r.name: Slice(r.pk, r.name, r.kind) for r in self.conn.execute(
                select(t.slices.c.pk, t.slices.c.name, t.slices.c.kind).where(
                    t.slices.c.dataset_pk == self.dataset_pk))}
        if value.kind != "string":
            raise err("a slice is named by a quoted string, e.g. in_slice(\"train\")",
                      value.pos)
        found = self._slices.get(str(value.value))
        if found is None:
            hint = suggest(str(value.value), list(self._slices))
            raise err(f"unknown slice {value.text()}{hint}", value.pos)
        return found

    def default_run(self, pos: ast.Pos | None) -> Run:
        committed = [r for r in self.runs.values() if r.committed]
        if len(committed) == 1:
            return committed[0]
        if not committed:
            raise err("status and iou of annotations come from a committed run, and this "
                      "dataset has none", pos)
        names = ", ".join(f'"{r.name}"' for r in committed)
        raise err("status and iou of annotations depend on the run: add run = \"<name>\" "
                  f"(committed runs: {names})", pos)

    # --- generic comparisons ---------------------------------------------------------

    def compare(self, typed: Typed, op: str, value: ast.Value, pos: ast.Pos) -> Cond:
        cond = self._compare(typed, op, value, pos)
        if typed.wrap is not None:
            return Cond(typed.wrap(cond.sql), nullable=False)
        return cond

    def _compare(self, typed: Typed, op: str, value: ast.Value, pos: ast.Pos) -> Cond:
        if value.kind == "null":
            if op not in ("=", "!="):
                raise err(f"null can only be compared with = or !=, not {op}", value.pos)
            if typed.type == "json":
                cond = typed.sql.is_null()
                return Cond(cond if op == "=" else not_(cond), nullable=False)
            return Cond(typed.sql.is_(None) if op == "=" else typed.sql.is_not(None), False)
        if typed.type == "json":
            return self._compare_json(typed, op, value)
        v = self.check_value(typed, value, op)
        expr = typed.sql
        if typed.type == "string" and op in ORDER_OPS and self.dialect == "postgresql":
            expr = expr.collate("C")  # byte order, as SQLite compares
        ops = {"=": expr.__eq__, "!=": expr.__ne__, "<": expr.__lt__, "<=": expr.__le__,
               ">": expr.__gt__, ">=": expr.__ge__}
        return Cond(ops[op](v), nullable=typed.nullable)

    def check_value(self, typed: Typed, value: ast.Value, op: str = "=") -> Any:
        """The Python value to bind for ``value``, after checking it suits ``typed``."""
        kind, label = typed.type, typed.label
        if kind in ("enum", "bool", "run") and op in ORDER_OPS:
            raise err(f"{label} can only be compared with = or != (or in [...])", value.pos)
        if kind == "number":
            if value.kind != "number":
                raise err(f"{label} is a number; {value.text()} is {_KIND_WORD[value.kind]}",
                          value.pos)
            return value.value
        if kind == "string":
            if value.kind == "name":
                raise err(f'{label} is text: put the value in quotes, e.g. {label} = '
                          f'"{value.value}"', value.pos)
            if value.kind != "string":
                raise err(f"{label} is text; {value.text()} is {_KIND_WORD[value.kind]}",
                          value.pos)
            return value.value
        if kind == "bool":
            if value.kind != "bool":
                raise err(f"{label} is true or false, not {value.text()}", value.pos)
            return value.value
        if kind == "enum":
            word = str(value.value).lower() if value.kind in ("name", "string") else None
            allowed = typed.spec.values if typed.spec else ()
            if word not in allowed:
                raise err(f"{label} is one of {', '.join(allowed)}; not {value.text()}",
                          value.pos)
            return word
        if kind == "run":
            return self.run(value).pk
        raise err(f"{label} cannot be compared", value.pos)

    def _compare_json(self, typed: Typed, op: str, value: ast.Value) -> Cond:
        ref: JsonRef = typed.sql
        if value.kind == "name":
            raise err(f'metadata values are compared with quoted text or numbers: write '
                      f'"{value.value}"', value.pos)
        if value.kind == "bool" and op in ORDER_OPS:
            raise err("true/false can only be compared with = or !=", value.pos)
        if op in ("=", "!="):
            eq = ref.equals_any([value.value])
            if op == "=":
                return Cond(eq)
            return Cond(and_(not_(ref.is_null()), not_(eq)), nullable=False)
        if value.kind == "number":
            return Cond(_apply(ref.number(), op, value.value))
        expr = ref.string()
        if self.dialect == "postgresql":
            expr = expr.collate("C")
        return Cond(_apply(expr, op, value.value))

    def membership(self, typed: Typed, node: ast.In) -> Cond:
        values = list(node.values)
        if not values:
            return Cond(true() if node.negated else false(), nullable=False)
        nulls = [v for v in values if v.kind == "null"]
        values = [v for v in values if v.kind != "null"]
        if typed.type == "json":
            for v in values:
                if v.kind == "name":
                    raise err(f'metadata values are compared with quoted text or numbers: '
                              f'write "{v.value}"', v.pos)
            terms = [typed.sql.equals_any([v.value for v in values])] if values else []
            if nulls:
                terms.append(typed.sql.is_null())
            cond = or_(*terms) if len(terms) > 1 else terms[0]
            if node.negated:
                return Cond(and_(not_(typed.sql.is_null()), not_(cond)) if not nulls
                            else not_(cond), nullable=False)
            return Cond(cond)
        bound = [self.check_value(typed, v) for v in values]
        col = typed.sql
        terms = [col.in_(bound)] if bound else []
        if nulls:
            terms.append(col.is_(None))
        cond = or_(*terms) if len(terms) > 1 else terms[0]
        if node.negated:
            cond = and_(col.is_not(None), col.not_in(bound)) if not nulls else \
                and_(col.is_not(None), col.not_in(bound) if bound else true())
        result = Cond(cond, nullable=typed.nullable and not nulls)
        if typed.wrap is not None:
            return Cond(typed.wrap(result.sql), nullable=False)
        return result

    # --- conditions ------------------------------------------------------------------

    def condition(self, node: ast.Node | None, scope: Any) -> Cond:
        """Compile a condition in an item scope (the items table) or an ObjectScope."""
        if node is None:
            return Cond(true(), nullable=False)
        if isinstance(node, ast.Const):
            return Cond(true() if node.value else false(), nullable=False)
        if isinstance(node, ast.And | ast.Or):
            parts = [self.condition(i, scope) for i in node.items]
            join = and_ if isinstance(node, ast.And) else or_
            return Cond(join(*[p.sql for p in parts]), any(p.nullable for p in parts))
        if isinstance(node, ast.Not):
            inner = self.condition(node.item, scope)
            if inner.nullable:
                # Two-valued logic: where the inner test is unknown (a missing value),
                # "not" holds.
                return Cond(or_(inner.sql.is_(None), not_(inner.sql)), nullable=False)
            return Cond(not_(inner.sql), nullable=False)
        if isinstance(node, ast.Call):
            return self.call_condition(node, scope)
        if isinstance(node, ast.Compare):
            typed = self.operand(node.left, scope)
            return self.compare(typed, node.op, node.right, node.pos)
        if isinstance(node, ast.In):
            return self.membership(self.operand(node.left, scope), node)
        raise err(f"cannot use {type(node).__name__} here", getattr(node, "pos", None))

    def operand(self, node: ast.Field | ast.Call, scope: Any) -> Typed:
        if isinstance(node, ast.Call):
            return self.call_operand(node, scope)
        if isinstance(scope, ObjectScope):
            return self.object_field(node, scope)
        return self.item_field(node, scope)

    def _lookup(self, node: ast.Field, table: dict[str, FieldSpec], other: dict[str, FieldSpec],
                where: str) -> FieldSpec:
        name = node.path[0]
        spec = table.get(name)
        if spec is None:
            if name in other and where == "item":
                raise err(f"{name} is a field of objects; in an item query use "
                          f"count({name} ...) or has({name} ...)", node.pos)
            if name in FUNCTIONS:
                raise err(f"{name} is a function: {FUNCTIONS[name][1]}", node.pos)
            raise err(f"unknown field {node.name!r} in an {where} query"
                      f"{suggest(name, list(table) + list(FUNCTIONS))}", node.pos)
        if spec.type == "json":
            if len(node.path) < 2:
                raise err(f"{name} needs a key, e.g. {name}.weather", node.pos)
        elif len(node.path) > 1:
            raise err(f"{name} has no sub-fields (found {node.name!r})", node.pos)
        return spec

    def _scene(self, spec: FieldSpec, item_col: Any) -> Typed:
        """``scene``: a test of the scene's reference id, wrapped as membership of the
        item (``item_col``) in the frames of the scenes that pass it."""
        scenes = t.scenes.alias()

        def wrap(cond: ColumnElement) -> ColumnElement:
            return item_col.in_(select(t.scene_frames.c.item_pk).join(
                scenes, scenes.c.pk == t.scene_frames.c.scene_pk).where(
                scenes.c.dataset_pk == self.dataset_pk, cond))
        return Typed(scenes.c.reference_id, "string", spec, spec.name, False, wrap)

    def _labels(self, spec: FieldSpec, tbl: Any) -> Typed:
        """``labels``: a test of one label of a multicategory (its JSON ``labels`` list
        as rows), wrapped as "some label passes it"."""
        if self.dialect == "postgresql":
            listed = func.jsonb_array_elements_text(
                tbl.c.geometry.op("->", return_type=JSONB)("labels"))
        else:
            listed = func.json_each(tbl.c.geometry, "$.labels")
        each = listed.table_valued("value").alias("multicategory_label")

        def wrap(cond: ColumnElement) -> ColumnElement:
            return and_(tbl.c.type == "multicategory",
                        exists(select(literal(1)).select_from(each).where(cond)))
        return Typed(each.c.value, "string", spec, spec.name, False, wrap)

    def item_field(self, node: ast.Field, items: Any) -> Typed:
        spec = self._lookup(node, ITEM_FIELDS, OBJECT_FIELDS, "item")
        if spec.name == "scene":
            return self._scene(spec, items.c.pk)
        if spec.type == "json":
            return Typed(JsonRef(items.c.metadata, node.path[1:], self.dialect), "json", spec,
                         node.name)
        return Typed(items.c[spec.name], spec.type, spec, spec.name, spec.nullable)

    def object_field(self, node: ast.Field, scope: ObjectScope) -> Typed:
        spec = self._lookup(node, OBJECT_FIELDS, ITEM_FIELDS, "object")
        name, tbl = spec.name, scope.table
        if spec.type == "json":
            return Typed(JsonRef(tbl.c.metadata, node.path[1:], self.dialect), "json", spec,
                         node.name)
        if name == "type":
            raise err("type can only be tested with =, != or in", node.pos)
        if scope.kind not in spec.kinds:
            return Typed(null(), spec.type, spec, name, True)
        if name == "run":
            if scope.kind == "annotation":
                raise err('for annotations, run only names the run whose match status is '
                          'meant: write run = "<name>" joined to the rest with and', node.pos)
            return Typed(scope.run_col, "run", spec, name, False)
        if name in ("status", "iou"):
            return Typed(scope.match.c[name], spec.type, spec, name, True)
        if name == "confidence":
            col = scope.match.c.confidence if scope.match_inner else tbl.c.confidence
            return Typed(col, "number", spec, name, True)
        if name == "area" and scope.kind == "annotation" and scope.match_inner:
            # The match row's copy of it, which (run_pk, status, area) indexes: "missed
            # boxes, largest first" walks that instead of sorting every miss.
            return Typed(scope.match.c.area, "number", spec, name, spec.nullable)
        if name == "label" and scope.kind == "prediction" and scope.match_inner:
            # The match row's copy, equal to its prediction's: a prediction is never
            # changed in place (replacing one deletes its match row), and only boxes,
            # polygons, masks and keypoints are matched, whose label is a non-blank
            # string. "label = x and status = fp and confidence >= c" is then counted
            # from the match table alone (PostgreSQL, 5M boxes: 0.6 -> 0.2 s; SQLite
            # looks each candidate row up by its key either way, ~0.7 s).
            return Typed(scope.match.c.label, "string", spec, name, spec.nullable)
        if name == "aspect":
            return Typed(tbl.c.width / func.nullif(tbl.c.height, 0), "number", spec, name)
        if name == "shape":
            return Typed(tbl.c.type, "enum", spec, name, False)
        if name == "track":
            return Typed(tbl.c.track_id, "string", spec, name, True)
        if name == "labels":
            return self._labels(spec, tbl)
        if name == "scene":
            return self._scene(spec, scope.item_col)
        if name == "reference_id":
            items = t.items.alias()

            def wrap(cond: ColumnElement) -> ColumnElement:
                return scope.item_col.in_(select(items.c.pk).where(
                    items.c.dataset_pk == self.dataset_pk, cond))
            return Typed(items.c.reference_id, "string", spec, name, False, wrap)
        return Typed(tbl.c[name], spec.type, spec, name, spec.nullable)

    # --- functions -------------------------------------------------------------------

    def _args(self, call: ast.Call, n: int, kinds: tuple[str, ...]) -> list[Any]:
        if len(call.args) != n:
            raise err(f"{call.name}() takes {n} argument{'s' if n != 1 else ''}: "
                      f"{FUNCTIONS[call.name][1]}", call.pos)
        for a in call.args:
            is_value = isinstance(a, ast.Value)
            if ("value" in kinds) != is_value:
                raise err(f"wrong argument for {call.name}(): {FUNCTIONS[call.name][1]}",
                          getattr(a, "pos", call.pos))
        return list(call.args)

    def call_condition(self, call: ast.Call, scope: Any) -> Cond:
        if call.attr is not None:
            raise err(f"{call.name}(...).{call.attr} is a number: compare it, e.g. "
                      f"{call.name}(...).{call.attr} > 0", call.pos)
        if call.name == "in_slice":
            (name,) = self._args(call, 1, ("value",))
            sl = self.slice(name)
            if isinstance(scope, ObjectScope):
                if sl.kind == "object":
                    col = t.slice_objects.c[f"{scope.kind}_pk"]
                    return Cond(scope.pk_col.in_(select(col).where(
                        t.slice_objects.c.slice_pk == sl.pk, col.is_not(None))), False)
                return Cond(scope.item_col.in_(select(t.slice_items.c.item_pk).where(
                    t.slice_items.c.slice_pk == sl.pk)), False)
            if sl.kind == "object":
                raise err(f"slice {name.text()} holds objects, not items: use "
                          f"has(in_slice({name.text()}))", name.pos)
            members = t.slice_items.alias()
            return Cond(exists().where(members.c.slice_pk == sl.pk,
                                       members.c.item_pk == scope.c.pk), False)
        if call.name == "has" and not isinstance(scope, ObjectScope):
            args = list(call.args)
            if len(args) > 1 or (args and isinstance(args[0], ast.Value)):
                raise err(f"has() takes an object condition: {FUNCTIONS['has'][1]}", call.pos)
            branches = self.object_branches(args[0] if args else None, scope.c.pk)
            terms = [exists().select_from(b.scope.from_clause()).where(*b.where)
                     for b in branches]
            return Cond(or_(*terms) if terms else false(), False)
        if call.name == "item" and isinstance(scope, ObjectScope):
            (pred,) = self._args(call, 1, ("node",))
            items = t.items.alias()
            inner = self.condition(pred, items)
            return Cond(scope.item_col.in_(select(items.c.pk).where(
                items.c.dataset_pk == self.dataset_pk, inner.sql)), False)
        if call.name in FUNCTIONS:
            where = FUNCTIONS[call.name][0]
            here = "an object" if isinstance(scope, ObjectScope) else "an item"
            if call.name in ("count", "run"):
                raise err(f"{call.name}(...) is a number: compare it, e.g. "
                          f"{FUNCTIONS[call.name][1]}", call.pos)
            raise err(f"{call.name}() is not available in {here} query (only in {where} "
                      "queries)", call.pos)
        raise err(f"unknown function {call.name}(){suggest(call.name, list(FUNCTIONS))}",
                  call.pos)

    def call_operand(self, call: ast.Call, scope: Any) -> Typed:
        in_items = not isinstance(scope, ObjectScope)
        if call.name == "count" and in_items:
            if call.attr is not None:
                raise err("count(...) has no fields", call.attr_pos)
            args = list(call.args)
            if len(args) > 1 or (args and isinstance(args[0], ast.Value)):
                raise err(f"count() takes an object condition: {FUNCTIONS['count'][1]}",
                          call.pos)
            branches = self.object_branches(args[0] if args else None, scope.c.pk)
            counts = [select(func.count()).select_from(b.scope.from_clause())
                      .where(*b.where).scalar_subquery() for b in branches]
            total: Any = literal(0, Integer)
            if counts:
                total = counts[0]
                for c in counts[1:]:
                    total = total + c
            return Typed(total, "number", None, "count(...)", False)
        if call.name == "run" and in_items:
            (name,) = self._args(call, 1, ("value",))
            if call.attr not in ("tp", "fp", "fn"):
                raise err('run("name") is followed by .tp, .fp or .fn',
                          call.attr_pos or call.pos)
            run = self.run(name, committed=True)
            mi = t.match_items.alias()
            sub = select(mi.c[call.attr]).where(mi.c.run_pk == run.pk,
                                                mi.c.item_pk == scope.c.pk).scalar_subquery()
            label = f'run("{run.name}").{call.attr}'
            return Typed(func.coalesce(sub, 0), "number", None, label, False)
        if call.name in ("count", "run") and not in_items:
            raise err(f"{call.name}() is not available in an object query; test the object's "
                      f"item with item(...), e.g. item({FUNCTIONS[call.name][1]})", call.pos)
        if call.name in ("in_slice", "has", "item") and (call.name != "item") == in_items:
            raise err(f"{call.name}(...) is a condition on its own: use it without a "
                      "comparison (or with not)", call.pos)
        self.call_condition(call, scope)  # raises the right error for this scope
        raise err(f"cannot compare {call.name}()", call.pos)

    # --- object kinds ----------------------------------------------------------------

    def object_branches(self, node: ast.Node | None, item_pk: ColumnElement | None = None,
                        order: ast.OrderBy | None = None,
                        default_kinds: tuple[Kind, ...] = ("annotation",)) -> list[Branch]:
        """One :class:`Branch` per object kind ``node`` can match (``default_kinds`` when
        it names no type); ``item_pk`` correlates the objects with an outer item (inside
        count/has)."""
        kinds = object_kinds(node, default_kinds)
        self._check_kinds(node, kinds, order)
        branches = []
        for kind in kinds:
            spec_node = simplify(specialize(node, kind))
            if isinstance(spec_node, ast.Const) and not spec_node.value:
                continue
            scope, spec_node = self._scope(kind, spec_node, order)
            if scope is None:
                continue
            scope.by_ids = (self.dialect == "sqlite" and kind == "prediction"
                            and names_ids(spec_node))
            where = scope.base(self.dataset_pk)
            if item_pk is not None:
                where.append(scope.item_col == item_pk)
            cond = self.condition(spec_node, scope)
            if not (isinstance(spec_node, ast.Const) or spec_node is None):
                where.append(cond.sql)
            branches.append(Branch(scope, spec_node, where))
        return branches

    def _check_kinds(self, node: ast.Node | None, kinds: list[Kind],
                     order: ast.OrderBy | None) -> None:
        fields = [n for n in ast.walk(node) if isinstance(n, ast.Field)]
        if order is not None and isinstance(order.key, ast.Field):
            fields.append(order.key)
        for f in fields:
            spec = OBJECT_FIELDS.get(f.path[0])
            if spec is not None and not set(spec.kinds) & set(kinds):
                raise err(f"{spec.name} applies only to {' and '.join(spec.kinds)}s; this "
                          f"query selects {' and '.join(kinds)}s (add type = "
                          f"{spec.kinds[0]})", f.pos)
        for n in ast.walk(node):
            if isinstance(n, ast.Compare | ast.In) and is_field(n.left, "status"):
                allowed = {v for k in kinds for v in STATUS_VALUES[k]}
                for v in n.values if isinstance(n, ast.In) else (n.right,):
                    word = str(v.value).lower()
                    if v.kind in ("name", "string") and word not in allowed \
                            and word in OBJECT_FIELDS["status"].values:
                        raise err(f"status {word} does not occur for {' and '.join(kinds)}s "
                                  f"(they are {', '.join(sorted(allowed))})", v.pos)

    def _scope(self, kind: Kind, node: ast.Node | None,
               order: ast.OrderBy | None) -> tuple[ObjectScope | None, ast.Node | None]:
        terms = ast.conjuncts(node)
        run: Run | None = None
        if kind == "annotation":
            named = [c for c in terms if isinstance(c, ast.Compare) and is_field(c.left, "run")
                     and c.op == "="]
            for c in named:
                found = self.run(c.right, committed=True)
                if run is not None and found.pk != run.pk:
                    raise err("an annotation query can name only one run", c.pos)
                run = found
            if named:
                rest = [c for c in terms if c not in named]
                node = simplify(ast.And(tuple(rest))) if rest else None
        table = (t.annotations if kind == "annotation" else t.predictions).alias()
        uses_match = [n for n in ast.walk(node) if isinstance(n, ast.Field)
                      and n.path[0] in ("status", "iou")]
        if order is not None and isinstance(order.key, ast.Field) and \
                order.key.path[0] in ("status", "iou"):
            uses_match.append(order.key)
        match = None
        inner = False
        if uses_match:
            if kind == "annotation" and run is None:
                run = self.default_run(uses_match[0].pos)
            match = (t.match_annotations if kind == "annotation" else t.match_predictions).alias()
            inner = any(isinstance(c, ast.Compare | ast.In) and isinstance(c.left, ast.Field)
                        and c.left.path[0] in ("status", "iou")
                        and not (isinstance(c, ast.In) and c.negated)
                        and not (isinstance(c, ast.Compare) and c.right.kind == "null")
                        for c in ast.conjuncts(node))
        run_pks = [r.pk for r in self.runs.values()]
        if kind == "prediction" and not run_pks:
            return None, node
        return ObjectScope(kind, table, match, inner, run, run_pks), node


def _apply(expr: ColumnElement, op: str, value: Any) -> ColumnElement:
    return {"=": expr.__eq__, "!=": expr.__ne__, "<": expr.__lt__, "<=": expr.__le__,
            ">": expr.__gt__, ">=": expr.__ge__}[op](value)
