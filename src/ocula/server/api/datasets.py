"""``/datasets``: create, list, look up, inspect, delete; label versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.server.api.common import MAX_INT, Metadata, Name
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["datasets"])


class DatasetIn(BaseModel):
    name: Name
    allowed_types: list[str] | None = None
    metadata: Metadata = None


class VersionTagIn(BaseModel):
    name: Name
    version: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetIn, service: ServiceDep) -> dict[str, Any]:
    """Create an empty dataset (names are unique)."""
    return service.create_dataset(body.name, allowed_types=body.allowed_types,
                                  metadata=body.metadata)


@router.get("/datasets")
def list_datasets(service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_datasets()


@router.get("/datasets/_lookup")
def lookup_dataset(name: Annotated[str, Query(max_length=1024)],
                   service: ServiceDep) -> dict[str, Any]:
    """A dataset by name or id (names may contain any character, even ``/``)."""
    return service.get_dataset(name)


@router.get("/datasets/{dataset}")
def get_dataset(dataset: str, service: ServiceDep) -> dict[str, Any]:
    """A dataset by id (``ds_…``) or name."""
    return service.get_dataset(dataset)


@router.get("/datasets/{dataset}/info")
def dataset_info(dataset: str, service: ServiceDep) -> dict[str, Any]:
    """Counts, labels, slices and model runs."""
    return service.dataset_info(dataset)


@router.delete("/datasets/{dataset}")
def delete_dataset(dataset: str, service: ServiceDep) -> dict[str, Any]:
    """Delete a dataset with its items, labels, slices and runs."""
    return service.delete_dataset(dataset)


@router.get("/datasets/{dataset}/versions")
def list_versions(dataset: str, service: ServiceDep) -> list[dict[str, Any]]:
    """Every version of the dataset's labels."""
    return service.list_versions(dataset)


@router.post("/datasets/{dataset}/versions")
def tag_version(dataset: str, body: VersionTagIn, service: ServiceDep) -> dict[str, Any]:
    """Name a version of the labels (default: the newest)."""
    return service.tag_version(dataset, body.name, body.version)
