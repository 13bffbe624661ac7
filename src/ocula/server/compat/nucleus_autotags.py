"""Nucleus autotags: Ocula has none (they are Scale's embedding search), so a
dataset's list is empty; creating or deleting one stays a 501 (docs/nucleus.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ocula.server.deps import ServiceDep

router = APIRouter()


@router.get("/{ds}/list_autotags")
def list_autotags(ds: str, service: ServiceDep) -> dict[str, Any]:
    service.get_dataset(ds)  # an unknown dataset is a 404, not an empty list
    return {"autotags": []}
