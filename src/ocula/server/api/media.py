"""``/items/{item_id}/image`` and ``/thumbnail``: the pixels, from the media folder.

These accept an API key like every route, or a signed URL (``exp`` and ``sig`` query
parameters, see ``ocula.server.signing``) so that an ``<img>`` tag or a Nucleus client
can open them without credentials.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from ocula.errors import NotFoundError
from ocula.server.deps import ServiceDep, SignerDep, require_key

router = APIRouter(tags=["media"])


def image_subject(item_id: str) -> str:
    return f"image:{item_id}"


def _authorise(request: Request, signer: SignerDep, item_id: str, exp: str | None,
               sig: str | None) -> None:
    if not signer.check(image_subject(item_id), exp, sig):
        require_key(request)


@router.get("/items/{item_id}/image")
def item_image(item_id: str, request: Request, service: ServiceDep, signer: SignerDep,
               exp: Annotated[str | None, Query(max_length=20)] = None,
               sig: Annotated[str | None, Query(max_length=128)] = None) -> FileResponse:
    """The item's original image file."""
    _authorise(request, signer, item_id, exp, sig)
    path = service.item_image_path(item_id)
    if path is None or not path.is_file():
        raise NotFoundError(f"the image of item {item_id!r} is not available on this server")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type)


@router.get("/items/{item_id}/thumbnail")
def item_thumbnail(item_id: str, request: Request, service: ServiceDep, signer: SignerDep,
                   size: Annotated[int, Query(ge=16, le=1024)] = 256,
                   exp: Annotated[str | None, Query(max_length=20)] = None,
                   sig: Annotated[str | None, Query(max_length=128)] = None) -> FileResponse:
    """A JPEG no larger than ``size`` px on its long side (made once, cached)."""
    _authorise(request, signer, item_id, exp, sig)
    source = service.item_image_path(item_id)
    if source is None or not source.is_file():
        raise NotFoundError(f"the image of item {item_id!r} is not available on this server")
    return FileResponse(service.thumbnail(item_id, size), media_type="image/jpeg")
