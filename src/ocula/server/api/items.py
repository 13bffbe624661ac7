"""``/datasets/{dataset}/items``: append (with staged uploads), read, update, delete.

Images on the client's disk reach the server in two steps: ``POST /uploads`` stores the
bytes (multipart, many files per request) and answers an upload id per file; the append
then names, per item, ``uploads: {reference_id: upload_id}``. The service reads uploaded
bytes instead of the item's location, which stays what the client gave (its path), as
in embedded use. Large appends can run as a job (``?async=true``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from ocula.core.types import DatasetItem
from ocula.errors import ValidationError
from ocula.server.api.common import ITEM_ENTRY, MAX_INT, MAX_LIST, Index, entries
from ocula.server.api.schemas import (
    READ,
    WRITE,
    AppendResult,
    ItemDeleted,
    ItemDetail,
    ItemPage,
    Job,
    MetadataUpdated,
    Uploads,
    ok,
)
from ocula.server.deps import JobsDep, ServiceDep, UploadsDep
from ocula.server.wire import UPLOAD_ID, UploadArea, items_from_json

router = APIRouter(tags=["items"])
# Progress granularity of an async append with on_error="skip".
JOB_CHUNK = 1000
MAX_UPLOAD_FILES = 10_000


UploadId = Annotated[str, WithJsonSchema({"type": "string", "pattern": UPLOAD_ID.pattern})]


class AppendIn(BaseModel):
    items: entries(ITEM_ENTRY)
    update: bool = False
    copy_media: bool = False
    on_error: Literal["raise", "skip"] = "raise"
    uploads: dict[str, UploadId] = Field(default_factory=dict,
                                    description="reference_id -> upload id from POST /uploads")


class MetadataUpdate(BaseModel):
    reference_id: Annotated[str, Field(max_length=1024, json_schema_extra={"minLength": 1})]
    metadata: dict[str, Any]


class MetadataUpdateIn(BaseModel):
    updates: Annotated[list[MetadataUpdate], Field(max_length=MAX_LIST)]
    replace: bool = False


def run_append(service: Any, uploads: UploadArea, dataset: str, body: AppendIn,
               items: list[DatasetItem], progress: Any = None) -> dict[str, Any]:
    """One append call (or, for ``skip`` with progress, chunks of it) of ``items`` (read
    from ``body``); the staged bytes are dropped afterwards (stored ones now live in the
    media store)."""
    staged = uploads.resolve(body.uploads)
    try:
        return _append(service, dataset, body, items, staged, progress)
    finally:
        # Appended or rejected, the bytes are not needed again: a retry uploads anew.
        staged.discard()


def _append(service: Any, dataset: str, body: AppendIn, items: list[DatasetItem],
            staged: Any, progress: Any) -> dict[str, Any]:
    kwargs = {"update": body.update, "copy_media": body.copy_media, "uploads": staged,
              "on_error": body.on_error}
    if progress is None or body.on_error == "raise":
        result = service.append(dataset, items, **kwargs)
    else:
        result = {"new_items": 0, "updated_items": 0, "ignored_items": 0, "errors": []}
        for start in range(0, len(items), JOB_CHUNK):
            part = service.append(dataset, items[start:start + JOB_CHUNK], **kwargs)
            for key in ("new_items", "updated_items", "ignored_items"):
                result[key] += part[key]
            result["errors"] += part["errors"]
            result["dataset_id"] = part["dataset_id"]
            progress(min(start + JOB_CHUNK, len(items)), len(items))
    return result


@router.post("/datasets/{dataset}/items", **ok((AppendResult, Job), *WRITE))
def append(dataset: str, body: AppendIn, service: ServiceDep, uploads: UploadsDep,
           jobs: JobsDep, run_async: Annotated[bool, Query(alias="async")] = False
           ) -> dict[str, Any]:
    """Add items (idempotent by reference id). With ``async=true`` the append runs as a
    job and this returns the job; poll ``GET /jobs/{job_id}`` for its result."""
    items = items_from_json(body.items)  # a malformed entry: a 422 now, not a failed job
    if not run_async:
        return run_append(service, uploads, dataset, body, items)
    service.get_dataset(dataset)  # a 404 now rather than a failed job
    return jobs.submit("append", lambda progress: run_append(service, uploads, dataset,
                                                             body, items, progress),
                       total_steps=len(body.items), message=f"append to {dataset}")


@router.post("/uploads", **ok(Uploads, 400, 413, 415), openapi_extra={"requestBody": {
    "required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {"file": {
            "type": "array", "minItems": 1, "maxItems": MAX_UPLOAD_FILES,
            "items": {"type": "string", "format": "binary"}}}}}}}})
async def upload_files(request: Request, uploads: UploadsDep) -> dict[str, Any]:
    """Stage image files (multipart, one or more parts named ``file``) for an append.
    Answers ``{"uploads": [{"filename", "upload_id", "size"}]}`` in the parts' order."""
    form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=100)
    staged = []
    try:
        for part in form.getlist("file"):
            if isinstance(part, str):
                raise ValidationError("every 'file' part must be a file")
            upload_id, size = await run_in_threadpool(uploads.put, part.file)
            staged.append({"filename": part.filename, "upload_id": upload_id, "size": size})
    finally:
        await form.close()
    return {"uploads": staged}


@router.get("/datasets/{dataset}/items", **ok(ItemPage, *READ))
def list_items(dataset: str, service: ServiceDep,
               limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
               after: Annotated[str | None, Query(max_length=40, pattern=r"^\d+$")] = None
               ) -> dict[str, Any]:
    """Items in insertion order, a page at a time (``next_cursor`` -> ``after``)."""
    if after is not None and int(after) > MAX_INT:
        raise ValidationError(f"malformed page cursor {after!r}")
    return service.list_items(dataset, limit=limit, after=after)


@router.get("/datasets/{dataset}/item", **ok(ItemDetail, *READ))
def get_item(dataset: str, service: ServiceDep,
             reference_id: Annotated[str | None, Query(max_length=1024)] = None,
             item_id: Annotated[str | None, Query(max_length=40)] = None,
             index: Index | None = None, with_predictions: bool = False) -> dict[str, Any]:
    """One item with its annotations grouped by type, found by reference id, item id or
    position (give one)."""
    return service.get_item(dataset, reference_id=reference_id, item_id=item_id, index=index,
                            with_predictions=with_predictions)


@router.delete("/datasets/{dataset}/item", **ok(ItemDeleted, *READ))
def delete_item(dataset: str, reference_id: Annotated[str, Query(max_length=1024)],
                service: ServiceDep) -> dict[str, Any]:
    """Delete an item with its annotations, predictions and matches."""
    return service.delete_item(dataset, reference_id)


@router.post("/datasets/{dataset}/items/metadata", **ok(MetadataUpdated, *WRITE))
def update_metadata(dataset: str, body: MetadataUpdateIn, service: ServiceDep
                    ) -> dict[str, Any]:
    """Merge (or with ``replace``, overwrite) metadata: ``updates`` is a list of
    ``{reference_id, metadata}``."""
    return service.update_metadata(dataset, [u.model_dump() for u in body.updates],
                                   replace=body.replace)
