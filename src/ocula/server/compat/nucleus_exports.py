"""Nucleus exports and item pages of a slice: ``slice/{id}/itemsPage``,
``slice/{id}/exportForTrainingPage`` and ``slice/{id}/exportRawItems``, with the
helpers the dataset's own export routes share (image URLs, export rows, page tokens).

A page token is the offset of the page's first item, as a decimal string; a slice's
items come in the order they were added to the dataset.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from ocula.errors import QueryError, ValidationError
from ocula.server.api.common import MAX_INT
from ocula.server.compat import nucleus_format as fmt
from ocula.server.deps import ServiceDep, api_key_of, public_base

router = APIRouter()
JsonBody = Annotated[dict[str, Any], Body(default_factory=dict)]
MAX_PAGE = 100_000


def get_urls(request: Request) -> fmt.ImageUrls:
    settings = request.app.state.settings
    kid = request.app.state.service.key_id(api_key_of(request)) if settings.auth else None
    return fmt.ImageUrls(public_base(request), request.app.state.signer, kid=kid,
                         ttl_s=settings.url_ttl_s)


UrlsDep = Annotated[fmt.ImageUrls, Depends(get_urls)]


def export_rows(service: Any, ds: str, rows: list[dict[str, Any]],
                urls: fmt.ImageUrls) -> list[dict[str, Any]]:
    """exportForTraining rows: each item with its current annotations by type."""
    refs = [r["reference_id"] for r in rows]
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for ann in service.list_annotations(ds, reference_ids=refs) if refs else []:
        by_ref.setdefault(ann["reference_id"], []).append(ann)
    return [fmt.export_row(r, by_ref.get(r["reference_id"], []), urls) for r in rows]


def page_size(body: dict[str, Any]) -> int:
    size = body.get("pageSize") or MAX_PAGE
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValidationError("pageSize must be a positive integer")
    return min(size, MAX_PAGE)


def page_token(body: dict[str, Any]) -> str | None:
    token = body.get("pageToken")
    if token is not None and not (isinstance(token, str) and token.isdecimal()
                                  and int(token) <= MAX_INT):
        raise ValidationError(f"malformed pageToken {token!r}")
    return token


def no_query(body: dict[str, Any]) -> None:
    query = body.get("query")
    if query is not None and not (isinstance(query, str) and not query.strip()):
        raise QueryError("queries are not supported on this route yet; call without one")


def _slice_page(service: Any, slice_id: str, body: dict[str, Any]
                ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """(slice info, the page's items, the next page's token or None)."""
    no_query(body)
    size, token = page_size(body), page_token(body)
    info = service.slice_info(slice_id)
    start = int(token) if token is not None else 0
    rows = service.slice_items(slice_id)
    end = start + size
    return info, rows[start:end], str(end) if end < len(rows) else None


@router.post("/slice/{slice_id}/itemsPage")
def slice_items_page(slice_id: str, body: JsonBody, service: ServiceDep, urls: UrlsDep
                     ) -> dict[str, Any]:
    """A page of the slice's items: ``{pageToken, pageSize}`` -> ``{items, nextPageToken}``."""
    _, rows, token = _slice_page(service, slice_id, body)
    return {"items": [fmt.item(r, urls) for r in rows], "nextPageToken": token}


@router.post("/slice/{slice_id}/exportForTrainingPage")
def slice_export_page(slice_id: str, body: JsonBody, service: ServiceDep, urls: UrlsDep
                      ) -> dict[str, Any]:
    """A page of exportForTraining rows of the slice's items (``chip`` is ignored: the
    image URLs are Ocula's own)."""
    info, rows, token = _slice_page(service, slice_id, body)
    return {"data": export_rows(service, info["dataset_id"], rows, urls),
            "nextPageToken": token}


@router.get("/slice/{slice_id}/exportRawItems")
def slice_raw_items(slice_id: str, service: ServiceDep, urls: UrlsDep) -> dict[str, Any]:
    """Each item of the slice with the URL it was uploaded from (``original_url``) and
    a URL of the image Ocula stores (``scale_url``, signed when keys are required)."""
    rows = service.slice_items(slice_id)
    return {"raw_dataset_items": [
        {"id": r["id"], "ref_id": r["reference_id"], "metadata": r.get("metadata") or {},
         "original_url": r["original_image_url"], "scale_url": urls(r["id"])}
        for r in rows]}
