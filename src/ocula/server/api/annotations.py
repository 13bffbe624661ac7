"""``/datasets/{dataset}/annotations``: ground truth, versioned."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ocula.server.api.common import MAX_INT, OBJECT_ENTRY, RefList, entries, parse_version
from ocula.server.api.schemas import (
    READ,
    WRITE,
    AnnotateResult,
    AnnotationsDeleted,
    LabelObject,
    ok,
)
from ocula.server.deps import ServiceDep
from ocula.server.wire import objects_from_json

router = APIRouter(tags=["annotations"])


class AnnotateIn(BaseModel):
    annotations: entries(OBJECT_ENTRY)
    update: bool = False
    message: Annotated[str, Field(max_length=10_000)] | None = None


class AnnotationSearchIn(BaseModel):
    version: (Annotated[int, Field(ge=0, le=MAX_INT)] | Annotated[str, Field(max_length=255)]
              | None) = None
    reference_ids: RefList | None = None


class AnnotationDeleteIn(BaseModel):
    # The service needs one of the two, non-empty.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": [key], "properties": {key: {"type": "array", "minItems": 1}}}
        for key in ("reference_ids", "annotation_ids")]})

    reference_ids: RefList | None = None
    annotation_ids: RefList | None = None
    message: Annotated[str, Field(max_length=10_000)] | None = None


@router.post("/datasets/{dataset}/annotations", **ok(AnnotateResult, *WRITE))
def annotate(dataset: str, body: AnnotateIn, service: ServiceDep) -> dict[str, Any]:
    """Add ground truth (Nucleus JSON form); one batch = one transaction = one version."""
    anns = objects_from_json(body.annotations, prediction=False)
    return service.annotate(dataset, anns, update=body.update, message=body.message)


@router.get("/datasets/{dataset}/annotations", **ok([LabelObject], *READ))
def list_annotations(dataset: str, service: ServiceDep,
                     version: Annotated[str | None, Query(max_length=255)] = None
                     ) -> list[dict[str, Any]]:
    """Current annotations, or those at ``version`` (a number or a name)."""
    return service.list_annotations(dataset, version=parse_version(version))


@router.post("/datasets/{dataset}/annotations/search", **ok([LabelObject], *WRITE))
def search_annotations(dataset: str, body: AnnotationSearchIn, service: ServiceDep
                       ) -> list[dict[str, Any]]:
    """Annotations of some items (``reference_ids``) at a version."""
    return service.list_annotations(dataset, version=body.version,
                                    reference_ids=body.reference_ids)


@router.post("/datasets/{dataset}/annotations/delete", **ok(AnnotationsDeleted, *WRITE))
def delete_annotations(dataset: str, body: AnnotationDeleteIn, service: ServiceDep
                       ) -> dict[str, Any]:
    """Remove current annotations; they stay readable at earlier versions."""
    return service.delete_annotations(dataset, reference_ids=body.reference_ids,
                                      annotation_ids=body.annotation_ids,
                                      message=body.message)
