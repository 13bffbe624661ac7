"""``/datasets/{dataset}/slices`` and ``/slices/{slice_id}``: named subsets of items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.server.api.common import Name, RefList
from ocula.server.api.schemas import (
    CREATE,
    READ,
    WRITE,
    Deleted,
    Item,
    Slice,
    SliceAdded,
    SliceRemoved,
    ok,
)
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["slices"])


class SliceIn(BaseModel):
    name: Name
    # The service refuses a reference id given twice.
    reference_ids: RefList = Field(default_factory=list, json_schema_extra={"uniqueItems": True})
    description: Annotated[str, Field(max_length=10_000)] | None = None


class RefsIn(BaseModel):
    reference_ids: RefList


@router.post("/datasets/{dataset}/slices", **ok(Slice, *CREATE, status=201))
def create_slice(dataset: str, body: SliceIn, service: ServiceDep) -> dict[str, Any]:
    """Create a slice from reference ids (all must exist)."""
    return service.create_slice(dataset, body.name, body.reference_ids,
                                description=body.description)


@router.get("/datasets/{dataset}/slices", **ok([Slice], *READ))
def list_slices(dataset: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_slices(dataset)


@router.get("/datasets/{dataset}/slices/_lookup", **ok(Slice, *READ))
def find_slice(dataset: str, name: Annotated[str, Query(max_length=255)],
               service: ServiceDep) -> dict[str, Any]:
    """A slice of this dataset by name or id."""
    return service.find_slice(dataset, name)


@router.get("/slices/{slice_id}", **ok(Slice, *READ))
def slice_info(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.slice_info(slice_id)


@router.get("/slices/{slice_id}/items", **ok([Item], *READ))
def slice_items(slice_id: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.slice_items(slice_id)


@router.post("/slices/{slice_id}/items", **ok(SliceAdded, *WRITE))
def slice_append(slice_id: str, body: RefsIn, service: ServiceDep) -> dict[str, Any]:
    """Add items (by reference id) to the slice."""
    return service.slice_append(slice_id, body.reference_ids)


@router.post("/slices/{slice_id}/items/remove", **ok(SliceRemoved, *WRITE))
def slice_remove(slice_id: str, body: RefsIn, service: ServiceDep) -> dict[str, Any]:
    """Take items (by reference id) out of the slice."""
    return service.slice_remove(slice_id, body.reference_ids)


@router.delete("/slices/{slice_id}", **ok(Deleted, *READ))
def delete_slice(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_slice(slice_id)
