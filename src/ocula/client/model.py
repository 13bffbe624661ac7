"""Client-side handles for models and model runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ocula.client.progress import batched, progress_bar
from ocula.core.types import payload_to_annotation

if TYPE_CHECKING:
    from ocula.client.client import Client
    from ocula.client.dataset import Dataset

PREDICT_BATCH = 50_000


class Model:
    """A model: a name and a reference id; its runs hold predictions on datasets."""

    def __init__(self, client: Client, body: dict[str, Any]):
        self._client = client
        self._backend = client._backend
        self.id: str = body["id"]
        self.name: str = body["name"]
        self.reference_id: str = body["reference_id"]
        self.metadata: dict[str, Any] = body.get("metadata") or {}

    def __repr__(self) -> str:
        return f"Model(id={self.id!r}, name={self.name!r}, reference_id={self.reference_id!r})"

    def create_run(self, name: str, dataset: Dataset | str, predictions: Sequence[Any] = (),
                   metadata: dict[str, Any] | None = None, *,
                   batch_size: int = PREDICT_BATCH, progress: bool | None = None) -> ModelRun:
        """Create a run of this model on ``dataset`` with its predictions. Call
        :meth:`ModelRun.commit` afterwards to match them against the ground truth."""
        dataset_id = dataset if isinstance(dataset, str) else dataset.id
        first = list(predictions[:batch_size])
        body = self._backend.create_run(self.id, dataset_id, name, first, metadata=metadata)
        run = ModelRun(self._client, body)
        rest = predictions[batch_size:]
        if rest:
            run.predict(rest, batch_size=batch_size, progress=progress)
        return run

    @property
    def runs(self) -> list[ModelRun]:
        return [ModelRun(self._client, r) for r in self._backend.list_runs(model=self.id)]


class ModelRun:
    """One model's predictions on one dataset."""

    def __init__(self, client: Client, body: dict[str, Any]):
        self._client = client
        self._backend = client._backend
        self.id: str = body["model_run_id"]
        self.name: str = body["name"]
        self.model_id: str = body["model_id"]
        self.dataset_id: str = body["dataset_id"]

    def __repr__(self) -> str:
        return f"ModelRun(id={self.id!r}, name={self.name!r})"

    def info(self) -> dict[str, Any]:
        return self._backend.run_info(self.id)

    def predict(self, predictions: Sequence[Any], update: bool = False, *,
                batch_size: int = PREDICT_BATCH, progress: bool | None = None) -> dict[str, Any]:
        """Add predictions (``update`` replaces those with the same annotation_id)."""
        totals = {"predictions_processed": 0, "predictions_ignored": 0}
        with progress_bar("Uploading predictions", len(predictions), progress) as advance:
            for batch in batched(predictions, batch_size):
                result = self._backend.predict(self.id, batch, update=update)
                for key in totals:
                    totals[key] += result[key]
                advance(len(batch))
        return totals

    def commit(self, payload: dict[str, Any] | None = None, *, class_agnostic: bool = False,
               allowed_label_matches: Sequence[dict[str, str]] | None = None,
               iou_threshold: float = 0.5,
               annotation_version: int | str | None = None,
               iou_type: str = "bbox",
               kpt_sigmas: Sequence[float] | Mapping[str, Sequence[float]] | None = None
               ) -> dict[str, Any]:
        """Match predictions to ground truth and store TP/FP/FN per box and item.

        ``payload`` is Nucleus' form (``{"class_agnostic": ..., "allowed_label_matches":
        [{"ground_truth_label", "model_prediction_label"}]}``); keywords work too.
        ``iou_type="segm"`` matches mask/polygon predictions to mask/polygon ground truth
        by pixel IoU (COCO's ``segm``); ``iou_type="keypoints"`` matches keypoints by OKS
        with ``kpt_sigmas`` (one list for all labels or ``{label: [...]}``; default COCO's
        person sigmas for 17 keypoints); the default ``"bbox"`` matches boxes.
        Committing again after any change replaces the earlier result."""
        payload = payload or {}
        return self._backend.commit_run(
            self.id,
            class_agnostic=payload.get("class_agnostic", class_agnostic),
            allowed_label_matches=payload.get("allowed_label_matches", allowed_label_matches),
            iou_threshold=payload.get("iou_threshold", iou_threshold),
            annotation_version=annotation_version,
            iou_type=payload.get("iou_type", iou_type),
            kpt_sigmas=payload.get("kpt_sigmas", kpt_sigmas))

    def metrics(self, slice: str | None = None, iou_threshold: float | None = None,
                annotation_version: int | str | None = None, *,
                confidence_threshold: float = 0.5, iou_type: str = "bbox",
                query: str | None = None, cells: bool = False) -> dict[str, Any]:
        """COCO metrics (``stats``: AP, AP50, … ARl), per-class AP/AR, P/R/F1 at
        ``confidence_threshold``, best-F1 threshold, PR curves and confusion matrix,
        optionally on one slice (name or id) and against a label version.
        ``iou_type="segm"`` gives mask metrics (pycocotools' ``iouType="segm"``),
        ``"keypoints"`` the 10 keypoint numbers (``iouType="keypoints"``). ``query``
        (an item condition) scores only the items it selects. ``cells=True`` lists
        every confusion-matrix entry with its boxes' ids (``confusion_matrix.cells``:
        as many entries as boxes); each cell's object query is always there."""
        return self._backend.run_metrics(self.id, slice=slice, iou_threshold=iou_threshold,
                                         annotation_version=annotation_version,
                                         confidence_threshold=confidence_threshold,
                                         iou_type=iou_type, query=query, cells=cells)

    def version_table(self, versions: Sequence[int | str | None], slice: str | None = None,
                      *, confidence_threshold: float = 0.5) -> list[dict[str, Any]]:
        """This run scored against several label versions side by side (the Nucleus
        tutorial's original-versus-corrected table): one row per version (a number, a
        name, or None for the current labels) with ``AP``, ``AP50``, ``AR100`` and
        ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn`` at
        ``confidence_threshold``."""
        rows = []
        for version in versions:
            m = self.metrics(slice, annotation_version=version,
                             confidence_threshold=confidence_threshold)
            point = m["operating_point"]
            rows.append({"version": version,
                         **{k: m["stats"][k] for k in ("AP", "AP50", "AR100")},
                         **{k: point[k] for k in ("precision", "recall", "f1", "tp", "fp",
                                                  "fn")}})
        return rows

    def failures(self, kind: str = "fp", limit: int = 20, *,
                 min_confidence: float = 0.0) -> list[dict[str, Any]]:
        """Worst boxes of the committed run: ``"fp"`` (most confident false positives),
        ``"fn"`` (largest missed boxes) or ``"low_iou"`` (loosest true positives)."""
        return self._backend.run_failures(self.id, kind=kind, limit=limit,
                                          min_confidence=min_confidence)

    def failure_summary(self, slice: str | None = None,  # noqa: A002
                        query: str | None = None) -> dict[str, Any]:
        """Counts of why the committed run fails: false positives by cause (duplicate,
        localisation, background) and missed boxes by size (small, medium, large),
        optionally on one slice (name or id) and/or the items an item query selects;
        ``queries`` holds the object query of each count."""
        return self._backend.failure_summary(self.id, slice=slice, query=query)

    def error_breakdown(self, slice: str | None = None,  # noqa: A002
                        annotation_version: int | str | None = None, *,
                        iou_type: str = "bbox", pos_threshold: float = 0.5,
                        background_threshold: float = 0.1,
                        max_ids: int | None = None,
                        query: str | None = None) -> dict[str, Any]:
        """TIDE's error breakdown (Bolya et al., ECCV 2020): the AP50 gained by fixing
        each kind of error (``errors``: ``cls``, ``loc``, ``both``, ``dupe``, ``bkg``,
        ``miss``; ``special``: ``fp``, ``fn``), with the prediction and annotation ids
        behind each, overall and per class, optionally on one slice and/or the items an
        item query selects (``query``), against a label version. ``max_ids`` caps each
        id list; see ``docs/evaluation.md``."""
        return self._backend.run_error_breakdown(
            self.id, slice=slice, annotation_version=annotation_version, iou_type=iou_type,
            pos_threshold=pos_threshold, background_threshold=background_threshold,
            max_ids=max_ids, query=query)

    def predictions(self, reference_ids: Sequence[str] | None = None) -> list[Any]:
        return [payload_to_annotation(p, prediction=True)
                for p in self._backend.list_predictions(self.id, reference_ids)]


def compare(run_a: ModelRun, run_b: ModelRun, slice: str | None = None, *,
            iou_threshold: float | None = None, limit: int | None = None) -> dict[str, Any]:
    """Metric deltas (b − a) of two committed runs on one dataset, overall and per
    class, and the items each run gets right (no FP, no FN) that the other gets wrong
    (the first ``limit`` reference ids of each list, with their full counts)."""
    return run_a._backend.compare_runs(run_a.id, run_b.id, slice=slice,
                                       iou_threshold=iou_threshold, limit=limit)


def compare_items(run_a: ModelRun, run_b: ModelRun, *, only: Literal["a", "b"] = "b",
                  slice: str | None = None, page_size: int = 100,
                  cursor: str | None = None) -> dict[str, Any]:
    """One page of the items only one run gets right (``only="b"``: what ``run_b``
    fixes; ``"a"``: what it breaks): ``{"items", "next_cursor", "total"}``."""
    return run_a._backend.compare_items(run_a.id, run_b.id, only=only, slice=slice,
                                        page_size=page_size, cursor=cursor)
