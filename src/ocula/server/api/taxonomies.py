"""``/datasets/{dataset}/taxonomies``: a dataset's named label sets (``category`` or
``multicategory``), which category and multicategory annotations may name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.core.services.taxonomies import MAX_TAXONOMY_LABELS
from ocula.server.api.common import Name
from ocula.server.api.schemas import READ, WRITE, Taxonomy, TaxonomyChanged, ok
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["taxonomies"])

class TaxonomyIn(BaseModel):
    name: Name
    type: Literal["category", "multicategory"]
    labels: Annotated[list[Name], Field(min_length=1, max_length=MAX_TAXONOMY_LABELS)]
    update: bool = False


@router.post("/datasets/{dataset}/taxonomies", **ok(TaxonomyChanged, *WRITE))
def add_taxonomy(dataset: str, body: TaxonomyIn, service: ServiceDep) -> dict[str, Any]:
    """Create a taxonomy; one of that name is left as it is, or with ``update`` gains the
    new labels. ``status``: ``Taxonomy created`` / ``already exists`` / ``updated``."""
    return service.add_taxonomy(dataset, body.name, body.type, body.labels,
                                update=body.update)


@router.get("/datasets/{dataset}/taxonomies", **ok([Taxonomy], *READ))
def list_taxonomies(dataset: str, service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_taxonomies(dataset)


@router.delete("/datasets/{dataset}/taxonomy", **ok(TaxonomyChanged, *READ))
def delete_taxonomy(dataset: str, name: Annotated[str, Query(min_length=1, max_length=255)],
                    service: ServiceDep) -> dict[str, Any]:
    """Delete a taxonomy (annotations that named it keep the name)."""
    return service.delete_taxonomy(dataset, name)
