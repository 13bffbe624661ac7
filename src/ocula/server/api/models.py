"""``/models``: models, identified by id (``prj_…``) or reference id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ocula.server.api.common import Metadata, Name
from ocula.server.api.schemas import CREATE, READ, Deleted, Model, ok
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["models"])


class ModelIn(BaseModel):
    name: Name
    reference_id: Name
    metadata: Metadata = None


@router.post("/models", **ok(Model, *CREATE))
def add_model(body: ModelIn, service: ServiceDep) -> dict[str, Any]:
    """Register a model; adding the same (name, reference_id) again returns it."""
    return service.add_model(body.name, body.reference_id, body.metadata)


@router.get("/models", **ok([Model]))
def list_models(service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_models()


@router.get("/models/_lookup", **ok(Model, *READ))
def lookup_model(ref: Annotated[str, Query(max_length=255)], service: ServiceDep
                 ) -> dict[str, Any]:
    """A model by reference id or id (reference ids may contain ``/``)."""
    return service.get_model(ref)


@router.get("/models/{model}", **ok(Model, *READ))
def get_model(model: str, service: ServiceDep) -> dict[str, Any]:
    return service.get_model(model)


@router.delete("/models/{model}", **ok(Deleted, *READ))
def delete_model(model: str, service: ServiceDep) -> dict[str, Any]:
    """Delete a model and all its runs."""
    return service.delete_model(model)
