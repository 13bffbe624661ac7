"""The query language over REST (docs/query-language.md): item and object queries with
keyset pages, slices taken from queries, slice algebra, object slices, slice export
and insights. Each route is one call of :class:`~ocula.core.services.query.QueryService`
or :class:`~ocula.core.services.insights.InsightsService`.

Bounds match the engine's where the engine has one (``page_size`` 1-10,000), so the
same out-of-range value is the same :class:`~ocula.errors.ValidationError` embedded
and remotely; text gets a generous cap above the engine's own (a 10,000-character
query), so the engine, not the router, reports an over-long query as a ``QueryError``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ocula.core.query.parser import MAX_QUERY_LENGTH
from ocula.core.query.plan import MAX_PAGE_SIZE
from ocula.errors import ValidationError
from ocula.io.coco import export_slice_contents
from ocula.server.api.common import Name
from ocula.server.api.schemas import (
    CREATE,
    QUERY,
    READ,
    CocoExport,
    Insights,
    QueryDescription,
    QueryItemsPage,
    QueryObjectsPage,
    Slice,
    SliceAdded,
    SliceContents,
    SliceRemoved,
    ok,
)
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["query"])

QueryText = Annotated[str, Field(max_length=2 * MAX_QUERY_LENGTH)]
SliceRef = Annotated[str, Field(max_length=255)]
# A cursor carries the last row's sort keys (which may be metadata strings).
Cursor = Annotated[str, Field(max_length=1_000_000)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
Description = Annotated[str, Field(max_length=10_000)]
Target = Literal["items", "objects"]
MAX_METADATA_SAMPLE = 1_000_000
# Values in a URL stay small: the server refuses a request line + headers over 16 KiB
# (and a percent-encoded character takes up to 12 bytes). Long queries go in a body
# (POST /datasets/{dataset}/insights); a slice's object cursor is ~200 characters.
GET_QUERY = 500
GET_CURSOR = 1024
# Checked by the route (its own message), documented as the enum it is.
ExportFormat = Annotated[str, Query(max_length=32, json_schema_extra={"enum": ["coco"]})]


class QueryIn(BaseModel):
    query: QueryText
    slice: SliceRef | None = None
    page_size: PageSize = 100
    cursor: Cursor | None = None
    with_total: bool = False


class DescribeIn(BaseModel):
    query: QueryText
    target: Target = "items"


class SliceFromQueryIn(BaseModel):
    name: Name
    query: QueryText
    target: Target = "items"
    slice: SliceRef | None = None
    description: Description | None = None


class SliceQueryIn(BaseModel):
    query: QueryText
    within: SliceRef | None = None


class CombineIn(BaseModel):
    name: Name
    operation: Literal["union", "intersection", "difference"]
    slices: Annotated[list[SliceRef], Field(min_length=2, max_length=1000)]
    description: Description | None = None


class InsightsIn(BaseModel):
    slice: SliceRef | None = None
    query: QueryText | None = None
    metadata_sample: Annotated[int, Field(ge=1, le=MAX_METADATA_SAMPLE)] = 1000
    fresh: bool = False


# --- queries ------------------------------------------------------------------------


@router.post("/datasets/{dataset}/query/items", **ok(QueryItemsPage, *QUERY))
def query_items(dataset: str, body: QueryIn, service: ServiceDep) -> dict[str, Any]:
    """One page of the items matching an item query: ``{items, next_cursor,
    description, query, total?}``; pass ``next_cursor`` back as ``cursor``."""
    return service.query_items(dataset, body.query, slice=body.slice,
                               page_size=body.page_size, cursor=body.cursor,
                               with_total=body.with_total)


@router.post("/datasets/{dataset}/query/objects", **ok(QueryObjectsPage, *QUERY))
def query_objects(dataset: str, body: QueryIn, service: ServiceDep) -> dict[str, Any]:
    """One page of the annotations/predictions matching an object query: ``{objects,
    next_cursor, description, query, total?}``."""
    return service.query_objects(dataset, body.query, slice=body.slice,
                                 page_size=body.page_size, cursor=body.cursor,
                                 with_total=body.with_total)


@router.post("/datasets/{dataset}/query/describe", **ok(QueryDescription, *QUERY))
def describe_query(dataset: str, body: DescribeIn, service: ServiceDep) -> dict[str, Any]:
    """Check a query without running it (a bad one is a 400 with line and column)."""
    return service.describe_query(dataset, body.query, body.target)


# --- slices from queries and slice algebra ------------------------------------------


@router.post("/datasets/{dataset}/slices/from_query", **ok(Slice, *QUERY, 409, status=201))
def create_slice_from_query(dataset: str, body: SliceFromQueryIn, service: ServiceDep
                            ) -> dict[str, Any]:
    """A slice holding a snapshot of what the query matches now (items, or with
    ``target="objects"`` annotations/predictions)."""
    return service.create_slice_from_query(dataset, body.name, body.query,
                                           target=body.target, slice=body.slice,
                                           description=body.description)


@router.post("/slices/{slice_id}/items/from_query", **ok(SliceAdded, *QUERY))
def slice_append_query(slice_id: str, body: SliceQueryIn, service: ServiceDep
                       ) -> dict[str, Any]:
    """Add the items a query matches now (within the slice ``within``, if given) to an
    item slice, in the database: a large selection is never sent as ids."""
    return service.slice_append_query(slice_id, body.query, within=body.within)


@router.post("/slices/{slice_id}/items/remove_query", **ok(SliceRemoved, *QUERY))
def slice_remove_query(slice_id: str, body: SliceQueryIn, service: ServiceDep
                       ) -> dict[str, Any]:
    """Take the items a query matches now (within ``within``) out of an item slice."""
    return service.slice_remove_query(slice_id, body.query, within=body.within)


@router.post("/datasets/{dataset}/slices/combine", **ok(Slice, *CREATE, status=201))
def combine_slices(dataset: str, body: CombineIn, service: ServiceDep) -> dict[str, Any]:
    """A new slice: union, intersection or difference (first minus the rest) of slices
    (by name or id) of one kind."""
    return service.combine_slices(dataset, body.name, body.operation, body.slices,
                                  description=body.description)


@router.get("/slices/{slice_id}/summary", **ok(Slice, *READ))
def slice_summary(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    """Slice info with its member count, for item and object slices alike."""
    return service.slice_summary(slice_id)


@router.get("/slices/{slice_id}/objects", **ok(QueryObjectsPage, *QUERY))
def slice_objects(slice_id: str, service: ServiceDep,
                  page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
                  cursor: Annotated[str | None, Query(max_length=GET_CURSOR,
                                                      pattern=r"^[A-Za-z0-9_=-]*$")] = None
                  ) -> dict[str, Any]:
    """A page of an object slice's annotations and predictions."""
    return service.slice_objects(slice_id, page_size=page_size, cursor=cursor)


@router.delete("/slices/{slice_id}/objects", **ok(SliceRemoved, *READ))
def delete_slice_objects(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    """Empty an object slice (the slice stays)."""
    return service.delete_slice_objects(slice_id)


@router.get("/slices/{slice_id}/contents", **ok(SliceContents, *READ))
def slice_contents(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    """What a slice holds: items with their ground truth, or its objects with their
    items, as payloads."""
    return service.slice_contents(slice_id)


@router.get("/slices/{slice_id}/export", **ok(CocoExport, *READ))
def export_slice(slice_id: str, service: ServiceDep,
                 format: ExportFormat = "coco"  # noqa: A002
                 ) -> dict[str, Any]:
    """The slice as COCO instances JSON (object slices: their objects, predictions
    with ``score``)."""
    if format != "coco":
        raise ValidationError(f"unknown export format {format!r}; supported: coco")
    return export_slice_contents(service.slice_contents(slice_id))


# --- insights -----------------------------------------------------------------------


@router.get("/datasets/{dataset}/insights", **ok(Insights, *QUERY))
def insights(dataset: str, service: ServiceDep,
             slice: Annotated[str | None, Query(max_length=255)] = None,  # noqa: A002
             query: Annotated[str | None, Query(max_length=GET_QUERY)] = None,
             metadata_sample: Annotated[int, Query(ge=1, le=MAX_METADATA_SAMPLE)] = 1000,
             fresh: bool = False) -> dict[str, Any]:
    """Chart data for the dataset, a slice and/or an item query; every bucket carries
    the query that selects exactly its rows. Longer queries: POST with a body."""
    return service.insights(dataset, slice=slice, query=query,
                            metadata_sample=metadata_sample, fresh=fresh)


@router.post("/datasets/{dataset}/insights", **ok(Insights, *QUERY))
def insights_post(dataset: str, body: InsightsIn, service: ServiceDep) -> dict[str, Any]:
    """Insights with the scope in a JSON body (for long queries)."""
    return service.insights(dataset, slice=body.slice, query=body.query,
                            metadata_sample=body.metadata_sample, fresh=body.fresh)
