"""Image deduplication of a dataset, or of part of one, by perceptual hash.

Each item's pHash is computed from its pixels the first time a deduplication needs it
and kept in ``item_phashes`` with the content tag of the image it came from
(``media.content_tag``); a later run reuses it while the tag is the same, and hashes
again an image that has changed (a re-append with other bytes, a file rewritten in
place). The search and the keep rule are the ``"dedup"`` analysis
(:mod:`ocula.core.dedup`). See ``docs/deduplication.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ocula.core.dedup.analysis import DEFAULT_THRESHOLD, check_threshold
from ocula.core.dedup.phash import phash_file, to_signed, to_unsigned
from ocula.core.evaluation.analyses import get_analysis
from ocula.core.services.base import chunks
from ocula.core.services.query import QueryService
from ocula.core.store import media as m
from ocula.core.store import schema as t
from ocula.errors import (
    BatchError,
    ImageError,
    NotFoundError,
    OculaError,
    ParameterError,
    ValidationError,
)

__all__ = ["DedupService"]

# Hashing is decoding: Pillow releases the GIL while it decodes and resizes.
HASH_THREADS = max(1, min(8, os.cpu_count() or 1))


@dataclass
class _Item:
    pk: int
    id: str
    reference_id: str
    location: str
    media_key: str | None
    cached_tag: str | None
    cached_hash: int | None


class DedupService(QueryService):
    def deduplicate(self, dataset: str, *, threshold: int = DEFAULT_THRESHOLD,
                    reference_ids: Sequence[str] | None = None,
                    item_ids: Sequence[str] | None = None,
                    slice: str | None = None,  # noqa: A002
                    query: str | None = None, max_groups: int | None = None,
                    on_error: Literal["raise", "skip"] = "raise") -> dict[str, Any]:
        """Find near-duplicate images among a dataset's items by pHash.

        Two images are duplicates when their 64-bit perceptual hashes differ in at most
        ``threshold`` bits (0 to 64; 0: the same hash). The items are taken in order of
        (hash, reference id); each is kept unless an item kept before it is a
        duplicate, as Nucleus does, and joins the group of the nearest kept item.

        Scope: the whole dataset, or ``reference_ids``, or ``item_ids`` (not both; every
        id must exist), or the items ``query`` selects (within ``slice``, id or name,
        if given). Returns ``unique_item_ids`` and ``unique_reference_ids`` (kept, in
        that order), ``groups`` (each kept item with its duplicates and their
        distances, and the item ``query`` that selects them, biggest first;
        ``max_groups`` caps the list) and ``stats``
        (``threshold``, ``original_count``, ``deduplicated_count``,
        ``duplicate_count``, ``group_count``, ``hashed``: images hashed by this call).
        An image that cannot be read fails the call (a batch error naming each item)
        or, with ``on_error="skip"``, is left out and listed under ``errors``.
        """
        cfg = get_analysis("dedup", "images").config({"threshold": check_threshold(threshold)})
        if on_error not in ("raise", "skip"):
            raise ValidationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if max_groups is not None and (isinstance(max_groups, bool)
                                       or not isinstance(max_groups, int) or max_groups < 0):
            raise ValidationError(f"max_groups must be a non-negative integer, got "
                                  f"{max_groups!r}")
        if reference_ids is not None and item_ids is not None:
            raise ParameterError("give reference_ids or item_ids, not both")
        for name, ids in (("reference_ids", reference_ids), ("item_ids", item_ids)):
            if ids is not None and (isinstance(ids, str) or not isinstance(ids, Sequence)
                                    or not all(isinstance(i, str) for i in ids)):
                raise ValidationError(f"{name} must be a list of strings")
            if ids is not None and not ids:
                raise ValidationError(f"{name} is empty; leave it out to deduplicate the "
                                      "whole dataset")
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            items = self._dedup_scope(conn, ds, reference_ids, item_ids, slice, query)
        hashes, errors, fresh = self._hashes_of(items)
        if fresh:
            # Kept even when the call fails below: a cache, not data, and a retry after
            # fixing one file need not read every other image again.
            self._keep_hashes(fresh)
        if errors and on_error == "raise":
            raise BatchError(errors)
        good = [it for it in items if it.pk in hashes]
        result = get_analysis("dedup", "images").apply(
            np.array([hashes[it.pk] for it in good], dtype=np.uint64),
            [it.reference_id for it in good], config=cfg)
        body = result.to_dict([it.id for it in good], [it.reference_id for it in good],
                              max_groups=max_groups)
        body["stats"]["hashed"] = len(fresh)
        for group in body["groups"]:
            # The item query that opens the group (the web grid, query_items).
            ids = [group["item_id"], *(d["item_id"] for d in group["duplicates"])]
            group["query"] = "id in [" + ", ".join(f'"{i}"' for i in ids) + "]"
        return {"dataset_id": ds.id, "slice": slice, "query": query or None, **body,
                "errors": [e.to_dict() for e in errors]}

    # --- scope ----------------------------------------------------------------------

    def _dedup_scope(self, conn: Connection, ds: Any, reference_ids: Sequence[str] | None,
                     item_ids: Sequence[str] | None, slice_name: str | None,
                     query: str | None) -> list[_Item]:
        i, h = t.items, t.item_phashes
        cols = select(i.c.pk, i.c.id, i.c.reference_id, i.c.image_location, i.c.media_key,
                      h.c.tag, h.c.phash).select_from(i.outerjoin(h, h.c.item_pk == i.c.pk))
        if (reference_ids is not None or item_ids is not None) and (slice_name or query):
            raise ParameterError("give ids, or a slice and/or query, not both")
        rows: list[Any] = []
        if reference_ids is not None:
            found = self._require_items(conn, ds.pk, reference_ids)
            pks = [k.pk for k in found.values()]
            for part in chunks(pks):
                rows += conn.execute(cols.where(i.c.pk.in_(part))).all()
        elif item_ids is not None:
            wanted = list(dict.fromkeys(item_ids))
            for part in chunks(wanted):
                rows += conn.execute(cols.where(i.c.dataset_pk == ds.pk,
                                                i.c.id.in_(part))).all()
            missing = sorted(set(wanted) - {r.id for r in rows})
            if missing:
                more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
                raise NotFoundError(f"unknown item id(s) in this dataset: "
                                    f"{', '.join(map(repr, missing[:5]))}{more}",
                                    missing=missing[:100])
        elif slice_name is not None or query:
            plan = self._items_plan_in(conn, ds, query or "", slice_name)
            chosen = select(i.c.pk).where(*plan.where)
            if plan.query.limit is not None:
                chosen = chosen.order_by(*[k.ordered() for k in plan.keys]).limit(
                    plan.query.limit)
            rows = conn.execute(cols.where(i.c.pk.in_(chosen.scalar_subquery()))).all()
        else:
            rows = conn.execute(cols.where(i.c.dataset_pk == ds.pk)).all()
        return [_Item(r[0], r[1], r[2], r[3], r[4], r[5],
                      None if r[6] is None else to_unsigned(r[6])) for r in rows]

    # --- hashes ---------------------------------------------------------------------

    def _hashes_of(self, items: list[_Item]) -> tuple[
            dict[int, int], list[OculaError], list[tuple[int, str, int]]]:
        """Each item's hash by pk (kept ones whose image is unchanged, others computed),
        the errors of unreadable images, and the ``(pk, tag, hash)`` computed now."""
        hashes: dict[int, int] = {}
        todo: list[_Item] = []
        for it in items:
            # A stored copy's tag is its content hash: no need to open it to check.
            if it.media_key and it.cached_tag == m.content_tag_of_key(it.media_key) \
                    and it.cached_hash is not None:
                hashes[it.pk] = it.cached_hash
            else:
                todo.append(it)

        def one(it: _Item) -> tuple[_Item, str | None, int | None, OculaError | None]:
            try:
                tag, value = self._hash_item(it)
                return it, tag, value, None
            except OculaError as exc:
                exc.reference_id = exc.reference_id or it.reference_id
                return it, None, None, exc

        errors: list[OculaError] = []
        fresh: list[tuple[int, str, int]] = []
        with ThreadPoolExecutor(HASH_THREADS) as pool:
            for it, tag, value, err in pool.map(one, todo):
                if err is not None or tag is None or value is None:
                    errors.append(err or ImageError("no hash", reference_id=it.reference_id))
                    continue
                hashes[it.pk] = value
                if value != it.cached_hash or tag != it.cached_tag:
                    fresh.append((it.pk, tag, value))
        return hashes, errors, fresh

    def _hash_item(self, it: _Item) -> tuple[str, int]:
        """The image's content tag and its hash (the kept one if the tag matches)."""
        name = f"item {it.reference_id!r}"
        if it.media_key:
            path, roots = str(self.media.path_for_key(it.media_key)), self.media.roots
        elif m.is_url(it.location):
            raise ImageError(f"the image of {name} is known only by URL and was never "
                             "stored; append it again to deduplicate it")
        else:
            path, roots = it.location, self.real_roots
        try:
            with m.open_image(path, roots, name) as fp:
                tag = m.content_tag(fp, it.media_key)
                if tag == it.cached_tag and it.cached_hash is not None:
                    return tag, it.cached_hash
                return tag, phash_file(fp, name)
        except ImageError as exc:
            raise ImageError(f"cannot hash the image of {name}: {exc.message}",
                             reference_id=it.reference_id) from exc

    def _keep_hashes(self, fresh: list[tuple[int, str, int]]) -> None:
        h = t.item_phashes
        upsert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        with self.db.write() as conn:
            for part in chunks(fresh):
                pks = [pk for pk, _, _ in part]
                # An item deleted since it was read gets no row (its key is gone).
                alive = set(conn.execute(select(t.items.c.pk).where(
                    t.items.c.pk.in_(pks))).scalars())
                rows = [{"item_pk": pk, "tag": tag, "phash": to_signed(value)}
                        for pk, tag, value in part if pk in alive]
                if rows:
                    # Another process may have hashed the same item meanwhile: the
                    # newer hash wins, nothing fails.
                    stmt = upsert(h).values(rows)
                    conn.execute(stmt.on_conflict_do_update(
                        index_elements=[h.c.item_pk],
                        set_={"tag": stmt.excluded.tag, "phash": stmt.excluded.phash}))
