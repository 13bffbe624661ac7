"""The Scale Nucleus wire protocol (as ``scale-nucleus`` 0.22 speaks it), mounted under
``/v1/nucleus``: point ``NucleusClient(key, endpoint=".../v1/nucleus")`` at Ocula.

Every route is a translation: Nucleus JSON in, one or more service calls, Nucleus JSON
out (shapes in :mod:`nucleus_format`), so data sent through either client is the same
data. Appends run as jobs, as Nucleus' async pipeline does; remote-URL appends use a
signed upload URL served here (``public_router``: the client PUTs NDJSON to it without
credentials). Models and runs live in :mod:`nucleus_runs`. Routes the client has but
Ocula does not answer 404 JSON naming the route.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from ocula.core.query.parser import parse as parse_query
from ocula.core.query.plan import MAX_PAGE_SIZE
from ocula.core.validation import check_metadata
from ocula.errors import (
    BatchError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    OculaError,
    QueryError,
    ValidationError,
)
from ocula.server.api.common import MAX_INT
from ocula.server.compat import (
    nucleus_autotags,
    nucleus_dedup,
    nucleus_deletes,
    nucleus_exports,
    nucleus_jobs,
    nucleus_objects,
    nucleus_runs,
    nucleus_scenes,
    nucleus_tags,
    nucleus_taxonomies,
    nucleus_validate,
)
from ocula.server.compat import nucleus_format as fmt
from ocula.server.compat.nucleus_batches import nucleus_keys, write_known
from ocula.server.compat.nucleus_exports import (
    UrlsDep,
    export_rows,
    no_query,
    page_size,
    page_token,
)
from ocula.server.compat.nucleus_masks import NucleusBody, with_masks
from ocula.server.compat.nucleus_uploads import drop_path, read_drop
from ocula.server.deps import (
    JobsDep,
    ServiceDep,
    SignerDep,
    public_origin,
)
from ocula.server.signing import use_once
from ocula.server.wire import (
    items_from_json,
    json_kind,
    json_rows,
    json_strings,
    loads_json,
    objects_from_json,
)

router = APIRouter()
public_router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
MAX_PAGE = 100_000
MAX_QUERY_PAGE = MAX_PAGE_SIZE  # the query engine's largest page
# Largest `items` part of a multipart append (Nucleus sends 10 items per request).
MAX_FORM_FIELD = 16 * 1024 * 1024




# --- datasets ---------------------------------------------------------------------


@router.post("/dataset/create")
def create_dataset(body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    ds = service.create_dataset(body.get("name"), is_scene=bool(body.get("is_scene")))
    return {"dataset_id": ds["id"], "name": ds["name"]}


@router.get("/dataset/")
@router.get("/dataset")
def list_datasets(service: ServiceDep) -> dict[str, Any]:
    rows = service.list_datasets()
    return {"dataset_ids": [d["id"] for d in rows], "dataset_names": [d["name"] for d in rows]}


@router.get("/dataset/details")
def dataset_details(service: ServiceDep) -> list[dict[str, Any]]:
    return [{"id": d["id"], "name": d["name"], "is_public": False}
            for d in service.list_datasets()]


@router.get("/dataset/{ds}/info")
def dataset_info(ds: str, service: ServiceDep) -> dict[str, Any]:
    info = service.dataset_info(ds)
    return {"dataset_id": info["dataset_id"], "name": info["name"], "length": info["length"],
            "model_run_ids": info["model_run_ids"], "slice_ids": info["slice_ids"],
            "annotation_metadata_schema": None, "item_metadata_schema": None,
            "tags": service.dataset_tags(ds)}


@router.get("/dataset/{ds}/name")
def dataset_name(ds: str, service: ServiceDep) -> dict[str, Any]:
    return {"name": service.get_dataset(ds)["name"]}


@router.get("/dataset/{ds}/is_scene")
def dataset_is_scene(ds: str, service: ServiceDep) -> dict[str, Any]:
    return {"is_scene": service.get_dataset(ds)["is_scene"]}


@router.get("/dataset/{ds}/use_privacy_mode")
def dataset_privacy_mode(ds: str, service: ServiceDep) -> dict[str, Any]:
    service.get_dataset(ds)
    return {"use_privacy_mode": False}


@router.get("/dataset/{ds}/size")
def dataset_size(ds: str, service: ServiceDep) -> dict[str, Any]:
    return {"count": service.dataset_info(ds)["length"]}


@router.get("/dataset/{ds}/model_runs")
def dataset_model_runs(ds: str, service: ServiceDep) -> list[str]:
    return service.dataset_info(ds)["model_run_ids"]


@router.delete("/dataset/{ds}")
def delete_dataset(ds: str, service: ServiceDep) -> dict[str, Any]:
    """Nucleus' answer, word for word (clients compare it); in Ocula the dataset is
    already gone when it arrives."""
    service.delete_dataset(ds)
    return {"message": "Beginning dataset deletion..."}


# --- appending items --------------------------------------------------------------


@router.get("/dataset/{ds}/signedUrl/{request_id}")
def signed_url(ds: str, request_id: str, request: Request, service: ServiceDep,
               signer: SignerDep) -> dict[str, Any]:
    """Where the client PUTs its NDJSON (items or annotations) before the async call."""
    dataset_id = service.get_dataset(ds)["id"]
    drop_path(service, dataset_id, request_id)
    ttl = request.app.state.settings.upload_url_ttl_s
    query = urlencode(signer.sign(f"upload:{dataset_id}:{request_id}", ttl))
    # This router does not know its mount point: take it from the request's own path.
    mount = request.url.path[:request.url.path.rindex("/dataset/")]
    return {"signed_url": f"{public_origin(request)}{mount}/upload/{dataset_id}/{request_id}"
                          f"?{query}"}


@public_router.put("/upload/{ds}/{request_id}")
async def receive_upload(ds: str, request_id: str, request: Request, service: ServiceDep,
                         signer: SignerDep,
                         exp: Annotated[str | None, Query(max_length=20)] = None,
                         sig: Annotated[str | None, Query(max_length=128)] = None
                         ) -> dict[str, Any]:
    """The signed URL: no key, the signature is the credential, good for one PUT."""
    if not signer.check(f"upload:{ds}:{request_id}", exp, sig):
        raise NotFoundError("unknown or expired upload URL")
    path = drop_path(service, ds, request_id)
    await run_in_threadpool(use_once, path.parent / "used", str(exp), str(sig))
    tmp = path.with_suffix(".part")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        async for chunk in request.stream():
            await run_in_threadpool(out.write, chunk)
    tmp.replace(path)
    return {}



def _append_job(service: Any, ds: str, items: list[Any], uploads: dict[str, bytes],
                update: bool) -> Any:
    def work(progress: Any) -> dict[str, Any]:
        result = service.append(ds, items, update=update, uploads=uploads, on_error="skip")
        progress(len(items), len(items))
        return fmt.append_result(result, items)
    return work


@router.post("/dataset/{ds}/append")
async def append(ds: str, request: Request, service: ServiceDep, jobs: JobsDep,
                 run_async: Annotated[int, Query(alias="async", ge=0, le=1)] = 0
                 ) -> dict[str, Any]:
    """Items as multipart (``items`` JSON part + one ``image`` part per item, in order),
    as JSON ``{requestId, update}`` naming an NDJSON upload, or as JSON ``{items}``."""
    dataset = await run_in_threadpool(service.get_dataset, ds)
    if dataset["is_scene"]:  # refused now, not in a job that fails later
        raise ConflictError(f"dataset {dataset['name']!r} is a scene dataset: append "
                              "scenes (VideoScene), not items")
    dataset_id = dataset["id"]
    uploads: dict[str, bytes] = {}
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form(max_files=1000, max_fields=10, max_part_size=MAX_FORM_FIELD)
        try:
            raw = form.get("items")
            if raw is None:
                raise ValidationError("the multipart append needs an 'items' JSON part")
            rows = loads_json(raw if isinstance(raw, str) else await raw.read(),
                              "the 'items' part")
            if not isinstance(rows, list):
                raise ValidationError("the 'items' part must be a JSON array of items")
            images = [p for p in form.getlist("image") if not isinstance(p, str)]
            uploads = await _match_images(rows, images)
        finally:
            await form.close()
        update = any(isinstance(r, dict) and r.get("update") for r in rows)
    else:
        body = loads_json(await request.body(), "the body")
        if not isinstance(body, dict):
            raise ValidationError("append expects a JSON object")
        update = bool(body.get("update"))
        if body.get("requestId") is not None:
            rows = await run_in_threadpool(read_drop, service, dataset_id,
                                           str(body["requestId"]))
        else:
            rows = body.get("items")
    if not isinstance(rows, list):
        raise ValidationError("append expects a list of items")
    items = items_from_json(rows)
    # The append skips items it cannot store (an unreadable image) and reports them, as
    # Nucleus does; metadata the catalog refuses is the client's error: the whole batch
    # is refused, before anything is written.
    bad = [err for it in items if (err := check_metadata(
        it.metadata, f"item {it.reference_id!r}", it.reference_id)) is not None]
    if bad:
        raise BatchError(bad)
    work = _append_job(service, dataset_id, items, uploads, update)
    if not run_async:
        return await run_in_threadpool(work, lambda *a: None)
    return fmt.job_ref(await run_in_threadpool(
        jobs.submit, "append", work, total_steps=len(items)))


async def _match_images(rows: list[Any], images: list[Any]) -> dict[str, bytes]:
    """reference_id -> bytes: parts pair with items in order; when the counts differ,
    by file name (the client names each part after its local path)."""
    refs = [r.get("reference_id") if isinstance(r, dict) else None for r in rows]
    if len(images) == len(rows):
        return {ref: await part.read() for ref, part in zip(refs, images, strict=True)
                if isinstance(ref, str)}
    by_name = {unquote(p.filename or ""): p for p in images}
    out: dict[str, bytes] = {}
    for ref, row in zip(refs, rows, strict=True):
        part = by_name.get(str(row.get("image_url"))) if isinstance(row, dict) else None
        if isinstance(ref, str) and part is not None:
            out[ref] = await part.read()
    return out


# --- annotations ------------------------------------------------------------------


def _annotations_of(body: dict[str, Any], prediction: bool) -> list[Any]:
    return objects_from_json(json_rows(body, "annotations", "segmentations"),
                             prediction=prediction)


@router.post("/dataset/{ds}/annotate")
def annotate(ds: str, request: NucleusBody, service: ServiceDep, jobs: JobsDep,
             run_async: Annotated[int, Query(alias="async", ge=0, le=1)] = 0
             ) -> dict[str, Any]:
    """Ground truth; the client sums numeric answers over its batches. Segmentations
    with local masks come as a multipart form (``nucleus_masks``)."""
    body = request.body
    update = bool(body.get("update"))
    if body.get("requestId") is not None:
        dataset_id = service.get_dataset(ds)["id"]
        anns = objects_from_json(read_drop(service, dataset_id, str(body["requestId"])),
                                 prediction=False)
    else:
        anns = _annotations_of(body, prediction=False)
    anns = with_masks(anns, request.masks)
    nucleus_scenes.refuse_scene_labels(service, ds, anns)

    def work(progress: Any) -> dict[str, Any]:
        result, errors = write_known(
            lambda objs: service.annotate(ds, objs, update=update), nucleus_keys(anns),
            {"dataset_id": service.get_dataset(ds)["id"], "annotations_processed": 0,
             "annotations_ignored": 0})
        return {"dataset_id": result["dataset_id"],
                "annotations_processed": result["annotations_processed"],
                "annotations_ignored": result["annotations_ignored"], "errors": errors}

    if run_async:
        return fmt.job_ref(jobs.submit("annotate", work, total_steps=len(anns)))
    return work(None)


# --- reading items ----------------------------------------------------------------


@router.get("/dataset/{ds}/refloc/{ref:ref}")
def refloc(ds: str, ref: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    """An item by reference id (percent-encoded in one segment; ``/`` allowed)."""
    return fmt.located(service.get_item(ds, reference_id=ref), urls)


@router.delete("/dataset/{ds}/refloc/{ref:ref}")
def delete_item(ds: str, ref: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_item(ds, ref)


@router.get("/dataset/{ds}/loc/{item_id}")
def loc(ds: str, item_id: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    return fmt.located(service.get_item(ds, item_id=item_id), urls)


@router.get("/dataset/{ds}/iloc/{index}")
def iloc(ds: str, index: int, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    if not 0 <= index <= MAX_INT:
        raise ValidationError(f"item index must be >= 0, got {index}")
    return fmt.located(service.get_item(ds, index=index), urls)


@router.get("/dataset/{ds}/datasetItems")
def dataset_items(ds: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    rows = service.list_items(ds)["items"]
    return {"dataset_items": [fmt.item(r, urls) for r in rows]}


def _page(service: Any, ds: str, body: dict[str, Any]) -> dict[str, Any]:
    return service.list_items(ds, limit=page_size(body), after=page_token(body))


def _query_of(body: dict[str, Any]) -> str | None:
    """The body's query, None when absent or blank."""
    query = body.get("query")
    if query is None or (isinstance(query, str) and not query.strip()):
        return None
    if not isinstance(query, str):
        raise QueryError("query must be a string")
    return query


@router.post("/dataset/{ds}/itemsPage")
@router.post("/dataset/{ds}/queryItemsPage")
def items_page(ds: str, body: JsonBody, service: ServiceDep, urls: UrlsDep
               ) -> dict[str, Any]:
    """A page of items (``pageToken``/``pageSize`` -> ``items``, ``nextPageToken``),
    those matching ``query`` when one is given (Ocula's item query language)."""
    query = _query_of(body)
    if query is not None:
        search = getattr(service, "query_items", None)
        if search is None:
            raise QueryError("the query language is not available on this server yet; "
                             "call without a query to page through all items")
        size = body.get("pageSize") or MAX_PAGE
        if not isinstance(size, int) or size < 1:
            raise ValidationError("pageSize must be a positive integer")
        token = body.get("pageToken")
        page = search(ds, query, page_size=min(size, MAX_QUERY_PAGE),
                      cursor=str(token) if token is not None else None)
    else:
        page = _page(service, ds, body)
    return {"items": [fmt.item(r, urls) for r in page["items"]],
            "nextPageToken": page["next_cursor"]}


# queryObjectsPage's ``patch_mode`` (nucleus.dataset.ObjectQueryType) -> the objects it
# selects in Ocula's object query language. The evaluation modes answer EvaluationMatch
# JSON built from one side of the match (see _match).
_PATCH_MODES = {
    "ground_truth_only": "type = annotation",
    "predictions_only": "type = prediction",
    "iou": "type = prediction and status = tp",
    "false_positive": "type = prediction and status = fp",
    "false_negative": "type = annotation and status = fn",
}


def _split_tail(query: str) -> tuple[str, str]:
    """``query`` as (condition, "order by ... limit ..." tail), so a condition can be
    and-ed to it: the tail starts at the first ``order by``/``limit`` keyword whose
    split reparses to the same query (one inside a string literal does not)."""
    whole = parse_query(query)  # a bad query fails here, at its own positions
    target = (whole.where, whole.order, whole.limit)
    for m in re.finditer(r"(?i)\b(order\s+by|limit)\b", query):
        cond, tail = query[:m.start()], query[m.start():]
        try:
            again = parse_query(f"({cond}) {tail}" if cond.strip() else tail)
        except QueryError:
            continue
        if (again.where, again.order, again.limit) == target:
            return cond, tail
    return query, ""


def _match(obj: dict[str, Any], run_id: str) -> dict[str, Any]:
    """An object of an evaluation mode as Nucleus EvaluationMatch JSON."""
    pred = obj["kind"] == "prediction"
    return {
        "model_run_id": run_id,
        "model_prediction_id": obj.get("id") if pred else None,
        "ground_truth_annotation_id": None if pred else obj.get("id"),
        "model_prediction_label": obj.get("label") if pred else None,
        "ground_truth_annotation_label": None if pred else obj.get("label"),
        "true_positive": obj.get("status") == "tp",
        "iou": obj.get("iou") or 0.0,
        "dataset_item_id": obj.get("item_id"),
        "reference_id": obj.get("reference_id"),
    }


@router.post("/dataset/{ds}/queryObjectsPage")
def objects_page(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """A page of objects matching ``query`` (Ocula's object query language, not
    Nucleus'): ``{query, patch_mode, model_run_id?, pageToken, pageSize}`` ->
    ``{items, nextPageToken}``.

    ``ground_truth_only``/``predictions_only`` answer annotation/prediction JSON (of
    the run ``model_run_id`` when given); ``false_positive``, ``false_negative`` and
    ``iou`` (true positives) answer EvaluationMatch JSON of the committed run
    ``model_run_id`` (required). Ocula stores each side's match status, not the
    matched pair: a false-positive/true-positive match names its prediction (no
    ``ground_truth_annotation_id``), a false-negative its annotation.
    """
    mode = body.get("patch_mode") or "ground_truth_only"
    if not isinstance(mode, str) or mode not in _PATCH_MODES:  # an object is unhashable
        raise ValidationError(f"unknown patch_mode {mode!r}; one of "
                              + ", ".join(sorted(_PATCH_MODES)))
    run_id = body.get("model_run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise ValidationError("model_run_id must be a string")
    evaluation = mode not in ("ground_truth_only", "predictions_only")
    if evaluation and not run_id:
        raise ValidationError(f"patch_mode {mode!r} needs the model_run_id of a "
                              "committed run")
    condition = _PATCH_MODES[mode]
    if run_id:
        run = service.run_info(run_id)
        if run["dataset_id"] != service.get_dataset(ds)["id"]:
            raise NotFoundError(f"model run {run_id!r} is not a run of this dataset")
        name = run["name"]
        condition += ' and run = "' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    query = _query_of(body)
    if query is not None:
        cond, tail = _split_tail(query)
        query = f"{condition} and ({cond}) {tail}" if cond.strip() else f"{condition} {tail}"
    else:
        query = condition
    size = body.get("pageSize") or MAX_QUERY_PAGE
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValidationError("pageSize must be a positive integer")
    token = body.get("pageToken")
    page = service.query_objects(ds, query.strip(), page_size=min(size, MAX_QUERY_PAGE),
                                 cursor=str(token) if token is not None else None)
    objects = page["objects"]
    items = [_match(o, run_id) for o in objects] if evaluation and run_id else objects
    return {"items": items, "nextPageToken": page["next_cursor"]}


@router.get("/dataset/{ds}/exportForTraining")
def export_for_training(ds: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    """Every item with its annotations, one row per item."""
    return {"exportedRows": export_rows(service, ds, service.list_items(ds)["items"], urls)}


@router.post("/dataset/{ds}/exportForTrainingPage")
def export_for_training_page(ds: str, body: JsonBody, service: ServiceDep, urls: UrlsDep
                             ) -> dict[str, Any]:
    no_query(body)
    page = _page(service, ds, body)
    return {"data": export_rows(service, ds, page["items"], urls),
            "nextPageToken": page["next_cursor"]}


@router.post("/dataset/{ds}/metadata")
def update_metadata(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """Merge item metadata (``{metadata: [{reference_id, metadata}], level: "item"}``),
    or scene metadata with ``level: "scene"``."""
    level = body.get("level", "item")
    if level not in ("item", "scene"):
        raise ValidationError(f"level must be 'item' or 'scene', got {level!r}")
    updates = json_rows(body, "metadata")
    if level == "scene":
        return nucleus_scenes.update_scene_metadata(ds, updates, service)
    errors: list[OculaError] = [
        ValidationError(f"metadata #{i} must be {{reference_id, metadata}}, got "
                        f"{json_kind(u)}") for i, u in enumerate(updates)
        if not (isinstance(u, dict) and isinstance(u.get("reference_id"), str)
                and isinstance(u.get("metadata"), dict))]
    if errors:
        raise BatchError(errors)
    return service.update_metadata(ds, updates)


# --- slices -----------------------------------------------------------------------


@router.post("/dataset/{ds}/create_slice")
def create_slice(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    refs = json_strings(body, "reference_ids")
    info = service.create_slice(ds, body.get("name"), refs)
    return {"slice_id": info["slice_id"], "name": info["name"]}


@router.get("/dataset/{ds}/slices")
def dataset_slices(ds: str, service: ServiceDep,
                   name: Annotated[str | None, Query(max_length=255)] = None
                   ) -> list[dict[str, Any]]:
    return [fmt.slice_info(s) for s in service.list_slices(ds)
            if name is None or s["name"] == name]


@router.get("/slice/")
@router.get("/slice")
def all_slices(service: ServiceDep) -> list[dict[str, Any]]:
    return [fmt.slice_info(s) for d in service.list_datasets()
            for s in service.list_slices(d["id"])]


@router.get("/slice/{slice_id}/info")
def slice_info(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    return fmt.slice_info(service.slice_info(slice_id))


@router.get("/slice/{slice_id}")
def slice_items(slice_id: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    info = service.slice_info(slice_id)
    return {**fmt.slice_info(info),
            "items": [fmt.item(r, urls) for r in service.slice_items(slice_id)]}


@router.post("/slice/{slice_id}/append")
def slice_append(slice_id: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    refs = json_strings(body, "reference_ids")
    return service.slice_append(slice_id, refs)


@router.get("/slice/{slice_id}/exportForTraining")
def slice_export(slice_id: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    info = service.slice_info(slice_id)
    return {"exportedRows": export_rows(service, info["dataset_id"],
                                    service.slice_items(slice_id), urls)}


@router.get("/dataset/{ds}/class_labels")
def dataset_class_labels(ds: str, service: ServiceDep) -> dict[str, Any]:
    """The ground truth's labels, sorted (from the running totals)."""
    return {"data": sorted(label for label in service.dataset_info(ds)["labels"] if label)}


@router.get("/slice/{slice_id}/class_labels")
def slice_class_labels(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    """The labels of the ground truth on the slice's items, sorted."""
    info = service.slice_info(slice_id)
    refs = [i["reference_id"] for i in service.slice_items(slice_id)]
    labels = {a["label"] for a in service.list_annotations(info["dataset_id"],
                                                           reference_ids=refs)}
    return {"data": sorted(label for label in labels if label)}


@router.delete("/slice/{slice_id}")
def delete_slice(slice_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.delete_slice(slice_id)


router.include_router(nucleus_autotags.router)
router.include_router(nucleus_dedup.router)
router.include_router(nucleus_deletes.router)
router.include_router(nucleus_exports.router)
router.include_router(nucleus_jobs.router)
router.include_router(nucleus_objects.router)
router.include_router(nucleus_runs.router)
router.include_router(nucleus_scenes.router)
router.include_router(nucleus_tags.router)
router.include_router(nucleus_taxonomies.router)
router.include_router(nucleus_validate.router)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_implemented(path: str, request: Request) -> dict[str, Any]:
    """Any other Nucleus route: a JSON 501 the client shows, naming the route. A path
    that only misses a route because an id in it holds an encoded ``/`` names nothing:
    a 404, the caller's mistake."""
    if b"%2f" in request.scope.get("raw_path", b"").lower():
        raise NotFoundError(f"nothing at {path!r}: no Ocula id holds a '/'")
    raise NotSupportedError(f"the Nucleus route {path!r} is not supported by Ocula "
                            "(docs/nucleus.md lists what is)")
