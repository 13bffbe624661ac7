"""Nucleus jobs: status, info and errors of one job, and ``POST jobs/`` (the list)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ocula.errors import ValidationError
from ocula.server.compat import nucleus_format as fmt
from ocula.server.deps import ServiceDep

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
MAX_JOBS = 50_000  # the client's documented largest `limit`


@router.get("/job/{job_id}")
def job_status(job_id: str, service: ServiceDep) -> dict[str, Any]:
    return fmt.job_status(service.job_info(job_id))


@router.get("/job/{job_id}/info")
def job_info(job_id: str, service: ServiceDep) -> dict[str, Any]:
    return fmt.job_ref(service.job_info(job_id))


@router.get("/job/{job_id}/errors")
def job_errors(job_id: str, service: ServiceDep) -> list[str]:
    return fmt.job_errors(service.job_info(job_id))


@router.post("/jobs/")
@router.post("/jobs")
def list_jobs(body: JsonBody, service: ServiceDep) -> list[dict[str, Any]]:
    """Newest first: ``{limit, show_completed}`` are honoured; ``dataset_id``,
    ``job_types`` and dates are not filters Ocula has (docs/nucleus.md)."""
    limit = body.get("limit") or 100
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_JOBS:
        raise ValidationError(f"limit must be an integer from 1 to {MAX_JOBS}")
    jobs = service.list_jobs(limit=limit)
    if not body.get("show_completed"):
        jobs = [j for j in jobs if j["status"] != "Completed"]
    return [fmt.job_ref(j) for j in jobs]
