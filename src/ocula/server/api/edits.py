"""``/datasets/{dataset}/item/edits`` and ``/item/history``: interactive label edits.

One request is one service call (``services/edits.py``): a list of operations on one
item's labels, written as one version, or a 409 naming the annotation that changed
since the state the edit was made against. The author is the caller's API key (or a
browser session's key); on a server without keys, the body's ``author`` or the
server's own user.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ocula.core.services.edits import MAX_EDITS, MAX_HISTORY
from ocula.server.api.common import NAME_PATTERN, OBJECT_ENTRY, REF_STRING
from ocula.server.api.schemas import CREATE, READ, EditResult, HistoryEntry, ok
from ocula.server.deps import ServiceDep, require_key

router = APIRouter(tags=["edits"])

_ID = {"type": "string", "minLength": 1, "maxLength": 40, "pattern": NAME_PATTERN}
_TOKEN = {"type": "integer", "minimum": 0,
          "description": "The annotation's version token as last seen"}


def _op(name: str, required: dict[str, Any], optional: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    return {"type": "object", "required": ["op", *required], "additionalProperties": False,
            "properties": {"op": {"const": name}, **required, **(optional or {})}}


# Documented here, checked by the service, which names each bad operation by its index.
EDIT_ENTRY: dict[str, Any] = {"oneOf": [
    _op("add", {"annotation": {**OBJECT_ENTRY, "required": ["type", "label", "geometry"]}}),
    {**_op("update", {"id": _ID, "expected": _TOKEN},
           {"label": REF_STRING, "geometry": {"type": "object", "description": (
               "The geometry fields to replace, of the annotation's own type: a box's "
               "x, y, width, height; a polygon's or line's vertices (the whole list of "
               "{x, y} finite numbers, at least 3 or 2)")},
            "metadata": {"type": ["object", "null"]},
            "area": {"type": "number", "minimum": 0}}),
     # Something to change; an area only with a new geometry.
     "anyOf": [{"required": [key]} for key in ("label", "geometry", "metadata")],
     "dependentRequired": {"area": ["geometry"]}},
    _op("delete", {"id": _ID, "expected": _TOKEN}),
    _op("restore", {"id": _ID, "expected": _TOKEN}),
    _op("accept_prediction", {"prediction_id": _ID},
        {"label": REF_STRING, "annotation_id": REF_STRING}),
]}


class EditIn(BaseModel):
    reference_id: Annotated[str, Field(max_length=1024, json_schema_extra={"minLength": 1})]
    edits: Annotated[list[Any], Field(max_length=MAX_EDITS, json_schema_extra={
        "minItems": 1, "items": EDIT_ENTRY})]
    author: Annotated[str, Field(min_length=1, max_length=255, json_schema_extra={
        "pattern": NAME_PATTERN})] | None = Field(
        None, description="Recorded only by a server without API keys")
    # No NUL: the service refuses what no database can store.
    message: Annotated[str, Field(max_length=10_000, json_schema_extra={
        "pattern": r"^[^\x00]*$"})] | None = None


Caller = Annotated[str | None, Depends(require_key)]


@router.post("/datasets/{dataset}/item/edits", **ok(EditResult, *CREATE))
def edit_annotations(dataset: str, body: EditIn, service: ServiceDep, caller: Caller
                     ) -> dict[str, Any]:
    """Apply edit operations (add, update, delete, restore, accept_prediction) to one
    item's labels as one new version; 409 when an annotation changed since ``expected``,
    422 naming the operation that is malformed or invalid. Each outcome carries the
    ``inverse`` operation that undoes it."""
    return service.edit_annotations(dataset, body.reference_id, body.edits,
                                    author=caller if caller is not None else body.author,
                                    message=body.message)


@router.get("/datasets/{dataset}/item/history", **ok([HistoryEntry], *READ))
def item_history(dataset: str, service: ServiceDep,
                 reference_id: Annotated[str, Query(max_length=1024)],
                 limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100
                 ) -> list[dict[str, Any]]:
    """The edits of one item's labels, newest first: who, when, before and after."""
    return service.item_history(dataset, reference_id, limit=limit)
