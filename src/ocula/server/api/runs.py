"""``/runs``: model runs (one model's predictions on one dataset) and their commit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.server.api.common import MAX_LIST, Metadata, Name, RefList
from ocula.server.deps import JobsDep, ServiceDep
from ocula.server.wire import objects_from_json

router = APIRouter(tags=["runs"])


class RunIn(BaseModel):
    model: Annotated[str, Field(max_length=255)]
    dataset: Annotated[str, Field(max_length=255)]
    name: Name
    predictions: Annotated[list[Any], Field(max_length=MAX_LIST)] = Field(default_factory=list)
    metadata: Metadata = None


class PredictIn(BaseModel):
    predictions: Annotated[list[Any], Field(max_length=MAX_LIST)]
    update: bool = False


class PredictionSearchIn(BaseModel):
    reference_ids: RefList | None = None


class LabelMatch(BaseModel):
    ground_truth_label: str
    model_prediction_label: str


class CommitIn(BaseModel):
    class_agnostic: bool | None = None
    allowed_label_matches: list[LabelMatch] | None = None


@router.post("/runs", status_code=201)
def create_run(body: RunIn, service: ServiceDep) -> dict[str, Any]:
    """Create a run of ``model`` on ``dataset`` with its predictions (one batch)."""
    preds = objects_from_json(body.predictions, prediction=True)
    return service.create_run(body.model, body.dataset, body.name, preds,
                              metadata=body.metadata)


@router.get("/runs")
def list_runs(service: ServiceDep,
              dataset: Annotated[str | None, Query(max_length=255)] = None,
              model: Annotated[str | None, Query(max_length=255)] = None
              ) -> list[dict[str, Any]]:
    """Runs, optionally of one dataset and/or one model."""
    return service.list_runs(dataset=dataset, model=model)


@router.get("/datasets/{dataset}/runs/_lookup")
def find_run(dataset: str, name: Annotated[str, Query(max_length=255)],
             service: ServiceDep) -> dict[str, Any]:
    """A run of this dataset by name or id."""
    return service.find_run(dataset, name)


@router.get("/runs/{run_id}")
def run_info(run_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.run_info(run_id)


@router.post("/runs/{run_id}/predictions")
def predict(run_id: str, body: PredictIn, service: ServiceDep) -> dict[str, Any]:
    """Add predictions (``update`` replaces those with the same annotation_id)."""
    preds = objects_from_json(body.predictions, prediction=True)
    return service.predict(run_id, preds, update=body.update)


@router.get("/runs/{run_id}/predictions")
def list_predictions(run_id: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_predictions(run_id)


@router.post("/runs/{run_id}/predictions/search")
def search_predictions(run_id: str, body: PredictionSearchIn, service: ServiceDep
                       ) -> list[dict[str, Any]]:
    """Predictions of some items (``reference_ids``)."""
    return service.list_predictions(run_id, body.reference_ids)


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_run(run_id)


@router.post("/runs/{run_id}/commit", status_code=202)
def commit_run(run_id: str, body: CommitIn, jobs: JobsDep) -> dict[str, Any]:
    """Match the run's predictions against the ground truth, as a job."""
    matches = ([m.model_dump() for m in body.allowed_label_matches]
               if body.allowed_label_matches is not None else None)
    return jobs.submit_commit(run_id, {"class_agnostic": body.class_agnostic,
                                       "allowed_label_matches": matches})
