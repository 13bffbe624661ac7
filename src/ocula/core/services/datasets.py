"""Datasets: create, list, inspect, delete."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import delete, func, select

from ocula.core.ids import new_id
from ocula.core.services import scenario_rows, stats
from ocula.core.services.base import ServiceBase, iso, now
from ocula.core.store import schema as t
from ocula.core.types import ANNOTATION_TYPES
from ocula.core.validation import MAX_CATALOG_METADATA_BYTES, check_metadata, require_name
from ocula.errors import ValidationError


def _dataset_payload(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "allowed_types": row.allowed_types,
        "metadata": row.metadata or {},
        "is_scene": bool(row.is_scene),
        "created_at": iso(row.created_at),
    }


class DatasetService(ServiceBase):
    def create_dataset(self, name: str, *, allowed_types: list[str] | None = None,
                       metadata: dict[str, Any] | None = None,
                       is_scene: bool = False) -> dict[str, Any]:
        """Create an empty dataset. Names are labels, as in Nucleus: two datasets may
        share one (the id is the identity; a look-up by a shared name is refused).
        A scene dataset (``is_scene``) takes its items as frames of scenes."""
        name = require_name(name, "dataset name")
        if allowed_types is not None:
            unknown = sorted(set(allowed_types) - set(ANNOTATION_TYPES))
            if unknown:
                raise ValidationError(f"unknown annotation type(s) {unknown}; expected a "
                                      f"subset of {list(ANNOTATION_TYPES)}")
        if (err := check_metadata(metadata, f"dataset {name!r}", None,
                                  max_bytes=MAX_CATALOG_METADATA_BYTES)) is not None:
            raise err
        row = {"id": new_id("dataset"), "name": name.strip(), "allowed_types": allowed_types,
               "metadata": metadata, "created_at": now(), "is_scene": bool(is_scene)}
        with self.db.write() as conn:
            pk = conn.execute(t.datasets.insert().values(**row)).inserted_primary_key[0]
            stats.mark_ready(conn, pk)
        return _dataset_payload(_Row(row))

    def list_datasets(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(t.datasets).order_by(t.datasets.c.pk)).all()
        return [_dataset_payload(r) for r in rows]

    def get_dataset(self, dataset: str) -> dict[str, Any]:
        """A dataset by id or by name."""
        with self.db.read() as conn:
            return _dataset_payload(self._dataset_row(conn, dataset))

    def dataset_info(self, dataset: str) -> dict[str, Any]:
        """Counts, slices and model runs of a dataset (Nucleus ``info()`` fields included)."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            totals = stats.totals_of(conn, ds.pk, (stats.GT, stats.PER_ITEM))
            version = conn.scalar(select(func.max(t.annotation_versions.c.version)).where(
                t.annotation_versions.c.dataset_pk == ds.pk)) or 0
            slices = conn.execute(select(t.slices.c.id, t.slices.c.name).where(
                t.slices.c.dataset_pk == ds.pk).order_by(t.slices.c.pk)).all()
            runs = conn.execute(
                select(t.model_runs.c.id, t.model_runs.c.name, t.models.c.id.label("model_id"),
                       t.model_runs.c.committed_at)
                .join(t.models, t.models.c.pk == t.model_runs.c.model_pk)
                .where(t.model_runs.c.dataset_pk == ds.pk).order_by(t.model_runs.c.pk)).all()
            if totals is not None:
                # From the running totals: counting rows is seconds at millions of boxes.
                n_items = sum(totals[stats.PER_ITEM].values())
                by_label: Counter = Counter()
                for (label, _, _), n in totals[stats.GT].items():
                    by_label[label] += n
                labels = sorted(by_label.items(), key=lambda kv: (kv[0] is not None, kv[0]))
                n_ann = sum(by_label.values())
            else:
                n_items = conn.scalar(select(func.count()).where(
                    t.items.c.dataset_pk == ds.pk))
                current = [t.annotations.c.dataset_pk == ds.pk,
                           t.annotations.c.version_to.is_(None)]
                n_ann = conn.scalar(select(func.count()).where(*current))
                labels = conn.execute(
                    select(t.annotations.c.label, func.count()).where(*current)
                    .group_by(t.annotations.c.label).order_by(t.annotations.c.label)).all()
        return {
            "dataset_id": ds.id,
            "name": ds.name,
            "is_scene": bool(ds.is_scene),
            "length": n_items,
            "annotation_count": n_ann,
            "annotation_version": version,
            "labels": {label: n for label, n in labels},
            "allowed_types": ds.allowed_types,
            "slice_ids": [s.id for s in slices],
            "slices": [{"id": s.id, "name": s.name} for s in slices],
            "model_run_ids": [r.id for r in runs],
            "model_runs": [{"id": r.id, "name": r.name, "model_id": r.model_id,
                            "committed": r.committed_at is not None} for r in runs],
            "metadata": ds.metadata or {},
            "created_at": iso(ds.created_at),
        }

    def delete_dataset(self, dataset: str) -> dict[str, Any]:
        """Delete a dataset with its items, labels, slices and runs (media files stay:
        they are content-addressed and may be shared)."""
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            # Explicit deletes, child tables first, so PostgreSQL and SQLite agree even
            # where a foreign key has no cascade.
            run_pks = select(t.model_runs.c.pk).where(t.model_runs.c.dataset_pk == ds.pk)
            item_pks = select(t.items.c.pk).where(t.items.c.dataset_pk == ds.pk)
            slice_pks = select(t.slices.c.pk).where(t.slices.c.dataset_pk == ds.pk)
            scenario_rows.drop_for_dataset(conn, ds.pk)
            for table in (t.match_predictions, t.match_annotations, t.match_items):
                conn.execute(delete(table).where(table.c.run_pk.in_(run_pks)))
            conn.execute(delete(t.slice_objects).where(t.slice_objects.c.slice_pk.in_(slice_pks)))
            conn.execute(delete(t.slice_items).where(t.slice_items.c.slice_pk.in_(slice_pks)))
            conn.execute(delete(t.predictions).where(t.predictions.c.run_pk.in_(run_pks)))
            conn.execute(delete(t.model_runs).where(t.model_runs.c.dataset_pk == ds.pk))
            conn.execute(delete(t.slices).where(t.slices.c.dataset_pk == ds.pk))
            conn.execute(delete(t.annotation_edits).where(
                t.annotation_edits.c.dataset_pk == ds.pk))
            conn.execute(delete(t.annotations).where(t.annotations.c.dataset_pk == ds.pk))
            conn.execute(delete(t.scene_frames).where(t.scene_frames.c.item_pk.in_(item_pks)))
            conn.execute(delete(t.item_phashes).where(t.item_phashes.c.item_pk.in_(item_pks)))
            conn.execute(delete(t.scenes).where(t.scenes.c.dataset_pk == ds.pk))
            conn.execute(delete(t.tracks).where(t.tracks.c.dataset_pk == ds.pk))
            conn.execute(delete(t.taxonomies).where(t.taxonomies.c.dataset_pk == ds.pk))
            conn.execute(delete(t.dataset_tags).where(t.dataset_tags.c.dataset_pk == ds.pk))
            conn.execute(delete(t.annotation_versions).where(
                t.annotation_versions.c.dataset_pk == ds.pk))
            conn.execute(delete(t.items).where(t.items.c.pk.in_(item_pks)))
            stats.drop_dataset(conn, ds.pk)
            conn.execute(delete(t.datasets).where(t.datasets.c.pk == ds.pk))
        return {"deleted": ds.id}


class _Row:
    """Attribute access over a dict, so fresh inserts render like fetched rows."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)
