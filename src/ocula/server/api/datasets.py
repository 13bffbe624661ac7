"""``/datasets``: create, list, look up, inspect, delete; label versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.server.api.common import MAX_INT, AnnotationType, Metadata, Name
from ocula.server.api.schemas import (
    CREATE,
    READ,
    WRITE,
    Dataset,
    DatasetInfo,
    Deleted,
    Version,
    VersionTag,
    ok,
)
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["datasets"])


class DatasetIn(BaseModel):
    name: Name
    allowed_types: list[AnnotationType] | None = None
    metadata: Metadata = None
    is_scene: bool = False


class VersionTagIn(BaseModel):
    name: Name
    version: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None


@router.post("/datasets", **ok(Dataset, *CREATE, status=201))
def create_dataset(body: DatasetIn, service: ServiceDep) -> dict[str, Any]:
    """Create an empty dataset (names are unique)."""
    return service.create_dataset(body.name, allowed_types=body.allowed_types,
                                  metadata=body.metadata, is_scene=body.is_scene)


@router.get("/datasets", **ok([Dataset]))
def list_datasets(service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_datasets()


@router.get("/datasets/_lookup", **ok(Dataset, *READ))
def lookup_dataset(name: Annotated[str, Query(max_length=1024)],
                   service: ServiceDep) -> dict[str, Any]:
    """A dataset by name or id (names may contain any character, even ``/``)."""
    return service.get_dataset(name)


@router.get("/datasets/{dataset}", **ok(Dataset, *READ))
def get_dataset(dataset: str, service: ServiceDep) -> dict[str, Any]:
    """A dataset by id (``ds_…``) or name."""
    return service.get_dataset(dataset)


@router.get("/datasets/{dataset}/info", **ok(DatasetInfo, *READ))
def dataset_info(dataset: str, service: ServiceDep) -> dict[str, Any]:
    """Counts, labels, slices and model runs."""
    return service.dataset_info(dataset)


@router.delete("/datasets/{dataset}", **ok(Deleted, *READ))
def delete_dataset(dataset: str, service: ServiceDep) -> dict[str, Any]:
    """Delete a dataset with its items, labels, slices and runs."""
    return service.delete_dataset(dataset)


@router.get("/datasets/{dataset}/versions", **ok([Version], *READ))
def list_versions(dataset: str, service: ServiceDep) -> list[dict[str, Any]]:
    """Every version of the dataset's labels."""
    return service.list_versions(dataset)


@router.post("/datasets/{dataset}/versions", **ok(VersionTag, *WRITE))
def tag_version(dataset: str, body: VersionTagIn, service: ServiceDep) -> dict[str, Any]:
    """Name a version of the labels (default: the newest)."""
    return service.tag_version(dataset, body.name, body.version)
