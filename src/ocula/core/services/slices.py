"""Slices: named subsets of a dataset's items, kept as snapshots of item ids.

In a scene dataset, a reference id naming a scene stands for the scene's frames: a
slice of scenes holds their frames (Nucleus' clients slice scene datasets by scene)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.exc import IntegrityError

from ocula.core.ids import new_id
from ocula.core.services.base import ServiceBase, chunks, iso, now
from ocula.core.services.payloads import item_payload
from ocula.core.store import schema as t
from ocula.core.validation import duplicate_errors, require_name
from ocula.errors import BatchError, ConflictError


class SliceService(ServiceBase):
    def create_slice(self, dataset: str, name: str, reference_ids: Sequence[str] = (), *,
                     description: str | None = None) -> dict[str, Any]:
        """Create a slice from reference ids (of items, or in a scene dataset of scenes,
        which add their frames). Unknown reference ids reject the call; nothing is
        created."""
        require_name(name, "slice name")
        if errors := duplicate_errors(list(reference_ids), "reference_id"):
            raise BatchError(errors)
        try:
            with self.db.write() as conn:
                ds = self._dataset_row(conn, dataset)
                pks = self._member_pks(conn, ds.pk, bool(ds.is_scene), reference_ids)
                slice_id = new_id("slice")
                result = conn.execute(t.slices.insert().values(
                    id=slice_id, dataset_pk=ds.pk, name=name.strip(), kind="item",
                    description=description, query=None, created_at=now()))
                self._add(conn, result.inserted_primary_key[0], pks)
        except IntegrityError as exc:
            raise ConflictError(f"dataset already has a slice named {name!r}") from exc
        return self.slice_info(slice_id)

    def _member_pks(self, conn: Connection, dataset_pk: int, is_scene: bool,
                    reference_ids: Sequence[str]) -> list[int]:
        """The item pks that reference ids name, in order: a scene's reference id (in a
        scene dataset, where it wins over an item's) names its frames in frame order."""
        refs = list(reference_ids)
        frames: dict[str, list[int]] = {}
        if is_scene:
            sc, fr = t.scenes, t.scene_frames
            for part in chunks(list(dict.fromkeys(refs))):
                for ref, pk in conn.execute(
                        select(sc.c.reference_id, fr.c.item_pk)
                        .join(fr, fr.c.scene_pk == sc.c.pk)
                        .where(sc.c.dataset_pk == dataset_pk, sc.c.reference_id.in_(part))
                        .order_by(sc.c.pk, fr.c.frame_index)):
                    frames.setdefault(ref, []).append(pk)
        item_refs = [r for r in refs if r not in frames]
        found = self._require_items(conn, dataset_pk, item_refs) if item_refs else {}
        pks: list[int] = []
        for r in refs:
            pks.extend(frames[r] if r in frames else [found[r].pk])
        return pks

    def _add(self, conn: Connection, slice_pk: int, item_pks: Sequence[int]) -> int:
        present = set(conn.scalars(select(t.slice_items.c.item_pk).where(
            t.slice_items.c.slice_pk == slice_pk)))
        new = [pk for pk in dict.fromkeys(item_pks) if pk not in present]
        if new:
            conn.execute(t.slice_items.insert(),
                         [{"slice_pk": slice_pk, "item_pk": pk} for pk in new])
        return len(new)

    def slice_info(self, slice_id: str) -> dict[str, Any]:
        """Name, dataset, kind (``item`` or ``object``) and member count of a slice."""
        with self.db.read() as conn:
            s = self._slice_row(conn, slice_id)
            ds_id = conn.scalar(select(t.datasets.c.id).where(t.datasets.c.pk == s.dataset_pk))
            members = t.slice_items if s.kind == "item" else t.slice_objects
            n = conn.scalar(select(func.count()).select_from(members).where(
                members.c.slice_pk == s.pk))
        return {"slice_id": s.id, "id": s.id, "name": s.name, "dataset_id": ds_id,
                "type": "dataset_item" if s.kind == "item" else "object",
                "kind": s.kind, "description": s.description,
                "query": s.query, "length": n, "pending_job_count": 0,
                "created_at": iso(s.created_at)}

    def list_slices(self, dataset: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            ids = conn.scalars(select(t.slices.c.id).where(t.slices.c.dataset_pk == ds.pk)
                               .order_by(t.slices.c.pk)).all()
        return [self.slice_info(i) for i in ids]

    def slice_items(self, slice_id: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            s = self._slice_row(conn, slice_id)
            rows = conn.execute(select(t.items).join(
                t.slice_items, t.slice_items.c.item_pk == t.items.c.pk)
                .where(t.slice_items.c.slice_pk == s.pk).order_by(t.items.c.pk)).all()
        return [item_payload(r) for r in rows]

    def slice_append(self, slice_id: str, reference_ids: Sequence[str]) -> dict[str, Any]:
        with self.db.write() as conn:
            s = self._slice_row(conn, slice_id)
            is_scene = conn.scalar(select(t.datasets.c.is_scene).where(
                t.datasets.c.pk == s.dataset_pk))
            added = self._add(conn, s.pk, self._member_pks(conn, s.dataset_pk, bool(is_scene),
                                                           reference_ids))
        return {"slice_id": slice_id, "added": added}

    def slice_remove(self, slice_id: str, reference_ids: Sequence[str]) -> dict[str, Any]:
        with self.db.write() as conn:
            s = self._slice_row(conn, slice_id)
            found = self._require_items(conn, s.dataset_pk, list(reference_ids))
            removed = 0
            for part in chunks([found[r].pk for r in reference_ids]):
                removed += conn.execute(delete(t.slice_items).where(
                    t.slice_items.c.slice_pk == s.pk, t.slice_items.c.item_pk.in_(part))).rowcount
        return {"slice_id": slice_id, "removed": removed}

    def delete_slice(self, slice_id: str) -> dict[str, Any]:
        with self.db.write() as conn:
            s = self._slice_row(conn, slice_id)
            tests = conn.scalars(select(t.scenario_tests.c.name).where(
                t.scenario_tests.c.slice_pk == s.pk)).all()
            if tests:
                # A test's history means nothing without its slice: delete the tests first.
                raise ConflictError(f"slice {s.name!r} is used by scenario test(s) "
                                    f"{sorted(tests)}: delete them first")
            conn.execute(delete(t.slice_items).where(t.slice_items.c.slice_pk == s.pk))
            conn.execute(delete(t.slice_objects).where(t.slice_objects.c.slice_pk == s.pk))
            conn.execute(delete(t.slices).where(t.slices.c.pk == s.pk))
        return {"deleted": slice_id}

    def find_slice(self, dataset: str, name_or_id: str) -> dict[str, Any]:
        """A slice of ``dataset`` by name or id."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            sid = self._slice_in(conn, ds, name_or_id).id
        return self.slice_info(sid)
