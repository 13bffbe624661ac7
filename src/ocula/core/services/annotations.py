"""Ground truth: validated, versioned writes and reads at any version.

Every call that changes a dataset's labels opens a new version; replaced or deleted rows
are closed (``version_to``), never overwritten. See ``ocula.core.store.schema``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring_ascii,
)
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, func, or_, select, update

from ocula.core.ids import new_ids
from ocula.core.services import stats, upload_sides
from ocula.core.services.base import (
    bulk_operation,
    chunks,
    count_where_in,
    iso,
    now,
    rows_where_in,
    tuned_for_bulk,
)
from ocula.core.services.checks import box_columns, check_batch
from ocula.core.services.payloads import box_values, object_columns, object_payload, object_rows
from ocula.core.services.segmentations import SegmentationService, is_segment_part
from ocula.core.store import schema as t
from ocula.core.store.bulk import analyze_grown, insert_columns, insert_stream
from ocula.core.types import SEGMENT_ID_PREFIX, MaskAnnotation, SegmentationAnnotation
from ocula.core.validation import duplicate_errors
from ocula.errors import BatchError, NotFoundError, OculaError, ValidationError


def content_id(ann: Any) -> str:
    """A deterministic annotation id from the content, for annotations sent without one,
    so that retrying the same upload does not duplicate them."""
    body = {k: v for k, v in ann.to_payload().items() if k not in ("annotation_id", "area")}
    digest = hashlib.sha1(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return "auto:" + digest[:16]


# json.dumps(sort_keys=True, default=str) as content_id writes nested metadata, with the
# C encoder built once (json.dumps builds one per call, a third of the time). Cycles are
# not checked: metadata reaching it has passed a check that does.
_SORTED_JSON = json.JSONEncoder(sort_keys=True, default=str)
_sorted_c_encoder = (c_make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", True,
                                    False, True) if c_make_encoder is not None else None)


def _sorted_json(value: dict[str, Any] | None) -> str:
    if not value:
        return "{}"
    if _sorted_c_encoder is None:
        return _SORTED_JSON.encode(value)
    return "".join(_sorted_c_encoder(value, 0))


def box_content_ids(fields: dict[str, list[Any]]) -> list[str] | None:
    """:func:`content_id` of each plain box (``checks.box_columns``), from its columns:
    the same text hashed, written by a template instead of a dict per box and a
    json.dumps each (2.3x faster; uploads without annotation ids are common). None when a
    value is not of the kinds the template writes exactly."""
    coords = [fields[k] for k in ("height", "width", "x", "y")]
    if not (all(set(map(type, c)) <= {int, float} for c in coords)
            and set(map(type, fields["label"])) <= {str}
            and set(map(type, fields["reference_id"])) <= {str}
            and set(map(type, fields["metadata"])) <= {dict, type(None)}
            and set(map(type, fields["iscrowd"])) <= {bool}):
        return None
    # Keys in sorted order, as json.dumps(sort_keys=True) writes them; iscrowd only when
    # true, as to_payload leaves it out otherwise.
    h, w, x, y = (map(repr, c) for c in coords)
    texts = map("".join, zip(
        repeat('{"geometry": {"height": '), h, repeat(', "width": '), w, repeat(', "x": '), x,
        repeat(', "y": '), y, repeat("}, "),
        ('"iscrowd": true, ' if c else "" for c in fields["iscrowd"]),
        repeat('"label": '), map(encode_basestring_ascii, fields["label"]),
        repeat(', "metadata": '), map(_sorted_json, fields["metadata"]),
        repeat(', "reference_id": '), map(encode_basestring_ascii, fields["reference_id"]),
        repeat(', "type": "box"}')))
    return ["auto:" + hashlib.sha1(t.encode()).hexdigest()[:16] for t in texts]


def at_version(table: Any, version: int | None) -> Any:
    """SQL condition: rows of ``table`` (annotations) valid at ``version`` (None = now)."""
    if version is None:
        return table.c.version_to.is_(None)
    return and_(table.c.version_from <= version,
                or_(table.c.version_to.is_(None), table.c.version_to > version))


class _BoxRows(NamedTuple):
    """A batch of plain boxes laid out for ``insert_columns`` (built while the previous
    batch is written), and their insights tally."""

    columns: tuple[str, ...]
    constants: dict[str, Any]
    values: list[list[Any]]
    tally: stats.AnnotationTally


class _Checked(NamedTuple):
    """A validated batch of annotations, ready to write: one entry per (reference_id,
    annotation_id), in upload order."""

    dataset_id: str
    anns: list[Any]
    item_pks: list[int]
    # Each one's annotation_id: given, or made from its content.
    ann_ids: list[str]
    metadata: list[str | None]
    duplicates_dropped: int
    # The rows to insert if all are plain boxes and none of them exists yet.
    boxes: _BoxRows | None
    # Which entries are masks split from a segmentation (None: none is).
    parts: list[bool] | None = None


class AnnotationService(SegmentationService):
    @bulk_operation
    def annotate(self, dataset: str, annotations: Sequence[Any], *, update: bool = False,
                 message: str | None = None) -> dict[str, Any]:
        """Add ground truth; with ``update``, replace annotations with the same
        ``annotation_id`` on the same item. The whole batch is validated first and
        written in one transaction as one new version of the dataset's labels."""
        return self._write_checked(self._check_annotations(dataset, annotations), update,
                                   message)

    def annotate_batches(self, dataset: str, batches: Iterable[Sequence[Any]], *,
                         update: bool = False, message: str | None = None
                         ) -> Iterator[dict[str, Any]]:
        """:meth:`annotate` each batch in turn, yielding its result: each is validated
        whole and written as its own transaction and version, in order. While one batch
        is written, the next one is validated on this thread; the database inserts with
        the GIL released, so the two run side by side on two cores."""
        with tuned_for_bulk(self.tune_runtime, switches=True), \
                ThreadPoolExecutor(1, thread_name_prefix="ocula-annotate") as pool:
            writing: Future[dict[str, Any]] | None = None
            try:
                for batch in batches:
                    checked = self._check_annotations(dataset, batch)
                    if writing is not None:
                        done, writing = writing, None
                        yield done.result()
                    writing = pool.submit(self._write_checked, checked, update, message)
                if writing is not None:
                    done, writing = writing, None
                    yield done.result()
            finally:
                # Never return with a write still running; an earlier batch's failure
                # comes before a later batch's.
                if writing is not None:
                    writing.result()

    def _check_annotations(self, dataset: str, annotations: Sequence[Any]) -> _Checked:
        """Validate a whole batch against the dataset's items (raises BatchError with
        every problem); an annotation sent twice without an id is kept once."""
        anns, split_errors = list(annotations), []
        if any(isinstance(a, SegmentationAnnotation) for a in anns):
            with self.db.read() as conn:
                ds = self._dataset_row(conn, dataset)
                owners = self._item_map(conn, ds.pk, [
                    a.reference_id for a in anns if isinstance(a, SegmentationAnnotation)
                    and isinstance(a.reference_id, str)])
            anns, split_errors = self._split_segmentations(anns, owners)
        fields = box_columns(anns)
        if fields is not None:
            refs, given = fields["reference_id"], fields["annotation_id"]
        else:
            refs = list(map(getattr, anns, repeat("reference_id"), repeat(None)))
            given = list(map(getattr, anns, repeat("annotation_id"), repeat(None)))
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            items = self._item_map(conn, ds.pk, list(filter(None, refs)))
            taxonomy = self._taxonomy_errors(conn, ds.pk, anns) if fields is None else []
        errors, metadata = self._check_batch(anns, refs, given, items, ds.allowed_types,
                                             fields)
        errors += taxonomy + split_errors
        if errors:
            raise BatchError(errors)
        dropped = 0
        if not all(given):
            made = box_content_ids(fields) if fields is not None else None
            if made is None:
                made = [None if g else content_id(a) for a, g in zip(anns, given, strict=True)]
            keyed: dict[tuple[str, str], tuple[Any, str | None]] = {}
            for a, ref, ann_id, auto, meta in zip(anns, refs, given, made, metadata,
                                                  strict=True):
                keyed.setdefault((ref, ann_id or auto), (a, meta))
            dropped = len(anns) - len(keyed)
            if dropped:
                fields = None
            anns = [a for a, _ in keyed.values()]
            refs, given = list(map(itemgetter(0), keyed)), list(map(itemgetter(1), keyed))
            metadata = [m for _, m in keyed.values()]
        item_pks = list(map(attrgetter("pk"), map(items.__getitem__, refs)))
        boxes = None
        if fields is not None:
            columns, constants, values = box_values(
                ("id", "item_pk", "annotation_id"),
                [new_ids("annotation", len(anns)), item_pks, given], fields, metadata)
            tally = stats.AnnotationTally()
            tally.count(*(values[columns.index(c)] for c in stats.GT_COLUMNS))
            boxes = _BoxRows(columns, constants, values, tally)
        # Known here, on the checking thread: the writer runs no Python loop over rows.
        parts = None if fields is not None or not any(
            issubclass(k, MaskAnnotation) for k in set(map(type, anns))) \
            else list(map(is_segment_part, anns))
        return _Checked(ds.id, anns, item_pks, given, metadata, dropped, boxes,
                        parts if parts and any(parts) else None)

    def _write_checked(self, checked: _Checked, update: bool, message: str | None
                       ) -> dict[str, Any]:
        with self.db.write(check_references=False) as conn:
            ds = self._lock_dataset(conn, checked.dataset_id)
            if ds is None:
                raise NotFoundError(f"dataset {checked.dataset_id!r} was deleted")
            self._require_item_pks(conn, ds.pk, checked.item_pks)
            before = upload_sides.ground_truth_state(conn, ds.pk)
            result, plain = self._write_annotations(conn, ds, checked, update, message)
            # The boxes written as the dataset's ground truth, kept as the commit reads
            # them where they can be named (services/upload_sides).
            keep = upload_sides.ground_truth_keeper(conn, ds.pk, dict(zip(
                plain.columns, plain.values, strict=True)), before) if plain else None
        if keep is not None:
            keep()
        result["annotations_ignored"] += checked.duplicates_dropped
        result["dataset_id"] = ds.id
        return result

    def _check_batch(self, anns: Sequence[Any], refs: list[Any], given: list[Any],
                     items: dict[str, Any], allowed: list[str] | None,
                     fields: dict[str, list[Any]] | None = None
                     ) -> tuple[list[OculaError], list[str | None]]:
        """Every error of the batch, and each annotation's metadata as JSON. ``refs``,
        ``given``: each annotation's reference_id and annotation_id; ``fields``:
        box_columns(anns)."""
        errors, metadata = check_batch(anns, items, allowed, columns=fields)
        if all(given) and len(set(given)) == len(given):
            return errors, metadata  # no annotation_id twice, so no (item, id) twice
        # Ids made from content are unique by design; given ones must be per item.
        pairs = [(r, a) for r, a in zip(refs, given, strict=True) if a]
        return errors + duplicate_errors(pairs, "(reference_id, annotation_id)"), metadata

    def _require_item_pks(self, conn: Connection, dataset_pk: int, item_pks: list[int]) -> None:
        """Every item still exists (checked earlier, outside this transaction): the
        foreign-key check of the insert, once per batch instead of once per row."""
        wanted = set(item_pks)
        found = count_where_in(conn, t.items.c.pk, wanted, t.items.c.dataset_pk == dataset_pk)
        if found < len(wanted):
            raise NotFoundError(f"{len(wanted) - found} item(s) of this batch were deleted "
                                "while it was checked; nothing was written")

    def _lock_dataset(self, conn: Connection, dataset_id: str) -> Any:
        # Row lock on PostgreSQL serialises version numbering per dataset; SQLite already
        # holds its database-wide write lock here.
        return conn.execute(select(t.datasets).where(t.datasets.c.id == dataset_id)
                            .with_for_update()).first()

    def _write_annotations(self, conn: Connection, ds: Any, checked: _Checked,
                           update_existing: bool, message: str | None
                           ) -> tuple[dict[str, Any], _BoxRows | None]:
        """Write a checked batch: the result, and the plain boxes if they were written as
        they are (every one new)."""
        n, item_pks = len(checked.anns), checked.item_pks
        current = self._current_keys(conn, item_pks)
        keep: list[int] = []  # entries to write, when not all of them
        logical: list[str | None] = []  # for each kept entry, the id of the row it replaces
        to_close: list[Any] = []
        ignored = 0
        # Masks split from a segmentation: one segmentation per item (see
        # services/segmentations.py), counted as one.
        parts = checked.parts
        seg_items = {pk for pk, p in zip(item_pks, parts, strict=True) if p} if parts else set()
        held = {pk for pk, aid in current if pk in seg_items
                and str(aid).startswith(SEGMENT_ID_PREFIX)} if seg_items else set()
        if current:
            found = [current.get(key) for key in zip(item_pks, checked.ann_ids, strict=True)]
            # Whole rows only where an update may replace them: a retried upload of
            # millions of boxes reads keys alone.
            # With update, the segments an item's new segmentation no longer has go too.
            sent = set(zip(item_pks, checked.ann_ids, strict=True)) if held else set()
            stale = [pk for (item_pk, aid), pk in current.items() if update_existing
                     and item_pk in held and (item_pk, aid) not in sent
                     and str(aid).startswith(SEGMENT_ID_PREFIX)]
            old = self._rows_by_pk(conn, list(filter(None, found)) + stale) \
                if update_existing else {}
            to_close.extend(old[pk] for pk in stale)
            for i, pk in enumerate(found):
                part = parts is not None and parts[i]
                if part and not update_existing and item_pks[i] in held:
                    ignored += 1  # the item has a segmentation: this one is ignored whole
                elif pk is None:
                    keep.append(i)
                    logical.append(None)
                elif not update_existing or (not part and _same(old[pk], checked.anns[i])):
                    ignored += 1
                else:
                    # A segmentation sent with update replaces the item's, whole.
                    replaced = old[pk]
                    to_close.append(replaced)
                    keep.append(i)
                    logical.append(replaced.id)
        written = len(keep) if current else n
        processed = written
        if parts:
            # Counted per segmentation (per item), as Nucleus counts them.
            kept = set(keep) if current else set(range(n))
            done = {item_pks[i] for i in kept if parts[i]}
            processed = sum(1 for i in kept if not parts[i]) + len(done)
            ignored -= sum(1 for i in range(n) if parts[i] and i not in kept)
            ignored += len(seg_items - done)
        version = None
        plain = None
        if written or to_close:
            version = self._new_version(conn, ds.pk, message)
            for part in chunks([r.pk for r in to_close]):
                conn.execute(update(t.annotations).where(t.annotations.c.pk.in_(part))
                             .values(version_to=version))
            constants = {"dataset_pk": ds.pk, "version_from": version, "version_to": None}
            if not current and checked.boxes is not None:
                boxes = plain = checked.boxes
                tally = boxes.tally
                written = insert_columns(conn, t.annotations, boxes.columns, boxes.values,
                                         constants | boxes.constants)
            else:
                if not current:
                    keep, logical = list(range(n)), [None] * n
                fresh = iter(new_ids("annotation", logical.count(None)))
                ids = [lg or next(fresh) for lg in logical]
                pick = [checked.anns, item_pks, checked.ann_ids, checked.metadata]
                anns, pks, ann_ids, metadata = ([v[i] for i in keep] for v in pick)
                columns, rows = object_rows(("id", "item_pk", "annotation_id"),
                                            (ids, pks, ann_ids), anns, metadata)
                tally = stats.AnnotationTally()
                written = insert_stream(conn, t.annotations, columns,
                                        tally.rows(rows, columns), constants)
                if checked.boxes is not None and len(keep) == n and not to_close:
                    # Every box new (a batch starting on an item the previous one
                    # ended on): the rows are the boxes' values, in order.
                    plain = checked.boxes
            analyze_grown(conn, t.annotations, written)
            delta = stats.Delta()
            delta.annotation_write(map(itemgetter(0), current), to_close, tally)
            delta.save(conn, ds.pk)
        return {"annotations_processed": processed, "annotations_ignored": ignored,
                "annotations_replaced": len(to_close), "version": version}, plain

    def _current_keys(self, conn: Connection, item_pks: list[int]) -> dict[tuple, int]:
        """(item_pk, annotation_id) -> pk of the current annotations of these items."""
        a = t.annotations
        current = select(a.c.item_pk, a.c.annotation_id, a.c.pk).where(a.c.version_to.is_(None))
        return {(r[0], r[1]): r[2]
                for r in rows_where_in(conn, current, a.c.item_pk, item_pks, tuples=True)}

    def _rows_by_pk(self, conn: Connection, pks: list[int]) -> dict[int, Any]:
        a = t.annotations
        cols = [a.c.pk, a.c.id, a.c.item_pk, a.c.annotation_id, a.c.type, a.c.label, a.c.x,
                a.c.y, a.c.width, a.c.height, a.c.area, a.c.iscrowd, a.c.geometry,
                a.c.metadata, a.c.track_id]
        return {r.pk: r for r in rows_where_in(conn, select(*cols), a.c.pk, pks)}

    def _new_version(self, conn: Connection, dataset_pk: int, message: str | None) -> int:
        last = conn.scalar(select(func.max(t.annotation_versions.c.version)).where(
            t.annotation_versions.c.dataset_pk == dataset_pk)) or 0
        conn.execute(t.annotation_versions.insert().values(
            dataset_pk=dataset_pk, version=last + 1, message=message, created_at=now()))
        return last + 1

    # --- deleting and versions --------------------------------------------------------

    def delete_annotations(self, dataset: str, *, reference_ids: Sequence[str] | None = None,
                           annotation_ids: Sequence[str] | None = None,
                           message: str | None = None) -> dict[str, Any]:
        """Remove current annotations (of the given items, or with the given ``id``s /
        ``annotation_id``s); they stay readable at earlier versions."""
        if not reference_ids and not annotation_ids:
            raise ValidationError("give reference_ids or annotation_ids to delete")
        with self.db.write() as conn:
            ds = self._lock_dataset(conn, self._dataset_row(conn, dataset).id)
            cond = [t.annotations.c.dataset_pk == ds.pk, t.annotations.c.version_to.is_(None)]
            if reference_ids:
                items = self._require_items(conn, ds.pk, list(reference_ids))
                cond.append(t.annotations.c.item_pk.in_([r.pk for r in items.values()]))
            if annotation_ids:
                ids = list(annotation_ids)
                cond.append(or_(t.annotations.c.id.in_(ids),
                                t.annotations.c.annotation_id.in_(ids)))
            a = t.annotations
            rows = conn.execute(select(a.c.pk, a.c.item_pk, a.c.label, a.c.area, a.c.width,
                                       a.c.height).where(*cond)).all()
            if not rows:
                return {"annotations_deleted": 0, "version": None}
            pks = [r.pk for r in rows]
            version = self._new_version(conn, ds.pk, message)
            delta = stats.Delta()
            delta.annotation_removal(conn, rows)
            for part in chunks(pks):
                conn.execute(update(t.annotations).where(t.annotations.c.pk.in_(part))
                             .values(version_to=version))
            delta.save(conn, ds.pk)
        return {"annotations_deleted": len(pks), "version": version}

    def list_versions(self, dataset: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            rows = conn.execute(select(t.annotation_versions).where(
                t.annotation_versions.c.dataset_pk == ds.pk)
                .order_by(t.annotation_versions.c.version)).all()
        return [{"version": r.version, "name": r.name, "message": r.message,
                 "created_at": iso(r.created_at)} for r in rows]

    def tag_version(self, dataset: str, name: str, version: int | None = None) -> dict[str, Any]:
        """Name a version of the labels (default: the newest) so runs can be scored on it."""
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            taken = conn.scalar(select(t.annotation_versions.c.version).where(
                t.annotation_versions.c.dataset_pk == ds.pk,
                t.annotation_versions.c.name == name))
            if taken is not None and taken != version:
                raise ValidationError(f"version name {name!r} already names version {taken}")
            target = version or conn.scalar(select(func.max(t.annotation_versions.c.version))
                                            .where(t.annotation_versions.c.dataset_pk == ds.pk))
            if target is None:
                raise NotFoundError("this dataset has no annotations yet, nothing to name")
            hit = conn.execute(update(t.annotation_versions).where(
                t.annotation_versions.c.dataset_pk == ds.pk,
                t.annotation_versions.c.version == target).values(name=name))
            if hit.rowcount == 0:
                raise NotFoundError(f"no version {target} in this dataset")
        return {"version": target, "name": name}

    def list_annotations(self, dataset: str, *, version: int | str | None = None,
                         reference_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Annotations as JSON, current or at a version, optionally for some items."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            v = self._resolve_version(conn, ds.pk, version)
            q = (select(t.annotations, t.items.c.reference_id.label("ref"))
                 .join(t.items, t.items.c.pk == t.annotations.c.item_pk)
                 .where(t.annotations.c.dataset_pk == ds.pk, at_version(t.annotations, v))
                 .order_by(t.annotations.c.item_pk, t.annotations.c.pk))
            if reference_ids is not None:
                q = q.where(t.items.c.reference_id.in_(list(reference_ids)))
            rows = conn.execute(q).all()
        return [object_payload(r, r.ref) for r in rows]


def _same(row: Any, ann: Any) -> bool:
    new = object_columns(ann)
    return all(getattr(row, k) == v for k, v in new.items())
