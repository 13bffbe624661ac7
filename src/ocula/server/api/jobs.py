"""``/jobs``: status and progress of long work (appends, commits)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ocula.server.api.schemas import READ, Job, ok
from ocula.server.deps import ServiceDep

router = APIRouter(tags=["jobs"])


@router.get("/jobs", **ok([Job]))
def list_jobs(service: ServiceDep, status: Annotated[str | None, Query(max_length=32)] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Newest jobs first."""
    return service.list_jobs(status=status, limit=limit)


@router.get("/jobs/{job_id}", **ok(Job, *READ))
def job_info(job_id: str, service: ServiceDep) -> dict[str, Any]:
    """Status (Queued, Running, Completed, Errored_*), progress, errors, result."""
    return service.job_info(job_id)
