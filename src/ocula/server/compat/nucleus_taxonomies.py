"""Nucleus taxonomies: ``POST dataset/{id}/add_taxonomy``, ``GET dataset/{id}/taxonomies``
and ``DELETE dataset/{id}/taxonomy/{name}``; each is one service call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool

from ocula.errors import ValidationError
from ocula.server.deps import ServiceDep

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]


@router.post("/dataset/{ds}/add_taxonomy")
async def add_taxonomy(ds: str, body: JsonBody, service: ServiceDep) -> dict[str, Any]:
    """``{taxonomy_name, type, labels, update}`` -> ``{dataset_id, taxonomy_name, status}``."""
    name, kind = body.get("taxonomy_name"), body.get("type")
    if not isinstance(name, str) or not isinstance(kind, str):
        raise ValidationError("add_taxonomy needs a taxonomy_name and a type (strings)")
    return await run_in_threadpool(service.add_taxonomy, ds, name, kind, body.get("labels"),
                                   update=bool(body.get("update")))


@router.get("/dataset/{ds}/taxonomies")
async def list_taxonomies(ds: str, service: ServiceDep) -> dict[str, Any]:
    rows = await run_in_threadpool(service.list_taxonomies, ds)
    return {"taxonomies": [{"taxonomy_name": r["name"], "taxonomy_type": r["type"],
                            "labels": r["labels"]} for r in rows]}


@router.delete("/dataset/{ds}/taxonomy/{name}")
async def delete_taxonomy(ds: str, name: str, service: ServiceDep) -> dict[str, Any]:
    return await run_in_threadpool(service.delete_taxonomy, ds, name)
