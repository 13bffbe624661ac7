"""Dataset items: append (validate, probe, store), read back, update metadata, delete."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, delete, select, update

from ocula.core.ids import new_ids
from ocula.core.services import stats
from ocula.core.services.base import ServiceBase, bulk_operation, chunks, now
from ocula.core.services.payloads import item_payload, object_payload
from ocula.core.store import media as m
from ocula.core.store import schema as t
from ocula.core.store.bulk import analyze_grown, db_timestamp, insert_rows
from ocula.core.types import DatasetItem
from ocula.core.validation import (
    check_metadata,
    dump_metadata,
    duplicate_errors,
    text_error,
)
from ocula.errors import (
    BatchError,
    ConflictError,
    ImageError,
    NotFoundError,
    OculaError,
    ValidationError,
)

FETCH_THREADS = 8
_ITEM_COLUMNS = ("id", "dataset_pk", "reference_id", "image_location", "media_key", "width",
                 "height", "metadata", "created_at", "updated_at")


@dataclass
class _Probed:
    item: DatasetItem
    metadata_json: str | None
    location: str
    media_key: str | None
    width: int
    height: int


class ItemService(ServiceBase):
    @bulk_operation
    def append(
        self,
        dataset: str,
        items: Sequence[DatasetItem],
        *,
        update: bool = False,
        copy_media: bool = False,
        uploads: Mapping[str, bytes] | None = None,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> dict[str, Any]:
        """Add items to a dataset.

        An item whose reference id already exists is ignored, or replaced when
        ``update`` is true, so a retried append is idempotent. ``uploads`` maps a
        reference id to the image bytes sent with the request (server uploads).
        With ``on_error="raise"`` (default) any bad item rejects the whole batch with a
        :class:`~ocula.errors.BatchError` naming each; with ``"skip"`` the good items
        are written and the errors are returned under ``errors``.
        """
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
        if ds.is_scene:
            raise ConflictError(f"dataset {ds.name!r} is a scene dataset: its items are "
                                  "added as frames of scenes (append_scenes)")
        errors = check_items(items)
        bad_refs = {e.reference_id for e in errors}
        candidates = [it for it in items if isinstance(it, DatasetItem)
                      and isinstance(it.reference_id, str) and it.reference_id
                      and it.reference_id not in bad_refs]
        probed, probe_errors = self._probe_all(candidates, uploads or {}, copy_media)
        errors += probe_errors
        if errors and on_error == "raise":
            raise BatchError(errors)
        with self.db.write() as conn:
            counts = self._write_items(conn, ds.pk, probed, update)
        counts["errors"] = [e.to_dict() for e in errors]
        counts["dataset_id"] = ds.id
        return counts

    def _probe_all(self, items: Sequence[DatasetItem], uploads: Mapping[str, bytes],
                   copy_media: bool) -> tuple[list[_Probed], list[OculaError]]:
        def probe(item: DatasetItem) -> _Probed | OculaError:
            try:
                return self._probe_one(item, uploads, copy_media)
            except OculaError as exc:
                exc.reference_id = exc.reference_id or item.reference_id
                return exc

        # Local headers take ~40 µs under the GIL: threads would only add overhead.
        # Downloads wait on the network, so those overlap in a pool.
        # Results keep the caller's order: it becomes the items' insertion order.
        results: list[_Probed | OculaError | None] = [None] * len(items)
        remote = [i for i, it in enumerate(items)
                  if it.reference_id not in uploads and m.is_url(str(it.image_location))]
        remote_set = set(remote)
        for i, it in enumerate(items):
            if i not in remote_set:
                results[i] = probe(it)
        if remote:
            with ThreadPoolExecutor(FETCH_THREADS) as pool:
                for i, r in zip(remote, pool.map(probe, [items[i] for i in remote]),
                                strict=True):
                    results[i] = r
        ok = [r for r in results if isinstance(r, _Probed)]
        return ok, [r for r in results if isinstance(r, OculaError)]

    def _probe_one(self, item: DatasetItem, uploads: Mapping[str, bytes],
                   copy_media: bool) -> _Probed:
        location = str(item.image_location)
        ref = item.reference_id
        metadata_json = dump_metadata(item.metadata, f"item {ref!r}", ref)
        data = uploads.get(ref) if ref is not None else None
        if data is None and m.is_url(location):
            data = self._fetch(location)
        if data is not None:
            info = m.probe_bytes(data, location)
            key = self.media.put_bytes(data, info.format)
            return _Probed(item, metadata_json, location, key, info.width, info.height)
        # os.path, not pathlib: at 100k items pathlib's parsing is a visible cost.
        path = os.path.abspath(os.path.expanduser(location))
        name = self._local_name(path, ref)
        key = None
        # One open file for probing and copying: the bytes copied are the ones probed.
        with m.open_image(path, self.real_roots, name) as fp:
            info = m.probe_open(fp, name)
            if copy_media:
                fp.seek(0)
                key = self.media.put_bytes(fp.read(), info.format)
        return _Probed(item, metadata_json, path, key, info.width, info.height)

    def _write_items(self, conn: Connection, dataset_pk: int, probed: list[_Probed],
                     update_existing: bool) -> dict[str, Any]:
        existing = self._item_map(conn, dataset_pk, [p.item.reference_id for p in probed])
        fresh = [p for p in probed if p.item.reference_id not in existing]
        stale = [p for p in probed if p.item.reference_id in existing]
        stamp = now()
        delta = stats.Delta()
        if fresh:
            ids = new_ids("item", len(fresh))
            ts = db_timestamp(conn, t.items, "created_at", now())
            insert_rows(conn, t.items, _ITEM_COLUMNS, [
                (ids[i], dataset_pk, p.item.reference_id, p.location, p.media_key, p.width,
                 p.height, p.metadata_json, ts, ts)
                for i, p in enumerate(fresh)])
            analyze_grown(conn, t.items, len(fresh))
            delta.add_items(p.item.metadata for p in fresh)
        if stale and update_existing:
            old = self._metadata_of(conn, [existing[p.item.reference_id].pk for p in stale])
            for p in stale:
                delta.change_metadata(old[existing[p.item.reference_id].pk], p.item.metadata)
                conn.execute(update(t.items).where(
                    t.items.c.pk == existing[p.item.reference_id].pk).values(
                    image_location=p.location, media_key=p.media_key, width=p.width,
                    height=p.height, metadata=p.item.metadata or None, updated_at=stamp))
        delta.save(conn, dataset_pk)
        return {
            "new_items": len(fresh),
            "updated_items": len(stale) if update_existing else 0,
            "ignored_items": 0 if update_existing else len(stale),
        }

    # --- reading --------------------------------------------------------------------

    def list_items(self, dataset: str, *, limit: int | None = None,
                   after: str | None = None) -> dict[str, Any]:
        """Items in insertion order; ``after`` is the cursor a previous page returned."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            q = select(t.items).where(t.items.c.dataset_pk == ds.pk).order_by(t.items.c.pk)
            if after:
                q = q.where(t.items.c.pk > _decode_cursor(after))
            if limit:
                q = q.limit(limit)
            rows = conn.execute(q).all()
        cursor = str(rows[-1].pk) if rows and limit and len(rows) == limit else None
        return {"items": [item_payload(r) for r in rows], "next_cursor": cursor}

    def get_item(self, dataset: str, *, reference_id: str | None = None,
                 item_id: str | None = None, index: int | None = None,
                 with_predictions: bool = False) -> dict[str, Any]:
        """One item and its current annotations grouped by type (Nucleus ``refloc``)."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            row = self._find_item(conn, ds.pk, reference_id, item_id, index)
            anns = conn.execute(select(t.annotations).where(
                t.annotations.c.item_pk == row.pk, t.annotations.c.version_to.is_(None))
                .order_by(t.annotations.c.pk)).all()
            grouped: dict[str, list[dict[str, Any]]] = {}
            for a in anns:
                # The version token an edit of it must name (services/edits.py).
                grouped.setdefault(a.type, []).append(
                    {**object_payload(a, row.reference_id), "version": a.version_from})
            result: dict[str, Any] = {"item": item_payload(row), "annotations": grouped}
            if with_predictions:
                preds = conn.execute(
                    select(t.predictions, t.model_runs.c.id.label("run_id"))
                    .join(t.model_runs, t.model_runs.c.pk == t.predictions.c.run_pk)
                    .where(t.predictions.c.item_pk == row.pk)
                    .order_by(t.predictions.c.pk)).all()
                by_run: dict[str, list[dict[str, Any]]] = {}
                for p in preds:
                    by_run.setdefault(p.run_id, []).append(object_payload(p, row.reference_id))
                result["predictions"] = by_run
        return result

    def _find_item(self, conn: Connection, dataset_pk: int, reference_id: str | None,
                   item_id: str | None, index: int | None) -> Any:
        q = select(t.items).where(t.items.c.dataset_pk == dataset_pk)
        if reference_id is not None:
            q, what = q.where(t.items.c.reference_id == reference_id), reference_id
        elif item_id is not None:
            q, what = q.where(t.items.c.id == item_id), item_id
        elif index is not None:
            if index < 0:
                raise ValidationError(f"item index must be >= 0, got {index}")
            q, what = q.order_by(t.items.c.pk).offset(index).limit(1), f"index {index}"
        else:
            raise ValidationError("give a reference_id, an item id or an index")
        row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(f"no item {what!r} in this dataset", reference_id=reference_id)
        return row

    def local_image_paths(self, item_ids: Sequence[str]) -> dict[str, str | None]:
        """Where each item's pixels are on this machine, by item id: the stored copy in
        the media folder, or the file it was appended from (``None`` for an image known
        only by URL). For readers in the same process as the catalog (the embedded
        client's PyTorch datasets open files by path and hold no database handle);
        unknown ids are left out. Paths are not checked here: the reader opens them."""
        out: dict[str, str | None] = {}
        with self.db.read() as conn:
            for part in chunks(list(item_ids), 5000):
                for row in conn.execute(select(
                        t.items.c.id, t.items.c.image_location, t.items.c.media_key)
                        .where(t.items.c.id.in_(part))):
                    if row.media_key:
                        out[row.id] = str(self.media.path_for_key(row.media_key))
                    elif m.is_url(row.image_location):
                        out[row.id] = None
                    else:
                        out[row.id] = row.image_location
        return out

    def open_item_image(self, item_id: str) -> tuple[io.BufferedReader, str, str]:
        """The file of an item's pixels, open for reading, its MIME type read from its
        header and its content tag (``media.content_tag``: changes with its bytes), for
        serving and thumbnails. Checked at every call as at append: a regular file,
        under a media root (or the media folder for stored copies), an image; else
        :class:`NotFoundError` naming the item, never its path."""
        with self.db.read() as conn:
            row = conn.execute(select(t.items.c.image_location, t.items.c.media_key).where(
                t.items.c.id == item_id)).first()
        if row is None:
            raise NotFoundError(f"no item {item_id!r}")
        name = f"item {item_id!r}"
        missing = f"the image of item {item_id!r} is not available on this server"
        if row.media_key:
            path, roots = str(self.media.path_for_key(row.media_key)), self.media.roots
        elif m.is_url(row.image_location):
            raise NotFoundError(missing)
        else:
            path, roots = row.image_location, self.real_roots
        try:
            fp = m.open_image(path, roots, name)
            try:
                return fp, m.image_mime(fp, name), m.content_tag(fp, row.media_key)
            except BaseException:
                fp.close()
                raise
        except ImageError as exc:
            raise NotFoundError(f"{missing}: {exc.message}") from exc

    def thumbnail(self, item_id: str, size: int = 256) -> Path:
        """A cached JPEG of the item's image, ``size`` px on its long side at most; its
        file name's stem is the image's content tag."""
        fp, _, tag = self.open_item_image(item_id)
        with fp:
            return self.media.thumbnail(fp, tag, f"item {item_id!r}", size)

    # --- changing -------------------------------------------------------------------

    def update_metadata(self, dataset: str, updates: Sequence[Mapping[str, Any]],
                        *, replace: bool = False) -> dict[str, Any]:
        """Merge (or with ``replace``, overwrite) item metadata by reference id."""
        errors: list[OculaError] = []
        for i, u in enumerate(updates):
            ref = u.get("reference_id") if isinstance(u, Mapping) else None
            if not isinstance(ref, str) or not ref:
                errors.append(ValidationError(f"metadata update #{i} has no reference_id"))
            elif not isinstance(u.get("metadata"), dict):
                errors.append(ValidationError(f"metadata update for {ref!r} needs a metadata "
                                              "object", reference_id=ref))
            elif (err := check_metadata(u["metadata"], "metadata update", ref)) is not None:
                errors.append(err)
        if errors:
            raise BatchError(errors)
        errors += duplicate_errors([u["reference_id"] for u in updates], "reference_id")
        if errors:
            raise BatchError(errors)
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            found = self._require_items(conn, ds.pk, [u["reference_id"] for u in updates])
            current = self._metadata_of(conn, [found[u["reference_id"]].pk for u in updates])
            delta = stats.Delta()
            for u in updates:
                pk = found[u["reference_id"]].pk
                merged = u["metadata"] if replace else {**(current[pk] or {}), **u["metadata"]}
                # Each update may be within the limits and their merge not: the write
                # is one transaction, so nothing of the batch stays.
                if (err := check_metadata(merged, "merged metadata", u["reference_id"])):
                    raise BatchError([err])
                conn.execute(update(t.items).where(t.items.c.pk == pk).values(
                    metadata=merged, updated_at=now()))
                delta.change_metadata(current[pk], merged)
            delta.save(conn, ds.pk)
        return {"updated_items": len(updates)}

    def _metadata_of(self, conn: Connection, pks: Sequence[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for part in chunks(list(pks)):
            found.update(conn.execute(select(t.items.c.pk, t.items.c.metadata)
                                      .where(t.items.c.pk.in_(part))).all())
        return found

    def delete_item(self, dataset: str, reference_id: str) -> dict[str, Any]:
        """Delete an item with its annotations (all versions), predictions and matches."""
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            row = self._find_item(conn, ds.pk, reference_id, None, None)
            self._delete_item_rows(conn, ds.pk, row)
        return {"deleted": row.id, "reference_id": reference_id}

    def _delete_item_rows(self, conn: Connection, dataset_pk: int, row: Any) -> None:
        """Delete one item's rows and everything on them (inside the caller's write)."""
        stats.item_removal(conn, row.pk, row.metadata).save(conn, dataset_pk)
        for table in (t.match_predictions, t.match_annotations, t.match_items,
                      t.slice_items, t.scene_frames, t.item_phashes, t.predictions,
                      t.annotation_edits, t.annotations):
            conn.execute(delete(table).where(table.c.item_pk == row.pk))
        conn.execute(delete(t.items).where(t.items.c.pk == row.pk))



def check_items(items: Sequence[Any]) -> list[OculaError]:
    """The errors of a batch of items before any is read: type, reference id, metadata."""
    errors: list[OculaError] = []
    for i, it in enumerate(items):
        if not isinstance(it, DatasetItem):
            errors.append(ValidationError(f"item #{i} is a {type(it).__name__}, expected "
                                          "DatasetItem"))
            continue
        ref = it.reference_id
        if ref is not None and not isinstance(ref, str):
            errors.append(ValidationError(f"item #{i}: reference_id must be text, got "
                                          f"{type(ref).__name__} {ref!r:.40}"))
            continue
        if not ref:
            errors.append(ValidationError(f"item #{i} has no reference_id"))
            continue
        if (err := text_error(f"item #{i}: reference_id", ref, ref)) is not None:
            errors.append(err)
        elif not it.image_location:
            errors.append(ValidationError(f"item {ref!r} has no image_location",
                                          reference_id=ref))
        elif (err := text_error(f"item {ref!r}: image_location", str(it.image_location),
                                ref)) is not None:
            errors.append(err)
    # Only text: a reference id of another type is reported above, and one that is an
    # object or a list cannot be hashed to find duplicates.
    refs = [it.reference_id for it in items
            if isinstance(it, DatasetItem) and isinstance(it.reference_id, str) and it.reference_id]
    return errors + duplicate_errors(refs, "reference_id")


def _decode_cursor(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError as exc:
        raise ValidationError(f"malformed page cursor {cursor!r}") from exc
