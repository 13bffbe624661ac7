"""Nucleus' deduplication: ``dataset/{id}/deduplicate_async`` (clients from 0.18.1: a
job whose status ``message`` is the result) and ``dataset/{id}/deduplicate`` (earlier
clients: the result itself). The body is ``{threshold, reference_ids?}`` or
``{threshold, dataset_item_ids}``; the result ``{unique_item_ids,
unique_reference_ids, stats: {threshold, original_count, deduplicated_count}}``.

Ocula computes the pHash from each image's pixels when first asked (Nucleus computes it
at upload) and applies Nucleus' rule (``docs/deduplication.md``). A threshold that is
not an integer from 0 to 64 is a 400 before any job starts; unknown ids and unreadable
images end the job ``Errored_User`` with the reason (the client raises ``JobError``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from ocula.core.dedup.analysis import check_threshold
from ocula.errors import ValidationError
from ocula.server.compat import nucleus_format as fmt
from ocula.server.deps import JobsDep, ServiceDep

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
JOB_TYPE = "deduplicate"


def _arguments(body: dict[str, Any]) -> dict[str, Any]:
    """The service's keyword arguments from a Nucleus body; a bad one raises."""
    if "threshold" not in body:
        raise ValidationError("threshold is required: an integer between 0 and 64 "
                              "(inclusive)")
    kwargs: dict[str, Any] = {"threshold": check_threshold(body["threshold"])}
    refs, ids = body.get("reference_ids"), body.get("dataset_item_ids")
    if refs is not None and ids is not None:
        raise ValidationError("give reference_ids or dataset_item_ids, not both")
    for name, value, key in (("reference_ids", refs, "reference_ids"),
                             ("dataset_item_ids", ids, "item_ids")):
        if value is None:
            continue
        if not isinstance(value, list) or not value or \
                not all(isinstance(v, str) for v in value):
            raise ValidationError(f"{name} must be a non-empty list of strings; leave "
                                  "it out to deduplicate the whole dataset")
        kwargs[key] = value
    return kwargs


def _bad(exc: ValidationError) -> JSONResponse:
    # Nucleus answers a bad threshold or id list with a 400.
    return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=400)


@router.post("/dataset/{ds}/deduplicate_async", response_model=None)
def deduplicate_async(ds: str, body: JsonBody, service: ServiceDep,
                      jobs: JobsDep) -> dict[str, Any] | JSONResponse:
    try:
        kwargs = _arguments(body)
    except ValidationError as exc:
        return _bad(exc)
    dataset_id = service.get_dataset(ds)["id"]  # a 404 now rather than a failed job
    # After the jobs sent before it: 0.22 clients append as a job and may not wait.
    job = jobs.submit(JOB_TYPE, lambda progress: service.deduplicate(dataset_id, **kwargs),
                      message=f"deduplicate {dataset_id}", after_earlier=True)
    return fmt.job_ref(job)


@router.post("/dataset/{ds}/deduplicate", response_model=None)
def deduplicate(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any] | JSONResponse:
    try:
        kwargs = _arguments(body)
    except ValidationError as exc:
        return _bad(exc)
    return fmt.dedup_result(service.deduplicate(ds, **kwargs))
