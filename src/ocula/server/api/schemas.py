"""The shapes ``/api/v1`` answers with, for ``/openapi.json`` and ``/docs``.

The service returns JSON-able dicts; these models describe them. Each model allows
fields it does not name (``extra="allow"``): a field added to a payload later is not a
break of the contract, and the models never filter what a route returns. Open-ended
parts (metadata, geometry, insights buckets, COCO export, metrics tables) are
``dict[str, Any]``.

Routes document them without validating each answer against them (:func:`ok`): the
answer stays validated as a plain JSON object or array, which pydantic-core checks and
writes in Rust. Validating through the models costs 6-7 times more on a page of 5,000
items (about 21 ms against 3.5 ms), and ``response_model=None`` costs 30 times more
(FastAPI then encodes the answer in Python). ``tests/server/test_schema_conformance.py``
checks real answers against these schemas instead.

Every error answer, from any layer (``errors.py``, ``guard.py``, ``limits.py``), is
:class:`ErrorBody`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import models_json_schema

Json = dict[str, Any]


class Open(BaseModel):
    """A payload that may carry fields beyond those named."""

    model_config = ConfigDict(extra="allow")


# --- errors -------------------------------------------------------------------------


class ErrorBody(Open):
    """Every error answer: a stable code, a message, and where it applies, what it is
    about (``reference_id``) and details (``info``: each entry of a rejected batch, the
    paths of a lone surrogate, pydantic's ``errors`` for a malformed request)."""

    error: str = Field(description="Stable code: not_found, conflict, invalid, "
                                   "batch_rejected, bad_query, unauthorized, too_large, "
                                   "unsupported_media_type, internal, ...")
    detail: str = Field(description="What went wrong, for people")
    reference_id: str | None = None
    info: Json | None = None


_ERRORS = {
    400: "The query text does not parse (line and column in the detail)",
    401: "No live API key (challenges with Bearer)",
    404: "Something the request names does not exist",
    409: "The name is taken; or a dataset named by a name that several datasets share "
         "(error ambiguous_name, info.ids lists them: name it by id); or an edit was "
         "made against a state that has changed since (nothing was written; "
         "info.current holds the stored state)",
    413: "The body is larger than the server's limit",
    415: "A write in a content type other than application/json (or multipart where "
         "files are uploaded)",
    422: "The request is malformed or a value is refused; nothing was written",
    500: "Unexpected server error (no stack trace)",
    501: "Something Ocula does not support, named in the detail",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting these error statuses with :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _ERRORS[code]} for code in codes}


REF = "#/components/schemas/{model}"
# Every model a route documents with ok(), added to the OpenAPI components by
# install_openapi (FastAPI only registers models it validates with).
_DOCUMENTED: dict[str, type[BaseModel]] = {}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    _DOCUMENTED[model.__name__] = model
    return {"$ref": REF.format(model=model.__name__)}


def ok(model: type[BaseModel] | list[type[BaseModel]] | tuple[type[BaseModel], ...],
       *codes: int, status: int = 200) -> dict[str, Any]:
    """Route keyword arguments: the answer (``status``) is ``model``, ``[model]`` (a JSON
    array of it) or ``(a, b)`` (one of these), documented but not validated against it
    (see the module docstring); the error ``codes`` are :class:`ErrorBody`."""
    if isinstance(model, list):
        schema: dict[str, Any] = {"type": "array", "items": _ref(model[0])}
        plain: Any = list[dict[str, Any]]
    elif isinstance(model, tuple):
        schema, plain = {"anyOf": [_ref(m) for m in model]}, dict[str, Any]
    else:
        schema, plain = _ref(model), dict[str, Any]
    return {"response_model": Annotated[plain, WithJsonSchema(schema)], "status_code": status,
            "responses": errors(*codes)}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` carry the schemas of the models routes document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()  # cached by FastAPI until the routes change
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        if not all(name in components for name in _DOCUMENTED):
            _, defs = models_json_schema([(m, "serialization") for m in _DOCUMENTED.values()],
                                         ref_template=REF)
            for name, schema in defs.get("$defs", {}).items():
                components.setdefault(name, schema)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


# Errors every secured route can answer (the app adds them when it mounts the routers).
# 409: any route that takes a dataset (in its path, query or body) may be given a name
# that several datasets share.
SECURED = errors(401, 409, 422, 500)
READ = (404,)
WRITE = (404, 413, 415)
CREATE = (404, 409, 413, 415)
QUERY = (400, 404, 413, 415)


# --- datasets, items, labels --------------------------------------------------------


class Dataset(Open):
    id: str
    name: str
    allowed_types: list[str] | None
    metadata: Json
    created_at: str | None


class NamedRef(Open):
    id: str
    name: str


class DatasetInfo(Open):
    dataset_id: str
    name: str
    length: int
    annotation_count: int
    annotation_version: int
    labels: dict[str, int]
    allowed_types: list[str] | None
    slice_ids: list[str]
    slices: list[NamedRef]
    model_run_ids: list[str]
    model_runs: list[NamedRef]
    metadata: Json
    created_at: str | None


class Deleted(Open):
    deleted: str = Field(description="The id of what was deleted")


class Version(Open):
    version: int
    name: str | None
    message: str | None = None
    created_at: str | None = None


class Item(Open):
    id: str
    reference_id: str
    image_url: str | None
    original_image_url: str | None
    width: int | None
    height: int | None
    metadata: Json


class ItemPage(Open):
    items: list[Item]
    next_cursor: str | None = Field(description="Pass back as ``after``; null: the end")


class LabelObject(Open):
    """An annotation or prediction in Nucleus' JSON form."""

    id: str
    type: str
    label: str
    geometry: Json
    reference_id: str
    annotation_id: str | None
    metadata: Json
    area: float | None = None
    confidence: float | None = None
    iscrowd: bool | None = None
    class_pdf: dict[str, float] | None = None
    version: int | None = Field(None, description="Ground truth in an item's detail and in "
                                "edits: its version token, the 'expected' of an edit of it")


class ItemDetail(Open):
    item: Item
    annotations: dict[str, list[LabelObject]] = Field(description="By annotation type")
    predictions: dict[str, Any] = Field(description="By run id (with_predictions=true)")


class AppendResult(Open):
    new_items: int
    updated_items: int
    ignored_items: int
    errors: list[ErrorBody] = Field(description="Items skipped (on_error=skip)")
    dataset_id: str | None = None


class Job(Open):
    job_id: str
    id: str
    type: str
    status: str = Field(description="Queued, Running, Completed, Errored_...")
    message: str | None
    completed_steps: int
    total_steps: int
    job_progress: float
    errors: list[Any]
    result: Any = Field(description="What the work returned, once completed")
    created_at: str | None
    updated_at: str | None


class StagedUpload(Open):
    filename: str | None
    upload_id: str
    size: int


class Uploads(Open):
    uploads: list[StagedUpload]


class MetadataUpdated(Open):
    updated_items: int


class ItemDeleted(Deleted):
    reference_id: str


class AnnotateResult(Open):
    annotations_processed: int
    annotations_ignored: int
    annotations_replaced: int
    version: int | None
    dataset_id: str


class AnnotationsDeleted(Open):
    annotations_deleted: int
    version: int | None


class VersionTag(Open):
    version: int
    name: str


class EditOutcome(Open):
    """What one operation of an edit did, and the operation that undoes it."""

    op: str
    id: str = Field(description="The annotation's id")
    version: int = Field(description="Its new version token")
    before: LabelObject | None = Field(description="The annotation before (None: absent)")
    after: LabelObject | None = Field(description="The annotation after (None: deleted)")
    inverse: Json = Field(description="The operation that undoes this one (send it back "
                                      "to undo; the inverse's inverse redoes)")


class EditResult(Open):
    version: int = Field(description="The label version the edit wrote")
    reference_id: str
    item_id: str
    author: str
    edits: list[EditOutcome]


class HistoryEntry(Open):
    """One edit operation of an item's labels: who, when, before and after."""

    version: int
    op: str
    id: str
    prediction_id: str | None = Field(description="accept_prediction: the prediction copied")
    author: str
    message: str | None
    created_at: str
    before: LabelObject | None
    after: LabelObject | None


# --- slices ---------------------------------------------------------------------------


class Slice(Open):
    slice_id: str
    id: str
    name: str
    dataset_id: str
    type: str = Field(description="dataset_item or object")
    kind: str = Field(description="item or object")
    description: str | None
    query: str | None = Field(description="The query it was taken from, if any")
    length: int
    pending_job_count: int
    created_at: str | None


class SliceAdded(Open):
    slice_id: str
    added: int


class SliceRemoved(Open):
    slice_id: str
    removed: int


class QueriedObject(LabelObject):
    kind: str = Field(description="annotation or prediction")
    item_id: str
    run: str | None = None
    status: str | None = None
    iou: float | None = None
    match: Json | None = Field(default=None, description="the matched partner of a TP: "
                               "id, kind, type, label, geometry")


class SliceContents(Open):
    kind: str
    items: list[Item]
    annotations: list[LabelObject]
    predictions: list[LabelObject]


class CocoExport(Open):
    """COCO instances JSON."""

    images: list[Json]
    annotations: list[Json]
    categories: list[Json]


# --- models, runs ---------------------------------------------------------------------


class Model(Open):
    id: str
    model_id: str
    name: str
    reference_id: str
    metadata: Json
    created_at: str | None


class Run(Open):
    model_run_id: str
    id: str
    name: str
    model_id: str
    model_name: str
    dataset_id: str
    prediction_count: int
    metadata: Json
    committed: bool
    commit_config: Json | None
    committed_version: int | None
    created_at: str | None
    committed_at: str | None


class PredictResult(Open):
    model_run_id: str
    predictions_processed: int
    predictions_ignored: int


class Metrics(Open):
    """COCO summary (``stats``), per-class AP/AR, operating points, PR curves and the
    confusion matrix."""

    model_run_id: str
    iou_type: str
    stats: Json
    per_class: list[Json]


class Failure(LabelObject):
    iou: float | None = None
    status: str | None = None


class FailureSummary(Open):
    iou_threshold: float | None
    iou_type: str
    false_positives: dict[str, int]
    false_negatives: dict[str, int]


class _ErrorTotals(BaseModel):
    name: str
    description: str
    delta_ap: float
    fixed_ap: float
    count: int
    truncated: bool


class ErrorKind(_ErrorTotals):
    """One TIDE error type: its dAP, count and the ids behind it (aligned lists)."""

    prediction_ids: list[str | None]
    annotation_ids: list[str | None]
    suppressor_ids: list[str | None]
    items: list[str]
    labels: list[str]
    scores: list[float | None]
    ious: list[float]
    becomes_tp: list[bool]


class SpecialErrorKind(_ErrorTotals):
    """TIDE's ``fp`` (with prediction ids) or ``fn`` (with annotation ids)."""

    prediction_ids: list[str] | None = None
    annotation_ids: list[str] | None = None


class ClassErrors(BaseModel):
    label: str
    ap: float | None
    num_ground_truth: int
    num_predictions: int
    num_true_positives: int
    delta_ap: dict[str, float | None]
    counts: dict[str, int]


class TideConfigOut(BaseModel):
    pos_threshold: float
    background_threshold: float
    max_dets: int


class ErrorBreakdown(Open):
    """TIDE's error breakdown of a run: the AP gained by fixing each kind of error."""

    model_run_id: str
    slice: str | None
    query: str | None = None
    annotation_version: int | None
    iou_type: str
    analysis: str
    config: TideConfigOut
    ap: float
    num_ground_truth: int
    num_predictions: int
    num_true_positives: int
    errors: dict[str, ErrorKind]
    special: dict[str, SpecialErrorKind]
    per_class: list[ClassErrors]


class Comparison(Open):
    run_a: str
    run_b: str
    stats_a: Json
    stats_b: Json
    delta: Json
    only_a_right: list[Any]
    only_b_right: list[Any]
    per_class: list[Json] = Field(description="Per class: AP, AP50, AR of a and b, delta")
    only_a_right_count: int
    only_b_right_count: int


class ComparisonItems(Open):
    items: list[Item]
    next_cursor: str | None = Field(description="Pass back as ``cursor``; null: the end")
    total: int


# --- queries, insights ----------------------------------------------------------------


class QueryItemsPage(Open):
    items: list[Item]
    next_cursor: str | None = Field(description="Pass back as ``cursor``; null: the end")
    description: str
    query: str
    total: int | None = Field(None, description="With with_total=true")


class QueryObjectsPage(Open):
    objects: list[QueriedObject]
    next_cursor: str | None
    description: str
    query: str
    total: int | None = None


class QueryDescription(Open):
    valid: bool
    description: str
    query: str


class Insights(Open):
    """Chart data; every bucket carries the ``query`` that selects exactly its rows."""

    scope: Json
    labels: Json
    annotations_per_item: list[Json]
    area: list[Json]
    aspect: list[Json]
    metadata: Json
    runs: Json


class Health(Open):
    status: str


# --- scenes and tracks --------------------------------------------------------------


class SceneSummary(Open):
    id: str
    reference_id: str
    frame_rate: float | None
    video_location: str | None = Field(description="The video its frames were cut from")
    metadata: Json
    length: int = Field(description="Number of frames")
    created_at: str | None


class SceneFrame(Item):
    frame_index: int


class SceneDetail(SceneSummary):
    dataset_id: str
    frames: list[SceneFrame]
    tracks: list[str] = Field(description="Ids of the tracks on its frames")


class ScenesAppended(Open):
    dataset_id: str
    new_scenes: int
    updated_scenes: int
    ignored_scenes: int
    new_items: int
    updated_items: int
    errors: list[Json]


class ScenesUpdated(Open):
    updated_scenes: int


class SceneDeleted(Deleted):
    reference_id: str
    deleted_items: int


class Track(Open):
    reference_id: str
    dataset_id: str
    metadata: Json


class TracksDeleted(Open):
    deleted_tracks: int


# --- taxonomies -------------------------------------------------------------------------


class Taxonomy(Open):
    name: str
    type: str
    labels: list[str]


class TaxonomyChanged(Open):
    dataset_id: str
    taxonomy_name: str
    status: str
