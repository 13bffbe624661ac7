"""Queries over items and objects, slices taken from queries, slice algebra and export.

The language itself lives in :mod:`ocula.core.query` (reference: docs/query-language.md).
Pages are keyset-paginated: pass the ``next_cursor`` of one page to get the next; a
cursor is opaque, validated, and only valid for the query (and slice) that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Connection, and_, delete, func, literal, select
from sqlalchemy.exc import IntegrityError

from ocula.core.contract import SetOperation
from ocula.core.ids import new_id
from ocula.core.query import ast
from ocula.core.query.plan import ItemsPlan, ObjectsPlan, plan_items, plan_objects
from ocula.core.services import run_results, stats
from ocula.core.services.base import ServiceBase, chunks, now
from ocula.core.services.payloads import item_payload, object_payload
from ocula.core.store import schema as t
from ocula.core.validation import require_name
from ocula.errors import ConflictError, ValidationError


class QueryService(ServiceBase):
    # --- resolving ------------------------------------------------------------------

    def _items_plan(self, conn: Connection, dataset: str, query: str,
                    slice: str | None) -> tuple[Any, ItemsPlan]:
        ds = self._dataset_row(conn, dataset)
        return ds, self._items_plan_in(conn, ds, query, slice)

    def _items_plan_in(self, conn: Connection, ds: Any, query: str,
                       slice: str | None) -> ItemsPlan:
        slice_pk = None
        if slice is not None:
            sl = self._slice_in(conn, ds, slice)
            if sl.kind != "item":
                raise ValidationError(f"slice {sl.name!r} holds objects; query it with "
                                      "query_objects")
            slice_pk = sl.pk
        return plan_items(conn, ds.pk, self.db.dialect, query, slice_pk=slice_pk)

    def _objects_plan(self, conn: Connection, dataset: str, query: str,
                      slice: str | None) -> tuple[Any, ObjectsPlan]:
        ds = self._dataset_row(conn, dataset)
        slice_pk, slice_kind = None, "item"
        if slice is not None:
            sl = self._slice_in(conn, ds, slice)
            slice_pk, slice_kind = sl.pk, sl.kind
        return ds, plan_objects(conn, ds.pk, self.db.dialect, query, slice_pk=slice_pk,
                                slice_kind=slice_kind)

    # --- queries --------------------------------------------------------------------

    def query_items(self, dataset: str, query: str, *, slice: str | None = None,
                    page_size: int = 100, cursor: str | None = None,
                    with_total: bool = False) -> dict[str, Any]:
        """One page of the items matching ``query`` (item query language).

        Returns ``{"items": [item JSON], "next_cursor": str | None, "description": str,
        "total": int}`` (``total`` only with ``with_total``: it counts every match, which
        costs a full evaluation of the query). ``slice`` (id or name) restricts the
        query to that slice's items.
        """
        with self.db.read() as conn:
            ds, plan = self._items_plan(conn, dataset, query, slice)
            page = plan.page(conn, page_size, cursor)
            pks = [pk for _, pk in page.rows]
            rows = {}
            for part in chunks(pks):
                rows.update({r.pk: r for r in conn.execute(
                    select(t.items).where(t.items.c.pk.in_(part)))})
            result: dict[str, Any] = {
                "items": [item_payload(rows[pk]) for pk in pks],
                "next_cursor": page.next_cursor,
                "description": plan.description,
                "query": query,
            }
            if with_total:
                result["total"] = self._items_total(conn, ds.pk, plan, query, slice)
        return result

    def _items_total(self, conn: Connection, dataset_pk: int, plan: ItemsPlan, query: str,
                     slice: str | None) -> int:
        """How many items match: every item of the dataset (what the grid asks for first)
        is read from the running totals, as counting a million rows takes a while."""
        if slice is None and not query.strip():
            totals = stats.totals_of(conn, dataset_pk, (stats.PER_ITEM,))
            if totals is not None:
                return sum(totals[stats.PER_ITEM].values())
        return plan.count(conn)

    def query_objects(self, dataset: str, query: str, *, slice: str | None = None,
                      page_size: int = 100, cursor: str | None = None,
                      with_total: bool = False) -> dict[str, Any]:
        """One page of the annotations and/or predictions matching ``query``.

        Each object is its annotation JSON plus ``kind`` ("annotation"/"prediction"),
        ``reference_id`` and ``item_id`` of its item, ``run`` (the prediction's run, or
        the run an annotation's status refers to), ``status`` and ``iou`` (None where
        there is no match result) and ``match`` (a matched object's partner: its id,
        kind, label and geometry; None where there is none).
        """
        with self.db.read() as conn:
            _, plan = self._objects_plan(conn, dataset, query, slice)
            page = plan.page(conn, page_size, cursor)
            context = plan.run_context() or self._only_committed_run(conn, plan)
            objects = self._object_payloads(conn, page.rows, context)
            result: dict[str, Any] = {
                "objects": objects,
                "next_cursor": page.next_cursor,
                "description": plan.description,
                "query": query,
            }
            if with_total:
                kept = _kept_total(conn, plan)
                result["total"] = plan.count(conn) if kept is None else kept
        return result

    def describe_query(self, dataset: str, query: str,
                       target: Literal["items", "objects"] = "items") -> dict[str, Any]:
        """Check a query without running it: ``{"valid": True, "description": ...}``;
        an invalid one raises :class:`~ocula.errors.QueryError` with the position."""
        with self.db.read() as conn:
            if target == "items":
                _, plan = self._items_plan(conn, dataset, query, None)
            else:
                _, plan = self._objects_plan(conn, dataset, query, None)  # type: ignore[assignment]
        return {"valid": True, "description": plan.description, "query": query}

    def _only_committed_run(self, conn: Connection, plan: ObjectsPlan) -> dict[str, Any]:
        runs = [r for r in plan.compiler.runs.values() if r.committed]
        return {"pk": runs[0].pk, "name": runs[0].name} if len(runs) == 1 else {}

    def _object_payloads(self, conn: Connection, keys: list[tuple[str, int]],
                         context: dict[str, Any]) -> list[dict[str, Any]]:
        found: dict[tuple[str, int], dict[str, Any]] = {}
        partners: dict[tuple[str, int], tuple[str, int | None]] = {}
        ann_pks = [pk for kind, pk in keys if kind == "annotation"]
        pred_pks = [pk for kind, pk in keys if kind == "prediction"]
        a, ma = t.annotations, t.match_annotations
        for part in chunks(ann_pks):
            q = (select(a, t.items.c.reference_id.label("ref"), t.items.c.id.label("item"),
                        ma.c.status.label("m_status"), ma.c.iou.label("m_iou"),
                        ma.c.prediction_pk.label("partner"))
                 .join(t.items, t.items.c.pk == a.c.item_pk)
                 .outerjoin(ma, and_(ma.c.annotation_pk == a.c.pk,
                                     ma.c.run_pk == context.get("pk", -1)))
                 .where(a.c.pk.in_(part)))
            for r in conn.execute(q):
                body = object_payload(r, r.ref)
                body.update(kind="annotation", item_id=r.item, run=context.get("name"),
                            status=r.m_status, iou=r.m_iou)
                found[("annotation", r.pk)] = body
                partners[("annotation", r.pk)] = ("prediction", r.partner)
        p, mp = t.predictions, t.match_predictions
        for part in chunks(pred_pks):
            q = (select(p, t.items.c.reference_id.label("ref"), t.items.c.id.label("item"),
                        t.model_runs.c.name.label("run_name"), mp.c.status.label("m_status"),
                        mp.c.iou.label("m_iou"), mp.c.annotation_pk.label("partner"))
                 .join(t.items, t.items.c.pk == p.c.item_pk)
                 .join(t.model_runs, t.model_runs.c.pk == p.c.run_pk)
                 .outerjoin(mp, mp.c.prediction_pk == p.c.pk)
                 .where(p.c.pk.in_(part)))
            for r in conn.execute(q):
                body = object_payload(r, r.ref)
                body.update(kind="prediction", item_id=r.item, run=r.run_name,
                            status=r.m_status, iou=r.m_iou)
                found[("prediction", r.pk)] = body
                partners[("prediction", r.pk)] = ("annotation", r.partner)
        self._attach_partners(conn, found, partners)
        return [found[k] for k in keys if k in found]

    def _attach_partners(self, conn: Connection, found: dict[tuple[str, int], dict[str, Any]],
                         partners: dict[tuple[str, int], tuple[str, int | None]]) -> None:
        """Give each matched object ``match``: the object it matched (a TP's partner:
        id, kind, label and geometry), so a patch can draw both boxes; None otherwise."""
        wanted: dict[str, set[int]] = {"annotation": set(), "prediction": set()}
        for kind, pk in partners.values():
            if pk is not None:
                wanted[kind].add(pk)
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        for kind, table in (("annotation", t.annotations), ("prediction", t.predictions)):
            for part in chunks(sorted(wanted[kind])):
                for r in conn.execute(select(table.c.pk, table.c.id, table.c.label,
                                             table.c.type, table.c.x, table.c.y,
                                             table.c.width, table.c.height, table.c.geometry)
                                      .where(table.c.pk.in_(part))):
                    geometry = ({"x": r.x, "y": r.y, "width": r.width, "height": r.height}
                                if r.type == "box" else r.geometry or {})
                    rows[(kind, r.pk)] = {"id": r.id, "kind": kind, "type": r.type,
                                          "label": r.label, "geometry": geometry}
        for key, body in found.items():
            kind, pk = partners.get(key, ("", None))
            body["match"] = rows.get((kind, pk)) if pk is not None else None

    # --- slices from queries --------------------------------------------------------

    def create_slice_from_query(self, dataset: str, name: str, query: str, *,
                                target: Literal["items", "objects"] = "items",
                                slice: str | None = None,
                                description: str | None = None) -> dict[str, Any]:
        """A new slice holding a snapshot of what ``query`` matches now: items (an item
        slice) or, with ``target="objects"``, annotations/predictions (an object slice,
        for a patches view). ``slice`` (id or name) restricts the query to that slice,
        as in ``query_items``. The query text is kept with the slice."""
        require_name(name, "slice name")
        try:
            with self.db.write() as conn:
                if target == "items":
                    ds, plan = self._items_plan(conn, dataset, query, slice)
                    slice_pk, slice_id = self._new_slice(conn, ds.pk, name, "item",
                                                         description, query)
                    conn.execute(t.slice_items.insert().from_select(
                        ["slice_pk", "item_pk"], self._matching(plan, slice_pk)))
                else:
                    ds, oplan = self._objects_plan(conn, dataset, query, slice)
                    slice_pk, slice_id = self._new_slice(conn, ds.pk, name, "object",
                                                         description, query)
                    self._fill_objects(conn, slice_pk, oplan)
        except IntegrityError as exc:
            raise ConflictError(f"dataset already has a slice named {name!r}") from exc
        return self.slice_summary(slice_id)

    def slice_append_query(self, slice_id: str, query: str, *,
                           within: str | None = None) -> dict[str, Any]:
        """Add to an item slice the items ``query`` matches now (within the slice
        ``within``, id or name, if given), in SQL: a selection of a million results is
        never sent as ids. Items already in the slice are left as they are. To an
        object slice, the annotations and predictions an object query matches.
        ``{"slice_id", "added"}``."""
        with self.db.write() as conn:
            if self._slice_row(conn, slice_id).kind == "object":
                return {"slice_id": slice_id,
                        "added": self._change_objects(conn, slice_id, query, within, True)}
            target, plan = self._target_and_plan(conn, slice_id, query, within)
            members = t.slice_items
            source = self._matching(plan, target.pk).subquery()
            size = select(func.count()).select_from(members).where(
                members.c.slice_pk == target.pk)
            before = conn.scalar(size)
            conn.execute(members.insert().from_select(
                ["slice_pk", "item_pk"],
                select(source.c.slice_pk, source.c.item_pk).where(~select(members.c.item_pk)
                    .where(members.c.slice_pk == target.pk,
                           members.c.item_pk == source.c.item_pk).exists())))
            # Counted, not the INSERT's rowcount, which PostgreSQL's driver leaves at -1
            # for INSERT ... SELECT here.
            added = conn.scalar(size) - before
        return {"slice_id": slice_id, "added": added}

    def slice_remove_query(self, slice_id: str, query: str, *,
                           within: str | None = None) -> dict[str, Any]:
        """Take out of an item slice the items ``query`` matches now (within the slice
        ``within`` if given), in SQL; out of an object slice, the annotations and
        predictions an object query matches. ``{"slice_id", "removed"}``."""
        with self.db.write() as conn:
            if self._slice_row(conn, slice_id).kind == "object":
                return {"slice_id": slice_id,
                        "removed": self._change_objects(conn, slice_id, query, within, False)}
            target, plan = self._target_and_plan(conn, slice_id, query, within)
            chosen = self._matching(plan, target.pk).subquery()
            removed = conn.execute(delete(t.slice_items).where(
                t.slice_items.c.slice_pk == target.pk,
                t.slice_items.c.item_pk.in_(select(chosen.c.item_pk)))).rowcount
        return {"slice_id": slice_id, "removed": removed}

    def _target_and_plan(self, conn: Connection, slice_id: str, query: str,
                         within: str | None) -> tuple[Any, ItemsPlan]:
        target = self._slice_row(conn, slice_id)
        if target.kind != "item":
            raise ValidationError(f"slice {target.name!r} holds objects; items cannot be "
                                  "added to it or taken out by an item query")
        ds = conn.execute(select(t.datasets).where(t.datasets.c.pk == target.dataset_pk)).one()
        return target, self._items_plan_in(conn, ds, query, within)

    @staticmethod
    def _matching(plan: ItemsPlan, slice_pk: int) -> Any:
        """SELECT (slice_pk, item_pk) of the items ``plan`` matches; a query with a
        ``limit`` takes its first items in query order."""
        source = (select(literal(slice_pk).label("slice_pk"), t.items.c.pk.label("item_pk"))
                  .where(*plan.where))
        if plan.query.limit is not None:
            source = source.order_by(*[k.ordered() for k in plan.keys]).limit(plan.query.limit)
        return source

    def _new_slice(self, conn: Connection, dataset_pk: int, name: str, kind: str,
                   description: str | None, query: str | None) -> tuple[int, str]:
        slice_id = new_id("slice")
        result = conn.execute(t.slices.insert().values(
            id=slice_id, dataset_pk=dataset_pk, name=name.strip(), kind=kind,
            description=description, query=query, created_at=now()))
        return result.inserted_primary_key[0], slice_id

    @staticmethod
    def _object_sources(conn: Connection, plan: ObjectsPlan) -> list[tuple[str, Any]]:
        """What an object plan matches, as ``(column, pks)`` per kind of object
        (``annotation_pk``/``prediction_pk``): a SELECT of the pks, or for a query with a
        ``limit`` (rare: a capped snapshot) the list of its first pks in query order."""
        if plan.query.limit is None:
            return [(f"{b.scope.kind}_pk", select(b.scope.pk_col.label("pk"))
                     .select_from(b.scope.from_clause()).where(*b.where))
                    for b in plan.branches]
        cursor, keys = None, []
        while True:
            page = plan.page(conn, 10_000, cursor)
            keys += page.rows
            cursor = page.next_cursor
            if cursor is None:
                break
        return [(f"{kind}_pk", [pk for k, pk in keys if k == kind])
                for kind in ("annotation", "prediction")]

    def _fill_objects(self, conn: Connection, slice_pk: int, plan: ObjectsPlan,
                      *, skip_members: bool = False) -> None:
        """Put what ``plan`` matches into an object slice; ``skip_members``: leave out
        what it holds already."""
        so = t.slice_objects
        for col, source in self._object_sources(conn, plan):
            if isinstance(source, list):
                if skip_members:
                    held = set(conn.execute(select(so.c[col]).where(
                        so.c.slice_pk == slice_pk, so.c[col].is_not(None))).scalars())
                    source = [pk for pk in source if pk not in held]
                if source:
                    conn.execute(so.insert(), [{"slice_pk": slice_pk, "annotation_pk": None,
                                                "prediction_pk": None, col: pk}
                                               for pk in source])
                continue
            chosen = source.subquery()
            rows = select(literal(slice_pk).label("slice_pk"), chosen.c.pk)
            if skip_members:
                rows = rows.where(~select(so.c[col]).where(
                    so.c.slice_pk == slice_pk, so.c[col] == chosen.c.pk).exists())
            conn.execute(so.insert().from_select(["slice_pk", col], rows))

    def _change_objects(self, conn: Connection, slice_id: str, query: str,
                        within: str | None, add: bool) -> int:
        """Add to (or take out of) an object slice what an object query matches now;
        how many objects that added or removed."""
        so = t.slice_objects
        target = self._slice_row(conn, slice_id)
        dataset_id = conn.scalar(select(t.datasets.c.id).where(
            t.datasets.c.pk == target.dataset_pk))
        _, plan = self._objects_plan(conn, dataset_id, query, within)
        size = select(func.count()).select_from(so).where(so.c.slice_pk == target.pk)
        before = conn.scalar(size)
        if add:
            self._fill_objects(conn, target.pk, plan, skip_members=True)
        else:
            for col, source in self._object_sources(conn, plan):
                parts = chunks(source) if isinstance(source, list) else [source]
                for part in parts:
                    conn.execute(delete(so).where(so.c.slice_pk == target.pk,
                                                  so.c[col].in_(part)))
        # Counted: PostgreSQL's driver leaves INSERT ... SELECT's rowcount at -1 here.
        return abs(conn.scalar(size) - before)

    def slice_summary(self, slice_id: str) -> dict[str, Any]:
        """Slice info with the member count of either kind of slice (= ``slice_info``)."""
        return self.slice_info(slice_id)  # type: ignore[attr-defined]

    def slice_objects(self, slice_id: str, *, page_size: int = 100,
                      cursor: str | None = None) -> dict[str, Any]:
        """The annotations and predictions of an object slice, a page at a time."""
        with self.db.read() as conn:
            s = self._slice_row(conn, slice_id)
            ds_id = conn.scalar(select(t.datasets.c.id).where(t.datasets.c.pk == s.dataset_pk))
        return self.query_objects(ds_id, "type in [annotation, prediction]", slice=slice_id,
                                  page_size=page_size, cursor=cursor)

    # --- set operations -------------------------------------------------------------

    def combine_slices(self, dataset: str, name: str, operation: SetOperation,
                       slices: Sequence[str], *, description: str | None = None
                       ) -> dict[str, Any]:
        """A new slice from the union, intersection or difference (first minus the
        rest) of slices of the same kind, computed in SQL."""
        if operation not in ("union", "intersection", "difference"):
            raise ValidationError("operation must be union, intersection or difference")
        if len(slices) < 2:
            raise ValidationError("combine at least two slices")
        try:
            with self.db.write() as conn:
                ds = self._dataset_row(conn, dataset)
                rows = [self._slice_in(conn, ds, s) for s in slices]
                kinds = {r.kind for r in rows}
                if len(kinds) > 1:
                    raise ValidationError("cannot combine item slices with object slices")
                kind = kinds.pop()
                pk, slice_id = self._new_slice(conn, ds.pk, name, kind, description, None)
                pks = [r.pk for r in rows]
                if kind == "item":
                    self._combine(conn, t.slice_items, "item_pk", pk, operation, pks)
                else:
                    for col in ("annotation_pk", "prediction_pk"):
                        self._combine(conn, t.slice_objects, col, pk, operation, pks)
        except IntegrityError as exc:
            raise ConflictError(f"dataset already has a slice named {name!r}") from exc
        return self.slice_summary(slice_id)

    @staticmethod
    def _combine(conn: Connection, table: Any, col: str, target: int, operation: str,
                 sources: list[int]) -> None:
        member = table.c[col]
        base = select(member).where(member.is_not(None))
        if operation == "union":
            chosen = base.where(table.c.slice_pk.in_(sources)).distinct()
        elif operation == "intersection":
            chosen = (base.where(table.c.slice_pk.in_(sources)).group_by(member)
                      .having(func.count(table.c.slice_pk.distinct()) == len(sources)))
        else:
            others = table.alias()
            chosen = base.where(table.c.slice_pk == sources[0], member.not_in(
                select(others.c[col]).where(others.c.slice_pk.in_(sources[1:]),
                                            others.c[col].is_not(None)))).distinct()
        source = select(literal(target).label("slice_pk"), chosen.subquery().c[col])
        conn.execute(table.insert().from_select(["slice_pk", col], source))

    # --- export ---------------------------------------------------------------------

    def slice_contents(self, slice_id: str) -> dict[str, Any]:
        """What a slice holds, for an exporter: an item slice, its items with their
        current ground truth; an object slice, its objects (annotations and predictions)
        with the items holding them. ``{"kind", "items", "annotations", "predictions"}``,
        as JSON payloads (the io layer turns them into COCO and other formats)."""
        with self.db.read() as conn:
            s = self._slice_row(conn, slice_id)
            a, p, items = t.annotations, t.predictions, t.items
            if s.kind == "item":
                members = select(t.slice_items.c.item_pk).where(t.slice_items.c.slice_pk == s.pk)
                anns = conn.execute(select(a, items.c.reference_id.label("ref"))
                                    .join(items, items.c.pk == a.c.item_pk)
                                    .where(a.c.item_pk.in_(members), a.c.version_to.is_(None))
                                    .order_by(a.c.item_pk, a.c.pk)).all()
                preds: list[Any] = []
            else:
                so = t.slice_objects
                anns = conn.execute(select(a, items.c.reference_id.label("ref"))
                                    .join(items, items.c.pk == a.c.item_pk)
                                    .where(a.c.pk.in_(select(so.c.annotation_pk).where(
                                        so.c.slice_pk == s.pk)))
                                    .order_by(a.c.item_pk, a.c.pk)).all()
                preds = conn.execute(select(p, items.c.reference_id.label("ref"))
                                     .join(items, items.c.pk == p.c.item_pk)
                                     .where(p.c.pk.in_(select(so.c.prediction_pk).where(
                                         so.c.slice_pk == s.pk)))
                                     .order_by(p.c.item_pk, p.c.pk)).all()
                item_pks = sorted({r.item_pk for r in anns} | {r.item_pk for r in preds})
                members = None
            if members is not None:
                item_rows = conn.execute(select(items).where(items.c.pk.in_(members))
                                         .order_by(items.c.pk)).all()
            else:
                item_rows = []
                for part in chunks(item_pks):
                    item_rows += conn.execute(select(items).where(items.c.pk.in_(part))
                                              .order_by(items.c.pk)).all()
        return {"kind": s.kind, "items": [item_payload(r) for r in item_rows],
                "annotations": [object_payload(r, r.ref) for r in anns],
                "predictions": [object_payload(r, r.ref) for r in preds]}

    def delete_slice_objects(self, slice_id: str) -> dict[str, Any]:
        """Empty an object slice (the slice itself stays)."""
        with self.db.write() as conn:
            s = self._slice_row(conn, slice_id)
            n = conn.execute(delete(t.slice_objects).where(
                t.slice_objects.c.slice_pk == s.pk)).rowcount
        return {"slice_id": slice_id, "removed": n}


def _kept_total(conn: Connection, plan: ObjectsPlan) -> int | None:
    """The total of the patches page's first questions, from running totals instead of
    a count of ~1M rows (~0.3 s on SQLite; a run's misses, joined to their annotations
    to keep the current ones, several seconds): a run's predictions (``type =
    prediction and run = "x"``: ``stats.PRED``), a committed run's predictions or
    ground truth of one status (``type = prediction and run = "x" and status = fp``,
    ``type = annotation and run = "x" and status = fn``: the totals its commit keeps,
    ``stats.MATCH``), of one label or all (``and label = "car"``), any order, no
    slice. Ground truth only while the commit's kept numbers hold (labels and items as
    the commit saw them: every match row's annotation is then current). None for any
    other query, or while the totals are incomplete."""
    if plan.slice_pk is not None or len(plan.branches) != 1 or plan.query.limit is not None:
        return None
    scope = plan.branches[0].scope
    if scope.kind == "prediction":
        if len(scope.run_pks) != 1:
            return None
        run_pk = scope.run_pks[0]
    elif scope.run is not None:
        run_pk = scope.run.pk
    else:
        return None
    asked: dict[str, Any] = {}
    for c in ast.conjuncts(plan.query.where):
        if not (isinstance(c, ast.Compare) and c.op == "=" and isinstance(c.left, ast.Field)
                and len(c.left.path) == 1
                and c.left.path[0] in ("type", "run", "status", "label")
                and c.left.path[0] not in asked and c.right.kind in ("name", "string")):
            return None  # ``status = null`` (no match row) is no total kept
        name = c.left.path[0]
        # Labels are kept as written; the other values are names, in any case.
        asked[name] = str(c.right.value) if name == "label" else str(c.right.value).lower()
    if not {"type", "run"} <= asked.keys() or asked["type"] != scope.kind:
        return None
    if scope.kind == "annotation":
        run = conn.execute(select(t.model_runs).where(t.model_runs.c.pk == run_pk)).one()
        if "status" not in asked or not run_results.holds(conn, run, run_results.METRICS,
                                                          None):
            return None
    kind = stats.MATCH if "status" in asked else stats.PRED
    totals = stats.totals_of(conn, plan.compiler.dataset_pk, (kind,), run_pk=run_pk)
    if totals is None:
        return None
    label = asked.get("label")
    if kind == stats.PRED:
        return sum(n for name, n in totals[kind].items() if label in (None, name))
    side = "p" if scope.kind == "prediction" else "a"
    return sum(n for (s, name, status), n in totals[kind].items()
               if s == side and status == asked["status"] and label in (None, name))
