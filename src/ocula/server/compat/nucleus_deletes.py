"""Deleting ground truth on the Nucleus routes: ``DELETE annotation/{dataset_id}``
with ``{reference_ids, keep_history}`` (``Dataset.delete_annotations``), answered with
an async job as Nucleus does. The deletion is one write of the service layer: a new
annotation version without those items' annotations, so history is always kept
(``keep_history: false`` is refused rather than silently ignored)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ocula.errors import ValidationError
from ocula.server.compat import nucleus_format as fmt
from ocula.server.deps import JobsDep, ServiceDep
from ocula.server.wire import json_strings

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]


@router.delete("/annotation/{ds}")
def delete_annotations(ds: str, body: JsonBody, service: ServiceDep, jobs: JobsDep
                       ) -> dict[str, Any]:
    refs = json_strings(body, "reference_ids")
    if not refs:
        raise ValidationError("reference_ids must name at least one item whose "
                              "annotations to delete")
    if body.get("keep_history", True) is not True:
        raise ValidationError("Ocula always keeps the history of annotations (each "
                              "deletion is a new version): send keep_history=true")
    dataset_id = service.get_dataset(ds)["id"]  # 404 now, not inside the job

    def work(progress: Any) -> dict[str, Any]:
        return service.delete_annotations(dataset_id, reference_ids=refs)

    return fmt.job_ref(jobs.submit("delete_annotations", work, total_steps=len(refs)))
