"""One annotation or prediction by its item's reference id and its annotation id:
``GET dataset/{id}/groundTruth/loc/{ref}/{annotation_id}`` and
``GET modelRun/{id}/prediction/loc/{ref}/{annotation_id}``. The client joins the two
ids with a ``/`` unencoded, and either may hold one, so each split is tried in turn."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ocula.errors import NotFoundError
from ocula.server.compat import nucleus_format as fmt
from ocula.server.deps import ServiceDep

router = APIRouter()


def _find(rest: str, objects_of: Callable[[str], Iterable[dict[str, Any]]],
          what: str) -> dict[str, Any]:
    parts = rest.split("/")
    for i in range(1, len(parts)):
        ref, annotation_id = "/".join(parts[:i]), "/".join(parts[i:])
        try:
            objects = list(objects_of(ref))
        except NotFoundError:
            continue
        for obj in objects:
            if obj.get("annotation_id") == annotation_id:
                return {k: v for k, v in obj.items() if k != "version"}
    raise NotFoundError(f"no {what} with reference id and annotation id {rest!r}")


@router.get("/dataset/{ds}/groundTruth/loc/{rest:ref}")
async def ground_truth_loc(ds: str, rest: str, service: ServiceDep) -> dict[str, Any]:
    def annotations_of(ref: str) -> Iterable[dict[str, Any]]:
        body = service.get_item(ds, reference_id=ref)
        return fmt.with_segmentations(a for anns in body["annotations"].values()
                                      for a in anns)
    return await run_in_threadpool(_find, rest, annotations_of, "annotation")


@router.get("/modelRun/{run_id}/prediction/loc/{rest:ref}")
async def prediction_loc(run_id: str, rest: str, service: ServiceDep) -> dict[str, Any]:
    def predictions_of(ref: str) -> Iterable[dict[str, Any]]:
        return fmt.with_segmentations(service.list_predictions(run_id, [ref]))
    return await run_in_threadpool(_find, rest, predictions_of, "prediction")


@router.get("/dataset/{ds}/model/{model_id}/loc/{rest:ref}")
async def model_prediction_loc(ds: str, model_id: str, rest: str,
                               service: ServiceDep) -> dict[str, Any]:
    """One prediction of the model's run on the dataset (``Service.model_run_on``)."""
    run = await run_in_threadpool(service.model_run_on, ds, model_id)
    return await prediction_loc(run["id"], rest, service)
