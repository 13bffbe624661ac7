"""Nucleus models and model runs (``models/``, ``model/{id}``, ``modelRun/{id}``).

A Nucleus run is created on a dataset for a model named by its reference id, fed with
``predict`` batches and then committed; the commit is a job that calls the evaluation
engine's ``service.commit_run`` (see ``ocula.server.jobs.JobRunner.submit_commit``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from ocula.core.services.tags import tag_list
from ocula.errors import ValidationError
from ocula.server.api.common import MAX_INT
from ocula.server.compat import nucleus_format as fmt
from ocula.server.compat.nucleus_batches import nucleus_keys, write_known
from ocula.server.compat.nucleus_exports import UrlsDep
from ocula.server.compat.nucleus_masks import NucleusBody, NucleusRequest, with_masks
from ocula.server.compat.nucleus_uploads import read_drop
from ocula.server.deps import JobsDep, ServiceDep
from ocula.server.wire import json_rows, objects_from_json

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]


@router.post("/models/add")
def add_model(body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """A model, with the ``tags`` given (checked before the model is written)."""
    tags = tag_list(body.get("tags") or [])
    mdl = service.add_model(body.get("name"), body.get("reference_id"),
                            body.get("metadata") or None)
    if tags:
        service.add_model_tags(mdl["id"], tags)
    return {"model_id": mdl["id"], "name": mdl["name"]}


@router.get("/models/")
@router.get("/models")
def list_models(service: ServiceDep) -> dict[str, Any]:
    return {"models": [fmt.model(m, service.model_tags(m["id"]))
                       for m in service.list_models()]}


@router.get("/model/{model_id}")
def get_model(model_id: str, service: ServiceDep) -> dict[str, Any]:
    """A model by id, or the model of a run (``run_…``)."""
    if model_id.startswith("run_"):
        model_id = service.run_info(model_id)["model_id"]
    return fmt.model(service.get_model(model_id), service.model_tags(model_id))


@router.delete("/model/{model_id}")
def delete_model(model_id: str, service: ServiceDep) -> dict[str, Any]:
    """Nucleus' ``msg`` word for word (clients compare it); in Ocula the model is
    already gone when the answer arrives."""
    return {**service.delete_model(model_id), "msg": "Model deletion running in an async job"}


@router.post("/dataset/{ds}/modelRun/create")
def create_run(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """A run of the model whose reference id is given, on this dataset."""
    ref = body.get("reference_id") or body.get("model_id")
    if not isinstance(ref, str) or not ref:
        raise ValidationError("modelRun/create needs the model's reference_id")
    mdl = service.get_model(ref)
    run = service.create_run(mdl["id"], ds, body.get("name"),
                             metadata=body.get("metadata") or None)
    return {"model_run_id": run["model_run_id"], "model_id": mdl["id"]}


@router.post("/modelRun/{run_id}/predict")
def predict(run_id: str, request: NucleusBody, service: ServiceDep, jobs: JobsDep,
            run_async: Annotated[int, Query(alias="async", ge=0, le=1)] = 0
            ) -> dict[str, Any]:
    """Predictions; the client sums the numeric answers over its batches. With
    ``async=1`` the body names an NDJSON upload (``requestId``) and the answer is a job."""
    return _predict(service.run_info(run_id), request, service, jobs, bool(run_async))


@router.post("/dataset/{ds}/model/{model_id}/uploadPredictions")
def upload_predictions(ds: str, model_id: str, request: NucleusBody, service: ServiceDep,
                       jobs: JobsDep,
                       run_async: Annotated[int, Query(alias="async", ge=0, le=1)] = 0
                       ) -> dict[str, Any]:
    """A model's predictions without a run: they go to the model's run on the dataset
    (its newest, or a new one named after the model's reference id)."""
    run = service.model_run_on(ds, model_id, create=True)
    return _predict(run, request, service, jobs, bool(run_async))


def _predict(run: dict[str, Any], request: NucleusRequest, service: Any, jobs: Any,
             run_async: bool) -> dict[str, Any]:
    """Segmentations with local masks come as a multipart form (``nucleus_masks``)."""
    run_id, body = run["model_run_id"], request.body
    update = bool(body.get("update"))
    if body.get("requestId") is not None:
        rows = read_drop(service, run["dataset_id"], str(body["requestId"]))
    else:
        rows = json_rows(body, "annotations", "segmentations")
    preds = nucleus_keys(with_masks(objects_from_json(rows, prediction=True),
                                    request.masks))

    def work(progress: Any) -> dict[str, Any]:
        result, errors = write_known(
            lambda objs: service.predict(run_id, objs, update=update), preds,
            {"predictions_processed": 0, "predictions_ignored": 0})
        return {"dataset_id": run["dataset_id"], "model_run_id": run_id,
                "predictions_processed": result["predictions_processed"],
                "predictions_ignored": result["predictions_ignored"], "errors": errors}

    if run_async:
        return fmt.job_ref(jobs.submit("predict", work, total_steps=len(preds)))
    return work(None)


@router.post("/modelRun/{run_id}/commit")
def commit(run_id: str, body: JsonBody, jobs: JobsDep) -> dict[str, Any]:
    """Match predictions to ground truth (a job; its id is in the answer)."""
    matches = body.get("allowed_label_matches")
    if matches is not None and not (isinstance(matches, list) and all(
            isinstance(m, dict) and {"ground_truth_label", "model_prediction_label"} <= set(m)
            for m in matches)):
        raise ValidationError("allowed_label_matches must be a list of "
                              "{ground_truth_label, model_prediction_label}")
    class_agnostic = body.get("class_agnostic")
    if class_agnostic is not None and not isinstance(class_agnostic, bool):
        raise ValidationError("class_agnostic must be true or false")
    job = jobs.submit_commit(run_id, {"class_agnostic": class_agnostic,
                                      "allowed_label_matches": matches})
    return {"model_run_id": run_id, **fmt.job_ref(job)}


@router.get("/modelRun/{run_id}/info")
def run_info(run_id: str, service: ServiceDep) -> dict[str, Any]:
    info = service.run_info(run_id)
    return {**info, "status": "committed" if info["committed"] else "started"}


@router.delete("/modelRun/{run_id}")
def delete_run(run_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_run(run_id)


@router.get("/modelRun/{run_id}/refloc/{ref:ref}")
def run_refloc(run_id: str, ref: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    """The run's predictions on one item (reference id percent-encoded, ``/`` allowed)."""
    info = service.run_info(run_id)
    item = service.get_item(info["dataset_id"], reference_id=ref)["item"]  # 404 if unknown
    return _on_item(service, run_id, item, urls)


def _on_item(service: Any, run_id: str, item: dict[str, Any], urls: fmt.ImageUrls
             ) -> dict[str, Any]:
    return fmt.predictions_by_type(service.list_predictions(run_id, [item["reference_id"]]),
                                   urls, lambda _ref: item["id"], run_id)


@router.get("/modelRun/{run_id}/loc/{item_id}")
def run_loc(run_id: str, item_id: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    info = service.run_info(run_id)
    item = service.get_item(info["dataset_id"], item_id=item_id)["item"]
    return _on_item(service, run_id, item, urls)


@router.get("/modelRun/{run_id}/iloc/{index}")
def run_iloc(run_id: str, index: int, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    if not 0 <= index <= MAX_INT:
        raise ValidationError(f"item index must be >= 0, got {index}")
    info = service.run_info(run_id)
    item = service.get_item(info["dataset_id"], index=index)["item"]
    return _on_item(service, run_id, item, urls)


@router.get("/modelRun/{run_id}/ungrouped")
def run_ungrouped(run_id: str, service: ServiceDep) -> dict[str, Any]:
    """All the run's predictions, by type (``ModelRun.ungrouped_export``)."""
    return fmt.predictions_by_type(service.list_predictions(run_id))["annotations"]


# --- a model's predictions on a dataset (its run there: Service.model_run_on) ----------


@router.get("/dataset/{ds}/model/{model_id}/export")
def model_export(ds: str, model_id: str, service: ServiceDep, urls: UrlsDep
                 ) -> dict[str, Any]:
    run = service.model_run_on(ds, model_id)
    ids: dict[str, str] = {}

    def item_id(ref: str) -> str | None:  # read only when a segmentation asks
        if not ids:
            ids.update((r["reference_id"], r["id"]) for r in service.list_items(ds)["items"])
        return ids.get(ref)

    return fmt.predictions_by_type(service.list_predictions(run["id"]), urls, item_id,
                                   run["id"])["annotations"]


@router.get("/dataset/{ds}/model/{model_id}/referenceId/{ref:ref}")
def model_refloc(ds: str, model_id: str, ref: str, service: ServiceDep, urls: UrlsDep
                 ) -> dict[str, Any]:
    run = service.model_run_on(ds, model_id)
    return run_refloc(run["id"], ref, service, urls)


@router.get("/dataset/{ds}/model/{model_id}/iloc/{index}")
def model_iloc(ds: str, model_id: str, index: int, service: ServiceDep, urls: UrlsDep
               ) -> dict[str, Any]:
    return run_iloc(service.model_run_on(ds, model_id)["id"], index, service, urls)
