"""``/runs``: model runs (one model's predictions on one dataset) and their commit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.core.query.plan import MAX_PAGE_SIZE
from ocula.server.api.common import MAX_LIST, OBJECT_ENTRY, Metadata, Name, RefList, entries
from ocula.server.api.schemas import (
    CREATE,
    READ,
    WRITE,
    Comparison,
    ComparisonItems,
    Deleted,
    ErrorBreakdown,
    Failure,
    FailureSummary,
    Job,
    LabelObject,
    Metrics,
    PredictResult,
    Run,
    ok,
)
from ocula.server.deps import JobsDep, ServiceDep
from ocula.server.wire import objects_from_json

router = APIRouter(tags=["runs"])


class RunIn(BaseModel):
    model: Annotated[str, Field(max_length=255)]
    dataset: Annotated[str, Field(max_length=255)]
    name: Name
    predictions: entries(OBJECT_ENTRY) = Field(default_factory=list)
    metadata: Metadata = None


class PredictIn(BaseModel):
    predictions: entries(OBJECT_ENTRY)
    update: bool = False


class PredictionSearchIn(BaseModel):
    reference_ids: RefList | None = None


class LabelMatch(BaseModel):
    ground_truth_label: str
    model_prediction_label: str


IouType = Literal["bbox", "segm", "keypoints"]
Sigma = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class CommitIn(BaseModel):
    class_agnostic: bool | None = None
    allowed_label_matches: list[LabelMatch] | None = None
    iou_threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    annotation_version: int | Annotated[str, Field(max_length=255)] | None = None
    # "segm": mask/polygon predictions against mask/polygon ground truth, by pixel IoU;
    # "keypoints": keypoints by OKS, with per-keypoint sigmas (all labels, or per label).
    iou_type: IouType | None = None
    kpt_sigmas: (Annotated[list[Sigma], Field(max_length=1000)]
                 | Annotated[dict[Annotated[str, Field(max_length=255)],
                                  Annotated[list[Sigma], Field(max_length=1000)]],
                             Field(max_length=10_000)]
                 | None) = None


Probability = Annotated[float, Query(ge=0, le=1)]


@router.post("/runs", **ok(Run, *CREATE, status=201))
def create_run(body: RunIn, service: ServiceDep) -> dict[str, Any]:
    """Create a run of ``model`` on ``dataset`` with its predictions (one batch)."""
    preds = objects_from_json(body.predictions, prediction=True)
    return service.create_run(body.model, body.dataset, body.name, preds,
                              metadata=body.metadata)


@router.get("/runs", **ok([Run], *READ))
def list_runs(service: ServiceDep,
              dataset: Annotated[str | None, Query(max_length=255)] = None,
              model: Annotated[str | None, Query(max_length=255)] = None
              ) -> list[dict[str, Any]]:
    """Runs, optionally of one dataset and/or one model."""
    return service.list_runs(dataset=dataset, model=model)


@router.get("/datasets/{dataset}/runs/_lookup", **ok(Run, *READ))
def find_run(dataset: str, name: Annotated[str, Query(max_length=255)],
             service: ServiceDep) -> dict[str, Any]:
    """A run of this dataset by name or id."""
    return service.find_run(dataset, name)


@router.get("/runs/{run_id}", **ok(Run, *READ))
def run_info(run_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.run_info(run_id)


@router.post("/runs/{run_id}/predictions", **ok(PredictResult, *WRITE))
def predict(run_id: str, body: PredictIn, service: ServiceDep) -> dict[str, Any]:
    """Add predictions (``update`` replaces those with the same annotation_id)."""
    preds = objects_from_json(body.predictions, prediction=True)
    return service.predict(run_id, preds, update=body.update)


@router.get("/runs/{run_id}/predictions", **ok([LabelObject], *READ))
def list_predictions(run_id: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_predictions(run_id)


@router.post("/runs/{run_id}/predictions/search", **ok([LabelObject], *WRITE))
def search_predictions(run_id: str, body: PredictionSearchIn, service: ServiceDep
                       ) -> list[dict[str, Any]]:
    """Predictions of some items (``reference_ids``)."""
    return service.list_predictions(run_id, body.reference_ids)


@router.delete("/runs/{run_id}", **ok(Deleted, *READ))
def delete_run(run_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_run(run_id)


@router.post("/runs/{run_id}/commit", **ok(Job, *WRITE, status=202))
def commit_run(run_id: str, body: CommitIn, jobs: JobsDep) -> dict[str, Any]:
    """Match the run's predictions against the ground truth, as a job."""
    matches = ([m.model_dump() for m in body.allowed_label_matches]
               if body.allowed_label_matches is not None else None)
    return jobs.submit_commit(run_id, {"class_agnostic": body.class_agnostic,
                                       "allowed_label_matches": matches,
                                       "iou_threshold": body.iou_threshold,
                                       "annotation_version": body.annotation_version,
                                       "iou_type": body.iou_type,
                                       "kpt_sigmas": body.kpt_sigmas})


# A metrics scope's item query travels in the URL: percent-encoded, a character takes up
# to 12 bytes, and the server reads request heads of 16 KiB at most.
MAX_SCOPE_QUERY = 1_000


def _version(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdecimal() else value


@router.get("/runs/{run_id}/metrics", **ok(Metrics, *READ))
def run_metrics(run_id: str, service: ServiceDep,
                slice: Annotated[str | None, Query(max_length=255)] = None,  # noqa: A002
                iou_threshold: Annotated[float | None, Query(gt=0, le=1)] = None,
                annotation_version: Annotated[str | None, Query(max_length=255)] = None,
                confidence_threshold: Probability = 0.5,
                iou_type: Annotated[IouType, Query()] = "bbox",
                query: Annotated[str | None, Query(max_length=MAX_SCOPE_QUERY)] = None,
                cells: bool = False,
                ) -> dict[str, Any]:
    """COCO metrics, P/R/F1, PR curves and confusion matrix (optionally on a slice and/or
    the items an item query selects, against a label version); ``iou_type=segm`` for mask
    metrics, ``keypoints`` for OKS. ``cells=true`` adds every confusion entry's box ids
    (as many entries as boxes). The whole dataset's and each slice's numbers at the
    default thresholds are kept at commit and served while the data is unchanged."""
    return service.run_metrics(run_id, slice=slice, iou_threshold=iou_threshold,
                               annotation_version=_version(annotation_version),
                               confidence_threshold=confidence_threshold,
                               iou_type=iou_type, query=query, cells=cells)


@router.get("/runs/{run_id}/errors", **ok(ErrorBreakdown, *READ))
def run_error_breakdown(
        run_id: str, service: ServiceDep,
        slice: Annotated[str | None, Query(max_length=255)] = None,  # noqa: A002
        annotation_version: Annotated[str | None, Query(max_length=255)] = None,
        iou_type: Annotated[Literal["bbox", "segm"], Query()] = "bbox",
        pos_threshold: Annotated[float, Query(gt=0, le=1)] = 0.5,
        background_threshold: Annotated[float, Query(gt=0, lt=1)] = 0.1,
        max_ids: Annotated[int | None, Query(ge=0)] = None,
        query: Annotated[str | None, Query(max_length=MAX_SCOPE_QUERY)] = None,
) -> dict[str, Any]:
    """TIDE's error breakdown (Bolya et al., ECCV 2020): the AP gained by fixing each
    kind of error (Cls, Loc, Both, Dupe, Bkg, Miss; FP, FN), with the ids behind each,
    overall and per class (optionally on a slice and/or the items an item query selects,
    against a label version); ``background_threshold`` must be below ``pos_threshold``."""
    return service.run_error_breakdown(
        run_id, slice=slice, annotation_version=_version(annotation_version),
        iou_type=iou_type, pos_threshold=pos_threshold,
        background_threshold=background_threshold, max_ids=max_ids, query=query)


@router.get("/runs/{run_id}/failures", **ok([Failure], *READ))
def run_failures(run_id: str, service: ServiceDep,
                 kind: Annotated[Literal["fp", "fn", "low_iou"], Query()] = "fp",
                 limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 20,
                 min_confidence: Probability = 0.0) -> list[dict[str, Any]]:
    """The committed run's worst boxes (most confident FPs, largest FNs, loosest TPs)."""
    return service.run_failures(run_id, kind=kind, limit=limit, min_confidence=min_confidence)


@router.get("/runs/{run_id}/failure_summary", **ok(FailureSummary, *READ))
def failure_summary(run_id: str, service: ServiceDep,
                    slice: Annotated[str | None, Query(max_length=255)] = None,  # noqa: A002
                    query: Annotated[str | None, Query(max_length=MAX_SCOPE_QUERY)] = None,
                    ) -> dict[str, Any]:
    """False positives by cause and missed boxes by size (optionally on one slice and/or
    the items an item query selects)."""
    return service.failure_summary(run_id, slice=slice, query=query)


@router.get("/compare", **ok(Comparison, *READ))
def compare_runs(service: ServiceDep, run_a: Annotated[str, Query(max_length=255)],
                 run_b: Annotated[str, Query(max_length=255)],
                 slice: Annotated[str | None, Query(max_length=255)] = None,  # noqa: A002
                 iou_threshold: Annotated[float | None, Query(gt=0, le=1)] = None,
                 limit: Annotated[int | None, Query(ge=0, le=MAX_LIST)] = None
                 ) -> dict[str, Any]:
    """Metric deltas of two runs (overall and per class) and the items each gets right
    that the other does not (the first ``limit`` of each list, with their counts)."""
    return service.compare_runs(run_a, run_b, slice=slice, iou_threshold=iou_threshold,
                                limit=limit)


@router.get("/compare/items", **ok(ComparisonItems, *READ))
def compare_items(service: ServiceDep, run_a: Annotated[str, Query(max_length=255)],
                  run_b: Annotated[str, Query(max_length=255)],
                  only: Annotated[Literal["a", "b"], Query()] = "b",
                  slice: Annotated[str | None, Query(max_length=255)] = None,  # noqa: A002
                  page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
                  cursor: Annotated[str | None, Query(max_length=1024,
                                                      pattern=r"^[A-Za-z0-9_=-]*$")] = None
                  ) -> dict[str, Any]:
    """A page of the items only one run gets right: ``only=b`` what run_b fixes,
    ``only=a`` what it breaks (in the order the items were added)."""
    return service.compare_items(run_a, run_b, only=only, slice=slice,
                                 page_size=page_size, cursor=cursor)
