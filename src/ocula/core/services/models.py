"""Models and model runs: a run is one model's predictions over one dataset."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ocula.core.ids import new_id, new_ids
from ocula.core.services import run_results, scenario_rows, stats, upload_sides
from ocula.core.services.base import bulk_operation, chunks, iso, now
from ocula.core.services.checks import box_columns, check_batch
from ocula.core.services.payloads import (
    OBJECT_COLUMNS,
    box_values,
    object_payload,
    object_values,
)
from ocula.core.services.segmentations import SegmentationService, is_segment_part
from ocula.core.store import schema as t
from ocula.core.store.bulk import analyze_grown, insert_columns, insert_stream
from ocula.core.types import SEGMENT_ID_PREFIX, MaskAnnotation
from ocula.core.validation import MAX_CATALOG_METADATA_BYTES, check_metadata, require_name
from ocula.errors import BatchError, ConflictError

_PREDICTION_COLUMNS = ("id", "run_pk", "item_pk", "annotation_id", "confidence", "class_pdf",
                       *OBJECT_COLUMNS)


def _model_payload(row: Any) -> dict[str, Any]:
    return {"id": row.id, "model_id": row.id, "name": row.name,
            "reference_id": row.reference_id, "metadata": row.metadata or {},
            "created_at": iso(row.created_at)}


class ModelService(SegmentationService):
    def add_model(self, name: str, reference_id: str,
                  metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Register a model. Adding the same (name, reference_id) again returns it."""
        for field, value in (("name", name), ("reference_id", reference_id)):
            require_name(value, f"model {field}")
        if (err := check_metadata(metadata, f"model {name!r}", None,
                                  max_bytes=MAX_CATALOG_METADATA_BYTES)) is not None:
            raise err
        with self.db.write() as conn:
            row = conn.execute(select(t.models).where(
                t.models.c.reference_id == reference_id)).first()
            if row is not None:
                if row.name != name:
                    raise ConflictError(f"reference_id {reference_id!r} already names model "
                                        f"{row.name!r}")
                return _model_payload(row)
            values = {"id": new_id("model"), "name": name, "reference_id": reference_id,
                      "metadata": metadata, "created_at": now()}
            conn.execute(t.models.insert().values(**values))
            row = conn.execute(select(t.models).where(t.models.c.id == values["id"])).one()
        return _model_payload(row)

    def list_models(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(t.models).order_by(t.models.c.pk)).all()
        return [_model_payload(r) for r in rows]

    def get_model(self, model: str) -> dict[str, Any]:
        with self.db.read() as conn:
            return _model_payload(self._model_row(conn, model))

    def delete_model(self, model: str) -> dict[str, Any]:
        with self.db.write() as conn:
            row = self._model_row(conn, model)
            for run_pk in conn.scalars(select(t.model_runs.c.pk).where(
                    t.model_runs.c.model_pk == row.pk)).all():
                _delete_run_rows(conn, run_pk)
            conn.execute(delete(t.model_tags).where(t.model_tags.c.model_pk == row.pk))
            conn.execute(delete(t.models).where(t.models.c.pk == row.pk))
        return {"deleted": row.id}

    # --- runs -----------------------------------------------------------------------

    @bulk_operation
    def create_run(self, model: str, dataset: str, name: str,
                   predictions: Sequence[Any] = (), *,
                   metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a run of ``model`` on ``dataset`` holding ``predictions`` (validated as
        one batch: a bad prediction rejects the run and nothing is stored)."""
        require_name(name, "model run name")
        if (err := check_metadata(metadata, f"model run {name!r}", None,
                                  max_bytes=MAX_CATALOG_METADATA_BYTES)) is not None:
            raise err
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            mdl = self._model_row(conn, model)
        prepared = self._prepare_predictions(ds.pk, predictions)
        run_id = new_id("run")
        try:
            with self.db.write() as conn:
                result = conn.execute(t.model_runs.insert().values(
                    id=run_id, model_pk=mdl.pk, dataset_pk=ds.pk, name=name.strip(),
                    metadata=metadata, created_at=now()))
                run_pk = result.inserted_primary_key[0]
                keep = self._upload_kept(conn, run_pk, self._insert_predictions(
                    conn, ds.pk, run_pk, prepared))
        except IntegrityError as exc:
            raise ConflictError(f"dataset {ds.name!r} already has a model run named "
                                f"{name!r}") from exc
        if keep is not None:
            keep()
        return self.run_info(run_id)

    @bulk_operation
    def predict(self, run_id: str, predictions: Sequence[Any], *,
                update: bool = False) -> dict[str, Any]:
        """Add predictions to a run; with ``update``, replace those with the same
        ``annotation_id``. A run changed after its commit must be committed again."""
        with self.db.read() as conn:
            run = self._run_row(conn, run_id)
        prepared = self._prepare_predictions(run.dataset_pk, predictions)
        # Masks split from a segmentation: one segmentation per item, counted as one
        # (services/segmentations.py).
        kinds = set(map(type, map(itemgetter(1), prepared)))
        segs = [p for p in prepared if is_segment_part(p[1])] \
            if any(issubclass(k, MaskAnnotation) for k in kinds) else []
        if segs:
            prepared = [p for p in prepared if not is_segment_part(p[1])]
        with self.db.write() as conn:
            before = upload_sides.predictions_state(conn, run.pk)
            ids = [p[1].annotation_id for p in prepared if p[1].annotation_id]
            existing = set()
            if ids:
                existing = set(conn.execute(
                    select(t.predictions.c.item_pk, t.predictions.c.annotation_id).where(
                        t.predictions.c.run_pk == run.pk,
                        t.predictions.c.annotation_id.in_(ids))).all())
            ignored = [p for p in prepared if (p[0], p[1].annotation_id) in existing]
            replaced = stats.Delta()
            if update:
                dropped: list[int] = []
                for item_pk, pred, _ in ignored:
                    gone = conn.execute(delete(t.predictions).where(
                        t.predictions.c.run_pk == run.pk, t.predictions.c.item_pk == item_pk,
                        t.predictions.c.annotation_id == pred.annotation_id)
                        .returning(t.predictions.c.pk, t.predictions.c.label)).all()
                    dropped += [pk for pk, _ in gone]
                    replaced.add_predictions(run.pk, [label for _, label in gone], -1)
                _drop_match_rows(conn, dropped, replaced)
                fresh = prepared
            else:
                fresh = [p for p in prepared if (p[0], p[1].annotation_id) not in existing]
            seg_done, seg_ignored = self._segmentations_to_write(conn, run.pk, segs, update,
                                                                 replaced)
            replaced.save(conn, run.dataset_pk)
            fresh = fresh + seg_done
            written = self._insert_predictions(conn, run.dataset_pk, run.pk, fresh)
            keep = None
            if fresh:
                # Kept results are of the predictions as committed, and columns kept in
                # memory are of the predictions as last written.
                run_results.forget(conn, run.pk)
                conn.execute(t.model_runs.update().where(t.model_runs.c.pk == run.pk)
                             .values(predictions_at=now()))
                keep = self._upload_kept(conn, run.pk, written, before)
        if keep is not None:
            keep()
        return {"model_run_id": run_id,
                "predictions_processed": len(fresh) - len(seg_done)
                + len({p[0] for p in seg_done}),
                "predictions_ignored": (0 if update else len(ignored)) + seg_ignored}

    def _segmentations_to_write(self, conn: Any, run_pk: int,
                                segs: list[tuple[int, Any, str | None]], update: bool,
                                replaced: stats.Delta
                                ) -> tuple[list[tuple[int, Any, str | None]], int]:
        """The segmentation masks to insert, and how many segmentations are ignored: an
        item's segmentation in the run is kept (the new one ignored), or with ``update``
        removed whole for the new one."""
        if not segs:
            return [], 0
        p = t.predictions
        items = {item_pk for item_pk, _, _ in segs}
        held = set(conn.scalars(select(p.c.item_pk).where(
            p.c.run_pk == run_pk, p.c.item_pk.in_(items),
            p.c.annotation_id.startswith(SEGMENT_ID_PREFIX, autoescape=True)).distinct()))
        if not update:
            return [s for s in segs if s[0] not in held], len(held)
        if held:
            gone = conn.execute(delete(p).where(
                p.c.run_pk == run_pk, p.c.item_pk.in_(held),
                p.c.annotation_id.startswith(SEGMENT_ID_PREFIX, autoescape=True))
                .returning(p.c.pk, p.c.label)).all()
            _drop_match_rows(conn, [pk for pk, _ in gone], replaced)
            replaced.add_predictions(run_pk, [label for _, label in gone], -1)
        return segs, 0

    def _prepare_predictions(self, dataset_pk: int,
                             predictions: Sequence[Any]) -> list[tuple[int, Any, str | None]]:
        """Each prediction with its item's pk and its metadata as JSON, after checking
        the whole batch (BatchError lists every problem)."""
        with self.db.read() as conn:
            refs = [p.reference_id for p in predictions if getattr(p, "reference_id", None)]
            items = self._item_map(conn, dataset_pk, refs)
            allowed = conn.scalar(select(t.datasets.c.allowed_types).where(
                t.datasets.c.pk == dataset_pk))
            taxonomy = self._taxonomy_errors(conn, dataset_pk, predictions)
        predictions, split_errors = self._split_segmentations(predictions, items)
        errors, metadata = check_batch(predictions, items, allowed, prediction=True)
        errors += taxonomy + split_errors
        if errors:
            raise BatchError(errors)
        pks = map(attrgetter("pk"), map(items.__getitem__, map(attrgetter("reference_id"),
                                                                 predictions)))
        return list(zip(pks, predictions, metadata, strict=True))

    def _upload_kept(self, conn: Any, run_pk: int, written: dict[str, list[Any]] | None,
                     before: tuple[Any, ...] | None = None) -> Callable[[], None] | None:
        """What keeps an upload of plain boxes as evaluation columns once its
        transaction commits (:mod:`~ocula.core.services.upload_sides`), if anything."""
        if written is None:
            return None
        return upload_sides.predictions_keeper(conn, run_pk, written, before)

    def _insert_predictions(self, conn: Any, dataset_pk: int, run_pk: int,
                            prepared: Sequence[tuple[int, Any, str | None]]
                            ) -> dict[str, list[Any]] | None:
        """Write ``prepared``; for plain boxes, returns the columns written (by name),
        else None."""
        preds = [pred for _, pred, _ in prepared]
        delta = stats.Delta()
        delta.add_predictions(run_pk, map(attrgetter("label"), preds))
        delta.save(conn, dataset_pk)
        ids = new_ids("prediction", len(prepared))
        fields = box_columns(preds, prediction=True)
        if fields is None:
            rows = iter(ids)
            written = insert_stream(conn, t.predictions, _PREDICTION_COLUMNS, (
                (next(rows), run_pk, item_pk, pred.annotation_id, pred.confidence,
                 _class_pdf(pred.class_pdf), *object_values(pred, meta))
                for item_pk, pred, meta in prepared))
            analyze_grown(conn, t.predictions, written)
            return None
        # Plain boxes (a detector's output): column by column, as annotations.
        class_pdfs = fields["class_pdf"]
        head = [ids, [pk for pk, _, _ in prepared], fields["annotation_id"],
                fields["confidence"], [None] * len(preds) if not any(class_pdfs)
                else list(map(_class_pdf, class_pdfs))]
        columns, constants, values = box_values(
            ("id", "item_pk", "annotation_id", "confidence", "class_pdf"), head, fields,
            [meta for _, _, meta in prepared])
        written = insert_columns(conn, t.predictions, columns, values,
                                 constants | {"run_pk": run_pk})
        analyze_grown(conn, t.predictions, written)
        return dict(zip(columns, values, strict=True))

    def run_info(self, run_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            run = self._run_row(conn, run_id)
            mdl = conn.execute(select(t.models).where(t.models.c.pk == run.model_pk)).one()
            ds_id = conn.scalar(select(t.datasets.c.id).where(
                t.datasets.c.pk == run.dataset_pk))
            totals = stats.totals_of(conn, run.dataset_pk, (stats.PRED,), run.pk)
            n = sum(totals[stats.PRED].values()) if totals is not None else conn.scalar(
                select(func.count()).where(t.predictions.c.run_pk == run.pk))
        return {"model_run_id": run.id, "id": run.id, "name": run.name,
                "model_id": mdl.id, "model_name": mdl.name, "dataset_id": ds_id,
                "prediction_count": n, "metadata": run.metadata or {},
                "committed": run.committed_at is not None,
                "commit_config": run.commit_config, "committed_version": run.committed_version,
                "created_at": iso(run.created_at), "committed_at": iso(run.committed_at)}

    def list_runs(self, dataset: str | None = None,
                  model: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            q = select(t.model_runs.c.id).order_by(t.model_runs.c.pk)
            if dataset is not None:
                q = q.where(t.model_runs.c.dataset_pk == self._dataset_row(conn, dataset).pk)
            if model is not None:
                q = q.where(t.model_runs.c.model_pk == self._model_row(conn, model).pk)
            ids = conn.scalars(q).all()
        return [self.run_info(i) for i in ids]

    def find_run(self, dataset: str, name_or_id: str) -> dict[str, Any]:
        """A run of ``dataset`` by id or by name."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            rid = self._run_in(conn, ds, name_or_id).id
        return self.run_info(rid)

    def list_predictions(self, run_id: str,
                         reference_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            run = self._run_row(conn, run_id)
            q = (select(t.predictions, t.items.c.reference_id.label("ref"))
                 .join(t.items, t.items.c.pk == t.predictions.c.item_pk)
                 .where(t.predictions.c.run_pk == run.pk)
                 .order_by(t.predictions.c.item_pk, t.predictions.c.pk))
            if reference_ids is not None:
                q = q.where(t.items.c.reference_id.in_(list(reference_ids)))
            rows = conn.execute(q).all()
        return [object_payload(r, r.ref) for r in rows]

    def delete_run(self, run_id: str) -> dict[str, Any]:
        with self.db.write() as conn:
            run = self._run_row(conn, run_id)
            _delete_run_rows(conn, run.pk)
        return {"deleted": run_id}


def _class_pdf(class_pdf: dict[str, float] | None) -> str | None:
    return json.dumps(class_pdf) if class_pdf else None


def _drop_match_rows(conn: Any, prediction_pks: list[int], totals: stats.Delta) -> None:
    """Delete the match rows of predictions just deleted (the match tables hold no
    references that would cascade; see ``schema``), and take them off the run's match
    totals (``totals``, saved by the caller): those count the rows, which a total of
    ``status = fp`` is read from. The run's other rows then no longer describe its
    predictions: its next commit rewrites them (``match_rows``)."""
    for part in chunks(prediction_pks):
        totals.add_counts(stats.match_counts(
            conn, lambda table, part=part: [table.c.prediction_pk.in_(part)], sides="p"), -1)
        conn.execute(delete(t.match_predictions).where(
            t.match_predictions.c.prediction_pk.in_(part)))


def _delete_run_rows(conn: Any, run_pk: int) -> None:
    scenario_rows.drop_for_run(conn, run_pk)
    stats.drop_run(conn, run_pk)
    for table in (t.match_predictions, t.match_annotations, t.match_items, t.predictions):
        conn.execute(delete(table).where(table.c.run_pk == run_pk))
    conn.execute(delete(t.model_runs).where(t.model_runs.c.pk == run_pk))
