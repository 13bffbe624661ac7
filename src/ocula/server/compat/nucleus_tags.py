"""Dataset and model tags: ``dataset/{id}/tags`` (GET, POST to add, DELETE to remove;
each answers the dataset's tags) and ``model/{id}/tag`` (POST, DELETE). As Nucleus
does, removing a dataset tag that is not there is a no-op, while a model removal that
removes nothing is a 400 in Nucleus' own words."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from ocula.server.deps import ServiceDep

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
# Nucleus' answer, word for word (its client's own tests compare it).
NO_MODEL_TAG = "Deleted 0 tags from model. The specified tag(s) were not found."


@router.get("/dataset/{ds}/tags")
def dataset_tags(ds: str, service: ServiceDep) -> dict[str, Any]:
    return {"tags": service.dataset_tags(ds)}


@router.post("/dataset/{ds}/tags")
def add_dataset_tags(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    return {"tags": service.add_dataset_tags(ds, body.get("tags"))}


@router.delete("/dataset/{ds}/tags")
def remove_dataset_tags(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    return {"tags": service.remove_dataset_tags(ds, body.get("tags"))["tags"]}


@router.post("/model/{model_id}/tag")
def add_model_tags(model_id: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    return {"model_id": model_id, "tags": service.add_model_tags(model_id, body.get("tags"))}


@router.delete("/model/{model_id}/tag", response_model=None)
def remove_model_tags(model_id: str, body: JsonBody, service: ServiceDep
                      ) -> dict[str, Any] | JSONResponse:
    result = service.remove_model_tags(model_id, body.get("tags"))
    if not result["removed"]:
        return JSONResponse({"error": NO_MODEL_TAG}, status_code=400)
    return {"model_id": model_id, "tags": result["tags"]}
