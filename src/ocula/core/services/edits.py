"""Interactive label edits: one call, one item, one new label version, a history row per
operation.

An edit is a list of operations on one item's ground truth (``docs/editing.md``):

- ``{"op": "add", "annotation": {...}}``: a new annotation (Nucleus JSON form);
- ``{"op": "update", "id", "expected", "label"?, "geometry"?, "metadata"?, "area"?}``:
  change an annotation's label, geometry fields (those given replace those stored)
  and/or metadata (a new geometry without ``area`` gets its area computed);
- ``{"op": "delete", "id", "expected"}``;
- ``{"op": "restore", "id", "expected"}``: bring back a deleted annotation as it was,
  under the same id;
- ``{"op": "accept_prediction", "prediction_id", "label"?, "annotation_id"?}``: copy a
  prediction of this item (label and geometry) into a new ground-truth annotation.

``expected`` is the annotation's *version token* as the caller last saw it: the label
version that wrote it (``version`` in :meth:`~ocula.core.services.Service.get_item`'s
annotations and in every edit result), or for a deleted one the version that deleted
it. When the stored state has moved on, the call raises :class:`ConflictError` (409)
and writes nothing: a stale edit never overwrites a newer one. Each operation's result
carries its ``inverse`` operation, ready to send back: undo applies the inverses in
reverse order, and redo the inverses of those.

The whole call is one transaction, like every write: validated first (a bad operation
is a 422 naming its index), then versioned in place (``schema.py``), the running
insights totals (``stats.py``) and the edit log (``annotation_edits``) updated with it.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, desc, select, update

from ocula.core.ids import new_ids
from ocula.core.services import stats
from ocula.core.services.annotations import AnnotationService, content_id
from ocula.core.services.base import iso, now
from ocula.core.services.checks import check_object
from ocula.core.services.payloads import object_columns, object_payload
from ocula.core.store import schema as t
from ocula.core.types import payload_to_annotation
from ocula.core.validation import text_error
from ocula.errors import (
    BatchError,
    ConflictError,
    NotFoundError,
    OculaError,
    ValidationError,
)

MAX_EDITS = 1000
MAX_HISTORY = 10_000
OPS = ("add", "update", "delete", "restore", "accept_prediction")
# The keys each operation may carry ("op" aside); the first ones listed are required.
_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "add": (("annotation",), ()),
    "update": (("id", "expected"), ("label", "geometry", "metadata", "area")),
    "delete": (("id", "expected"), ()),
    "restore": (("id", "expected"), ()),
    "accept_prediction": (("prediction_id",), ("label", "annotation_id")),
}
_CHANGES = ("label", "geometry", "metadata")
# The geometry fields an update of each type may name. A field of another type (x on a
# polygon) would be dropped when the annotation is rebuilt, and the update then reported
# as changing nothing: refused by name instead.
_GEOMETRY_KEYS: dict[str, frozenset[str]] = {
    "box": frozenset({"x", "y", "width", "height"}),
    "polygon": frozenset({"vertices"}),
    "line": frozenset({"vertices"}),
    "keypoints": frozenset({"keypoints", "names", "skeleton"}),
    "mask": frozenset({"rle", "segmentation"}),
    "category": frozenset({"taxonomy_name"}),
    "multicategory": frozenset({"labels", "taxonomy_name"}),
}
_FEWEST_VERTICES = {"polygon": 3, "line": 2}


def local_author() -> str:
    """Who edits in embedded use: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "local"


class EditService(AnnotationService):
    def edit_annotations(self, dataset: str, reference_id: str,
                         edits: Sequence[Mapping[str, Any]], *, author: str | None = None,
                         message: str | None = None) -> dict[str, Any]:
        """Apply ``edits`` (see the module docstring) to the ground truth of item
        ``reference_id`` as one transaction and one new label version, logging each
        with ``author`` (default: the local user; a server passes the API key's name).

        Returns ``version``, ``author`` and per operation ``op``, ``id`` (the
        annotation's), ``version`` (its new token), ``before`` and ``after`` (annotation
        JSON with its ``version`` token, or None where absent) and ``inverse``.
        Raises :class:`BatchError` (422) for malformed or invalid operations,
        :class:`NotFoundError` for an id not on this item and :class:`ConflictError`
        (409) when an annotation changed since ``expected``; nothing is written then.
        """
        who = _author(author)
        if message is not None and (err := text_error("edit message", message, None)):
            raise err
        ops = _parse(edits)
        with self.db.write() as conn:
            ds = self._lock_dataset(conn, self._dataset_row(conn, dataset).id)
            item = self._require_items(conn, ds.pk, [reference_id])[reference_id]
            plan = _Plan(conn, ds, item, ops)
            # A category or multicategory written by an edit follows its taxonomy, as
            # one uploaded does.
            written = [new[0] for _, _, new, _ in plan.steps if new is not None]
            if errors := self._taxonomy_errors(conn, ds.pk, written):  # type: ignore[attr-defined]
                raise BatchError(errors)
            version = self._new_version(conn, ds.pk, message)
            results = plan.write(conn, version, who, message)
        return {"version": version, "reference_id": reference_id, "item_id": item.id,
                "author": who, "edits": results}

    def item_history(self, dataset: str, reference_id: str, *, limit: int = 100
                     ) -> list[dict[str, Any]]:
        """The edits of one item's labels, newest first (at most ``limit``): ``version``,
        ``op``, ``id``, ``prediction_id``, ``author``, ``message``, ``created_at``,
        ``before`` and ``after``. Bulk writes (``annotate``) are versions without
        history rows."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY:
            raise ValidationError(f"limit must be an integer in [1, {MAX_HISTORY}], "
                                  f"got {limit!r}")
        e = t.annotation_edits
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            item = self._require_items(conn, ds.pk, [reference_id])[reference_id]
            rows = conn.execute(select(e).where(e.c.item_pk == item.pk)
                                .order_by(desc(e.c.version), desc(e.c.seq)).limit(limit)).all()
        return [{"version": r.version, "op": r.op, "id": r.annotation,
                 "prediction_id": r.prediction_id, "author": r.author, "message": r.message,
                 "created_at": iso(r.created_at), "before": r.before, "after": r.after}
                for r in rows]


def _author(author: str | None) -> str:
    if author is None:
        return local_author()
    if not isinstance(author, str) or not author.strip() or len(author) > 255:
        raise ValidationError("author must be a non-blank text of at most 255 characters")
    if (err := text_error("author", author, None)) is not None:
        raise err
    return author


def _parse(edits: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The operations, checked for shape; every malformed one reported at once."""
    if isinstance(edits, (str, bytes, Mapping)) or not isinstance(edits, Sequence):
        raise ValidationError("edits must be a list of operations")
    if not edits:
        raise ValidationError("no edits given")
    if len(edits) > MAX_EDITS:
        raise ValidationError(f"at most {MAX_EDITS} edits per call, got {len(edits)}")
    errors: list[OculaError] = []
    for i, op in enumerate(edits):
        if (problem := _shape_problem(op)) is not None:
            errors.append(ValidationError(f"edit #{i}: {problem}", edit=i))
    if errors:
        raise BatchError(errors)
    ops = [dict(op) for op in edits]
    for op in ops:
        if isinstance(op.get("expected"), float):  # JSON's 3.0 is the integer 3
            op["expected"] = int(op["expected"])
    return ops


def _shape_problem(op: Any) -> str | None:
    if not isinstance(op, Mapping):
        return f"an operation is a JSON object, got {type(op).__name__}"
    kind = op.get("op")
    if kind not in OPS:
        return f"unknown op {kind!r}; expected one of {', '.join(OPS)}"
    required, optional = _KEYS[kind]
    extra = set(op) - {"op", *required, *optional}
    if extra:
        return f"{kind} takes no {', '.join(sorted(map(str, extra)))}"
    missing = [k for k in required if op.get(k) is None]
    if missing:
        return f"{kind} needs {', '.join(missing)}"
    for key in ("id", "prediction_id", "label", "annotation_id"):
        if key in op and not (isinstance(op[key], str) and op[key].strip()):
            return f"{key} must be a non-blank string"
    token = op.get("expected")
    if "expected" in op and (isinstance(token, bool) or not (
            isinstance(token, int) or isinstance(token, float) and token.is_integer())):
        return "expected must be the annotation's version token (an integer)"
    if kind == "add" and not isinstance(op["annotation"], Mapping):
        return "annotation must be a JSON object"
    if kind == "update":
        if not any(k in op for k in _CHANGES):
            return "update changes nothing: give label, geometry and/or metadata"
        if "geometry" in op and not isinstance(op["geometry"], Mapping):
            return "geometry must be a JSON object"
        if op.get("metadata") is not None and not isinstance(op["metadata"], Mapping):
            return "metadata must be a JSON object"
        if "area" in op and "geometry" not in op:
            return "area goes with a new geometry"
    return None


class _Plan:
    """One edit call checked against the stored state, ready to write: the rows it
    closes, the annotations it inserts and what each operation reports."""

    def __init__(self, conn: Connection, ds: Any, item: Any, ops: list[dict[str, Any]]):
        self.ds, self.item = ds, item
        a = t.annotations
        ids = [op["id"] for op in ops if "id" in op]
        # Each annotation's newest row: the current one, or the one its deletion closed.
        self.latest: dict[str, Any] = {}
        if ids:
            for row in conn.execute(select(a).where(a.c.item_pk == item.pk, a.c.id.in_(ids))
                                    .order_by(a.c.pk)):
                self.latest[row.id] = row
        self.current = dict(conn.execute(
            select(a.c.annotation_id, a.c.id).where(a.c.item_pk == item.pk,
                                                    a.c.version_to.is_(None))).all())
        self.count_before = len(self.current)
        self.predictions = self._predictions(conn, ops)
        self.close: list[Any] = []  # rows whose version ends here
        self.seen: set[str] = set()  # annotations an operation already edits
        # Per operation: (op, logical id or None for a new one, (annotation to insert,
        # its metadata JSON) or None, the row it closes or restores or None).
        self.steps: list[tuple[dict[str, Any], str | None, Any, Any]] = []
        errors: list[OculaError] = []
        for i, op in enumerate(ops):
            try:
                self.steps.append(self._check(i, op))
            except ValidationError as exc:
                errors.append(_indexed(exc, i))
        if errors:
            raise BatchError(errors)

    def _predictions(self, conn: Connection, ops: list[dict[str, Any]]) -> dict[str, Any]:
        wanted = [op["prediction_id"] for op in ops if op["op"] == "accept_prediction"]
        if not wanted:
            return {}
        p = t.predictions
        return {r.id: r for r in conn.execute(select(p).where(
            p.c.id.in_(wanted), p.c.item_pk == self.item.pk))}

    def _check(self, i: int, op: dict[str, Any]) -> tuple[dict[str, Any], str | None, Any, Any]:
        kind = op["op"]
        if kind == "add":
            body = {**op["annotation"], "reference_id": self.item.reference_id}
            geometry = body.get("geometry")
            if (body.get("type") in _FEWEST_VERTICES and isinstance(geometry, Mapping)
                    and (problem := _vertices_problem(body["type"], geometry.get("vertices")))):
                raise ValidationError(problem)
            return op, None, self._annotation(i, body), None
        if kind == "accept_prediction":
            pred = self.predictions.get(op["prediction_id"])
            if pred is None:
                raise NotFoundError(f"edit #{i}: no prediction {op['prediction_id']!r} on "
                                    f"item {self.item.reference_id!r}", edit=i)
            body = object_payload(pred, self.item.reference_id)
            for key in ("id", "confidence", "class_pdf", "metadata"):
                body.pop(key, None)
            body["label"] = op.get("label", body["label"])
            body["annotation_id"] = op.get("annotation_id", f"accepted:{pred.id}")
            return op, None, self._annotation(i, body), None
        row = self.latest.get(op["id"])
        if row is None:
            raise NotFoundError(f"edit #{i}: no annotation {op['id']!r} on item "
                                f"{self.item.reference_id!r}", edit=i)
        if op["id"] in self.seen:
            raise ValidationError(f"annotation {op['id']!r} is edited twice in one call")
        self.seen.add(op["id"])
        live = row.version_to is None
        token = row.version_from if live else row.version_to
        if token != op["expected"] or live == (kind == "restore"):
            state = "current" if live else "deleted"
            why = (f"changed since version {op['expected']}" if token != op["expected"]
                   else "is not deleted" if live else "is deleted")
            raise ConflictError(
                f"edit #{i}: annotation {op['id']!r} {why} (it is {state} at version "
                f"{token}); reload the item and edit again",
                edit=i, id=op["id"], expected=op["expected"], version=token,
                current=_state(row, self.item.reference_id) if live else None)
        if kind == "delete":
            self.close.append(row)
            self.current.pop(row.annotation_id, None)
            return op, row.id, None, row
        body = object_payload(row, self.item.reference_id)
        if kind == "update":
            for key in _CHANGES:
                if key in op:
                    body[key] = op[key]
            if "geometry" in op:
                if (problem := _geometry_problem(row.type, op["geometry"])) is not None:
                    raise ValidationError(problem)
                # Fields given replace those stored: x and y alone move a box, and new
                # keypoints keep their names and skeleton.
                body["geometry"] = {**object_payload(row, "")["geometry"], **op["geometry"]}
                body.pop("area", None)
                if "area" in op:
                    body["area"] = op["area"]
            self.current.pop(row.annotation_id, None)
            new = self._annotation(i, body)
            if all(getattr(row, k) == v for k, v in object_columns(new[0]).items()):
                raise ValidationError(f"edit #{i}: update changes nothing")
            self.close.append(row)
            return op, row.id, new, row
        return op, row.id, self._annotation(i, body), row

    def _annotation(self, i: int, body: dict[str, Any]) -> tuple[Any, str | None]:
        """The annotation ``body`` describes, checked as any written annotation is."""
        body.pop("id", None)
        ann = payload_to_annotation(body)
        if ann.type == "segmentation":
            raise ValidationError("edit one instance at a time: segmentation masks are "
                                  "split into mask annotations on upload")
        items = {self.item.reference_id: self.item}
        err, meta = check_object(ann, items, self.ds.allowed_types)
        if err is not None:
            raise err
        if ann.annotation_id is None:
            ann.annotation_id = content_id(ann)
        if ann.annotation_id in self.current:
            raise ConflictError(f"edit #{i}: item {self.item.reference_id!r} already has an "
                                f"annotation {ann.annotation_id!r}", edit=i,
                                id=self.current[ann.annotation_id])
        self.current[ann.annotation_id] = "pending"
        return ann, meta

    def write(self, conn: Connection, version: int, author: str, message: str | None
              ) -> list[dict[str, Any]]:
        a = t.annotations
        if self.close:
            conn.execute(update(a).where(a.c.pk.in_([r.pk for r in self.close]))
                         .values(version_to=version))
        fresh = iter(new_ids("annotation", sum(1 for s in self.steps if s[1] is None)))
        ids = [logical or next(fresh) for _, logical, _, _ in self.steps]
        rows = [{"id": ann_id, "dataset_pk": self.ds.pk, "item_pk": self.item.pk,
                 "annotation_id": new[0].annotation_id, "version_from": version,
                 "version_to": None, **object_columns(new[0])}
                for ann_id, (_, _, new, _) in zip(ids, self.steps, strict=True) if new]
        if rows:
            conn.execute(a.insert(), rows)
        written = {r.id: r for r in conn.execute(select(a).where(
            a.c.item_pk == self.item.pk, a.c.version_from == version))}
        self._save_totals(conn, written.values())
        ref = self.item.reference_id
        results, log = [], []
        for seq, (ann_id, (op, _, _, old)) in enumerate(zip(ids, self.steps, strict=True)):
            before = _state(old, ref) if old is not None and op["op"] != "restore" else None
            after = _state(written[ann_id], ref) if ann_id in written else None
            results.append({"op": op["op"], "id": ann_id, "version": version,
                            "before": before, "after": after,
                            "inverse": _inverse(ann_id, version, before, after)})
            log.append({"dataset_pk": self.ds.pk, "item_pk": self.item.pk,
                        "version": version, "seq": seq, "op": op["op"], "annotation": ann_id,
                        "prediction_id": op.get("prediction_id"), "author": author,
                        "message": message, "before": before, "after": after,
                        "created_at": now()})
        conn.execute(t.annotation_edits.insert(), log)
        return results

    def _save_totals(self, conn: Connection, inserted: Any) -> None:
        inserted = list(inserted)
        delta = stats.Delta()
        delta.add_annotations(((r.label, r.area, r.width, r.height) for r in self.close), -1)
        delta.add_annotations((r.label, r.area, r.width, r.height) for r in inserted)
        after = self.count_before - len(self.close) + len(inserted)
        delta.move_items({self.item.pk: self.count_before}, {self.item.pk: after})
        delta.save(conn, self.ds.pk)


def _geometry_problem(kind: str, geometry: Mapping[str, Any]) -> str | None:
    """What is wrong with the geometry fields an update of a ``kind`` annotation gives,
    before the annotation is rebuilt from them (whose checks are those of an upload)."""
    allowed = _GEOMETRY_KEYS.get(kind, frozenset())
    if extra := sorted(map(str, set(geometry) - allowed)):
        takes = ", ".join(sorted(allowed)) or "no fields"
        return f"a {kind}'s geometry takes {takes}, not {', '.join(extra)}"
    if kind in _FEWEST_VERTICES and "vertices" in geometry:
        return _vertices_problem(kind, geometry["vertices"])
    return None


def _vertices_problem(kind: str, vertices: Any) -> str | None:
    """Vertices as the edit's JSON gives them: a list of ``{"x", "y"}`` finite numbers,
    enough of them for ``kind``. Stricter than an upload, which converts what it can
    ("12" or true would be stored as 12.0 or 1.0): an editor sends back what it read."""
    fewest = _FEWEST_VERTICES[kind]
    if isinstance(vertices, (str, bytes, Mapping)) or not isinstance(vertices, Sequence):
        return f'a {kind}\'s vertices must be a list of {{"x": …, "y": …}} points'
    if len(vertices) < fewest:
        return f"a {kind} needs at least {fewest} vertices, got {len(vertices)}"
    for j, p in enumerate(vertices):
        if not isinstance(p, Mapping) or set(p) != {"x", "y"}:
            return f'vertex #{j} must be {{"x": …, "y": …}}'
        if not (_finite(p["x"]) and _finite(p["y"])):
            return f"vertex #{j}: x and y must be finite numbers"
    return None


def _finite(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer past any float (JSON allows 1 followed by 400 zeros)
        return False


def _state(row: Any, reference_id: str) -> dict[str, Any]:
    """An annotation's JSON with its version token."""
    token = row.version_from if row.version_to is None else row.version_to
    return {**object_payload(row, reference_id), "version": token}


def _inverse(ann_id: str, version: int, before: dict[str, Any] | None,
             after: dict[str, Any] | None) -> dict[str, Any]:
    """The operation that undoes one just written at ``version``."""
    if before is None:
        return {"op": "delete", "id": ann_id, "expected": version}
    if after is None:
        return {"op": "restore", "id": ann_id, "expected": version}
    back: dict[str, Any] = {"op": "update", "id": ann_id, "expected": version}
    for key in _CHANGES:
        if before[key] != after[key]:
            back[key] = before[key]
    if "geometry" in back and "area" in before:
        back["area"] = before["area"]
    return back


def _indexed(exc: ValidationError, i: int) -> ValidationError:
    """``exc`` with the operation's index in front of its message."""
    if exc.message.startswith(f"edit #{i}:"):
        return exc
    exc.message = f"edit #{i}: {exc.message}"
    exc.args = (exc.message,)
    exc.detail["edit"] = i
    return exc

