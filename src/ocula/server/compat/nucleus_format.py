"""Ocula's service results in the JSON shapes the Scale Nucleus client reads.

Field names follow what ``scale-nucleus`` (0.22.x) parses: items need an image URL the
client can open (we hand out signed URLs of our own image route) and a reference id;
annotations need ``type`` and ``reference_id``; jobs use Nucleus' status strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.convertors import PathConvertor, register_url_convertor

from ocula.core.segmentations import rebuild_segmentations
from ocula.server.api.media import sign_image
from ocula.server.signing import Signer

# Keys of an exportForTraining row, one list per annotation type the client reads.
EXPORT_TYPES = ("box", "polygon", "line", "keypoints", "cuboid", "category", "multicategory")
# Object types the client can rebuild from a model run response (it has no "mask", and
# 0.22 no multicategory prediction: a run's multicategories stay on Ocula's own API).
PREDICTION_TYPES = ("box", "line", "polygon", "cuboid", "category", "keypoints",
                    "segmentation")


class ReferenceConvertor(PathConvertor):
    """A reference id in a path: anything, a newline too. Starlette's ``path`` is
    ``.*``, which stops at a newline, and the route's ``$`` then matches before a final
    one: ``refloc/a%0A`` would look up ``a``."""

    regex = "(?s:.*)"


# Routes spell a reference id in their path ``{ref:ref}``.
register_url_convertor("ref", ReferenceConvertor())


class ImageUrls:
    """Absolute URLs of item images, signed when the server requires keys."""

    def __init__(self, base: str, signer: Signer, *, kid: str | None, ttl_s: int):
        """``kid``: the id of the API key the URLs are made for (they stop working when
        it is revoked); None on a server without keys, whose URLs are not signed."""
        self.base = base
        self.signer = signer
        self.kid = kid
        self.ttl_s = ttl_s

    def __call__(self, item_id: str) -> str:
        url = f"{self.base}/api/v1/items/{item_id}/image"
        if self.kid is not None:
            url += "?" + urlencode(sign_image(self.signer, item_id, self.kid, self.ttl_s))
        return url

    def segmentation(self, item_id: str, run_id: str | None = None) -> str:
        """The index PNG of the item's segmentation (of run ``run_id``'s predictions
        when given), rebuilt by Ocula; signed as the item's image is."""
        params = {"run": run_id} if run_id is not None else {}
        if self.kid is not None:
            params |= sign_image(self.signer, item_id, self.kid, self.ttl_s)
        url = f"{self.base}/api/v1/items/{item_id}/segmentation"
        return url + ("?" + urlencode(params) if params else "")


def with_segmentations(objects: Iterable[dict[str, Any]], urls: ImageUrls | None = None,
                       item_ids: Callable[[str], str | None] | None = None,
                       run_id: str | None = None) -> list[dict[str, Any]]:
    """Objects as Nucleus reads them: the masks Ocula split a segmentation into come
    back as that one segmentation (its ``mask_url`` as sent), with an
    ``index_mask_url`` of the index PNG Ocula rebuilds when the item's id is known
    (``item_ids``: reference id -> item id)."""
    others, segmentations = rebuild_segmentations(objects)
    for seg in segmentations:
        item_id = item_ids(seg["reference_id"]) if item_ids is not None else None
        if urls is not None and item_id is not None:
            seg["index_mask_url"] = urls.segmentation(item_id, run_id)
    return others + segmentations


def item(body: dict[str, Any], urls: ImageUrls) -> dict[str, Any]:
    """An item as Nucleus returns it; ``original_image_url`` keeps what was uploaded."""
    return {
        "id": body["id"],
        "dataset_item_id": body["id"],
        "reference_id": body["reference_id"],
        "ref_id": body["reference_id"],
        "image_url": urls(body["id"]),
        "original_image_url": body["original_image_url"],
        "metadata": body.get("metadata") or {},
        "width": body.get("width"),
        "height": body.get("height"),
    }


def located(body: dict[str, Any], urls: ImageUrls) -> dict[str, Any]:
    """A ``refloc``/``loc``/``iloc`` answer: the item and its annotations by type."""
    # Ocula's version tokens (for its own edits) are no part of Nucleus' form.
    objects = [{k: v for k, v in a.items() if k != "version"}
               for anns in body["annotations"].values() for a in anns]
    item_id = body["item"]["id"]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for obj in with_segmentations(objects, urls, lambda _ref: item_id):
        grouped.setdefault(obj["type"], []).append(obj)
    return {"item": item(body["item"], urls), "annotations": grouped}


def predictions_by_type(objects: Iterable[dict[str, Any]], urls: ImageUrls | None = None,
                        item_ids: Callable[[str], str | None] | None = None,
                        run_id: str | None = None) -> dict[str, Any]:
    """A model run's ``refloc`` answer: ``{"annotations": {type: [...]}}``."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for obj in with_segmentations(objects, urls, item_ids, run_id):
        if obj["type"] in PREDICTION_TYPES:
            grouped.setdefault(obj["type"], []).append(obj)
    return {"annotations": grouped}


def export_row(body: dict[str, Any], objects: Iterable[dict[str, Any]],
               urls: ImageUrls) -> dict[str, Any]:
    """One ``exportForTraining`` row: the item, a list per annotation type, and its
    segmentation (one object, as Nucleus exports it) when it has one."""
    row: dict[str, Any] = {"item": item(body, urls), **{t: [] for t in EXPORT_TYPES}}
    for obj in with_segmentations(objects, urls, lambda _ref: body["id"]):
        if obj["type"] == "segmentation":
            row["segmentation"] = obj
        elif obj["type"] in EXPORT_TYPES:
            row[obj["type"]].append(obj)
    return row


def job_ref(job: dict[str, Any]) -> dict[str, Any]:
    """What an async call answers: enough for the client's ``AsyncJob``."""
    return {"job_id": job["job_id"], "job_last_known_status": job["status"],
            "job_type": job["type"], "job_creation_time": job["created_at"],
            "status": job["status"]}


def job_status(job: dict[str, Any]) -> dict[str, Any]:
    """``GET job/{id}``: the client keeps polling while ``status == "Running"``, so a
    queued job reports Running too."""
    status = "Running" if job["status"] == "Queued" else job["status"]
    return {"job_id": job["job_id"], "status": status, "message": _job_message(job),
            "job_progress": f"{job['job_progress']:.2f}",
            "completed_steps": job["completed_steps"], "total_steps": job["total_steps"],
            "job_type": job["type"], "job_last_known_status": status,
            "job_creation_time": job["created_at"]}


def _job_message(job: dict[str, Any]) -> Any:
    """A finished ground-truth upload reports its counts as Nucleus does
    (``{"annotation_upload": {...}}``), a finished deduplication its result; any other
    job its message line."""
    result = job.get("result")
    if job["type"] == "deduplicate" and isinstance(result, dict) and \
            "unique_item_ids" in result:
        return dedup_result(result)
    if job["type"] == "annotate" and isinstance(result, dict) and \
            "annotations_processed" in result:
        errored = len(result.get("errors") or [])
        processed, ignored = result["annotations_processed"], result["annotations_ignored"]
        return {"annotation_upload": {
            "total": processed + ignored + errored, "errored": errored, "ignored": ignored,
            "datasetId": result.get("dataset_id"), "processed": processed}}
    return job["message"] or ""


def dedup_result(result: dict[str, Any]) -> dict[str, Any]:
    """Ocula's deduplication answer in the shape Nucleus' client reads."""
    stats = result["stats"]
    return {"unique_item_ids": result["unique_item_ids"],
            "unique_reference_ids": result["unique_reference_ids"],
            "stats": {"threshold": stats["threshold"],
                      "original_count": stats["original_count"],
                      "deduplicated_count": stats["deduplicated_count"]}}


def job_errors(job: dict[str, Any]) -> list[str]:
    """``GET job/{id}/errors``: one readable line per rejected entry."""
    out = []
    for err in job["errors"]:
        if isinstance(err, str):  # already a line (a partial batch's report)
            out.append(err)
            continue
        ref = err.get("reference_id")
        out.append(f"{ref}: {err.get('detail')}" if ref else str(err.get("detail")))
    return out


def append_result(result: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    """The answer of the (pre-0.19, synchronous) ``append``. Clients before 0.19 add
    ``upload_errors`` to a count, so it is the number of items refused;
    ``error_payload`` holds those items (as sent) and ``errors`` why each was refused,
    so a job with refused items ends ``Errored_Partial``."""
    refused = {e.get("reference_id") for e in result["errors"]}
    payload = [{"reference_id": it.reference_id, "image_url": it.image_location,
                "metadata": it.metadata or {}} for it in items if it.reference_id in refused]
    return {"dataset_id": result.get("dataset_id"), "new_items": result["new_items"],
            "updated_items": result["updated_items"],
            "ignored_items": result["ignored_items"], "upload_errors": len(result["errors"]),
            "error_payload": payload, "errors": result["errors"]}


def slice_info(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "id": body["slice_id"], "tags": []}


def model(body: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    return {"id": body["id"], "model_id": body["id"], "name": body["name"],
            "ref_id": body["reference_id"], "reference_id": body["reference_id"],
            "metadata": body.get("metadata") or None, "tags": tags}
