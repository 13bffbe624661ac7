"""``/datasets/{dataset}/deduplicate``: near-duplicate images by pHash
(:meth:`~ocula.core.services.dedup.DedupService.deduplicate`); ``?async=true`` runs it
as a job (hashing a large dataset the first time takes a while)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from ocula.server.api.common import MAX_INT, MAX_LIST
from ocula.server.api.schemas import WRITE, Job, Open, ok
from ocula.server.deps import JobsDep, ServiceDep

router = APIRouter(tags=["datasets"])
# At least one id: an empty list is refused (leave it out for the whole dataset).
Ids = Annotated[list[str], Field(min_length=1, max_length=MAX_LIST)]


class DedupIn(BaseModel):
    threshold: Annotated[int, Field(ge=0, le=64, description=(
        "Most bits of the 64-bit pHash two duplicates may differ in (0: same hash)"))] = 10
    reference_ids: Ids | None = None
    item_ids: Ids | None = None
    slice: str | None = Field(None, max_length=255)
    query: str | None = Field(None, max_length=100_000)
    max_groups: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    on_error: Literal["raise", "skip"] = "raise"

    @field_validator("threshold", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # JSON's 10.0 is an integer (JSON Schema says so); 10.5, "10" and true are not.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not value.is_integer()):
            raise ValueError("threshold must be an integer between 0 and 64 (inclusive)")
        return int(value)


class DedupStats(Open):
    threshold: int
    original_count: int
    deduplicated_count: int
    duplicate_count: int
    group_count: int
    hashed: int


class Deduplication(Open):
    """The items kept and each group of near duplicates with the item it keeps."""

    dataset_id: str
    slice: str | None
    query: str | None
    threshold: int
    unique_item_ids: list[str]
    unique_reference_ids: list[str]
    groups: list[dict[str, Any]] = Field(description=(
        "{item_id, reference_id, duplicates: [{item_id, reference_id, distance}], query: "
        "the item query that selects the group}"))
    stats: DedupStats
    errors: list[dict[str, Any]]


@router.post("/datasets/{dataset}/deduplicate", **ok((Deduplication, Job), 400, *WRITE))
def deduplicate(dataset: str, body: DedupIn, service: ServiceDep, jobs: JobsDep,
                run_async: Annotated[bool, Query(alias="async")] = False) -> dict[str, Any]:
    """Near-duplicate images of the dataset (or of the ids, slice or query given).
    With ``async=true`` it runs as a job and this returns the job; poll
    ``GET /jobs/{job_id}`` for the result."""
    kwargs = body.model_dump()
    if not run_async:
        return service.deduplicate(dataset, **kwargs)
    service.get_dataset(dataset)  # a 404 now rather than a failed job
    return jobs.submit("deduplicate", lambda progress: service.deduplicate(dataset, **kwargs),
                       message=f"deduplicate {dataset}", after_earlier=True)
