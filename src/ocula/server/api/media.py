"""``/items/{item_id}/image`` and ``/thumbnail``: the pixels, from the media folder.

These accept an API key like every route, or a signed URL (``exp``, ``kid`` and ``sig``
query parameters, see ``ocula.server.signing``) so that an ``<img>`` tag or a Nucleus
client can open them without credentials. A signed URL is bound to the key that asked
for it and stops working when that key is revoked.

The file is checked at every read (a regular file, still under a media root, an image)
and served with the type read from its header, never guessed from its name, with
headers that keep a browser from running it as a page.

Each answer carries a strong ``ETag``: the image's content tag (its content hash for a
stored copy, a hash of the file's identity and version for one referenced in place), and
a request whose ``If-None-Match`` names it gets a ``304`` with no body. The URL of an
item's image stays the same when the item is given a new image, so by default a browser
keeps the answer but asks again (``no-cache``: a ``304`` costs no pixels). A URL that
names the content itself (``v=`` the tag, as the ``ETag`` gives it, unquoted) can never
change, so its answer is cached for a year and never asked again (``immutable``);
``private``, because the pixels sit behind an API key and a shared cache must not hand
them to anyone else.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from ocula.server.deps import ServiceDep, SignerDep, require_key
from ocula.server.signing import Signer

router = APIRouter(tags=["media"])
# Even an image the browser opens directly as a page runs nothing and loads nothing.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox"}
_CHUNK = 256 * 1024
REVALIDATE = "private, no-cache"
FOREVER = "private, max-age=31536000, immutable"


def image_subject(item_id: str) -> str:
    return f"image:{item_id}"


def sign_image(signer: Signer, item_id: str, kid: str, ttl_s: int) -> dict[str, str]:
    """Query parameters opening ``item_id``'s image for ``ttl_s`` seconds, while the key
    with id ``kid`` stays live."""
    return signer.sign(image_subject(item_id), ttl_s, kid=kid)


def _authorise(request: Request, service: Any, signer: Signer, item_id: str,
               exp: str | None, kid: str | None, sig: str | None) -> None:
    if kid and signer.check(image_subject(item_id), exp, sig, kid=kid) and \
            service.key_id_is_live(kid):
        return
    require_key(request)


def _chunks(fp: io.BufferedReader) -> Iterator[bytes]:
    with fp:
        while chunk := fp.read(_CHUNK):
            yield chunk


def _image(media_type: str, description: str) -> dict[str, Any]:
    """Route keyword arguments documenting a 200 answer of image bytes (``image/*``: the
    type read from the file's header)."""
    return {"response_class": Response, "responses": {200: {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}}}


def _cache_headers(request: Request, tag: str) -> dict[str, str]:
    return {"ETag": f'"{tag}"', **SAFE_HEADERS,
            "Cache-Control": FOREVER if request.query_params.get("v") == tag else REVALIDATE}


def _not_modified(request: Request, headers: dict[str, str]) -> Response | None:
    """A 304 when the request's ``If-None-Match`` names this ETag (or is ``*``)."""
    wanted = request.headers.get("if-none-match")
    if wanted is None:
        return None
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    if "*" in tags or headers["ETag"] in tags:
        return Response(status_code=304, headers=headers)
    return None


Exp = Annotated[str | None, Query(max_length=20)]
Kid = Annotated[str | None, Query(max_length=20)]
Sig = Annotated[str | None, Query(max_length=128)]
Tag = Annotated[str | None, Query(max_length=80, description=(
    "The image's content tag (its ETag, unquoted): the answer is then cached for good"))]


@router.get("/items/{item_id}/image", **_image("image/*", "The image file"))
def item_image(item_id: str, request: Request, service: ServiceDep, signer: SignerDep,
               exp: Exp = None, kid: Kid = None, sig: Sig = None,
               v: Tag = None) -> Response:
    """The item's original image file."""
    _authorise(request, service, signer, item_id, exp, kid, sig)
    # Streamed from the file opened and checked here: re-opening it by path would
    # read whatever a swapped link points at by then.
    fp, media_type, tag = service.open_item_image(item_id)
    headers = _cache_headers(request, tag)
    if (unchanged := _not_modified(request, headers)) is not None:
        fp.close()
        return unchanged
    size = fp.seek(0, io.SEEK_END)
    fp.seek(0)
    return StreamingResponse(_chunks(fp), media_type=media_type,
                             headers={"Content-Length": str(size), **headers})


@router.get("/items/{item_id}/thumbnail", **_image("image/jpeg", "A JPEG thumbnail"))
def item_thumbnail(item_id: str, request: Request, service: ServiceDep, signer: SignerDep,
                   size: Annotated[int, Query(ge=16, le=1024)] = 256,
                   exp: Exp = None, kid: Kid = None, sig: Sig = None,
                   v: Tag = None) -> Response:
    """A JPEG no larger than ``size`` px on its long side (made once, cached)."""
    _authorise(request, service, signer, item_id, exp, kid, sig)
    # The cache is Ocula's own file; the source is checked on each call all the same.
    path = service.thumbnail(item_id, size)
    headers = _cache_headers(request, path.stem)
    if (unchanged := _not_modified(request, headers)) is not None:
        return unchanged
    # A thumbnail is small (at most 1024 px a side): read here, on the route's worker
    # thread, it is sent in one piece, without the extra thread hops of a file response.
    return Response(path.read_bytes(), media_type="image/jpeg", headers=headers)


@router.get("/items/{item_id}/segmentation", **_image("image/png", (
    "The item's index mask: a one-channel PNG whose pixel values are its segments' "
    "indexes (8-bit, or 16-bit when an index needs it)")))
def item_segmentation(item_id: str, request: Request, service: ServiceDep,
                      signer: SignerDep, run: Annotated[str | None, Query(
                          max_length=64, description="a model run's id: its predicted "
                          "segmentation instead of the ground truth's")] = None,
                      exp: Exp = None, kid: Kid = None, sig: Sig = None) -> Response:
    """The segmentation Ocula split into one mask per segment, painted back into one
    index PNG (404 when the item has none). A signed URL of the item's image opens it
    too (Nucleus' ``index_mask_url``)."""
    _authorise(request, service, signer, item_id, exp, kid, sig)
    png = service.item_segmentation_png(item_id, run)
    return Response(png, media_type="image/png",
                    headers={**SAFE_HEADERS, "Cache-Control": REVALIDATE})
