"""Nucleus uploads that may carry segmentation masks: ``dataset/{id}/annotate``,
``modelRun/{id}/predict`` and ``dataset/{id}/model/{model}/uploadPredictions``.

``scale-nucleus`` sends a segmentation whose ``mask_url`` is a local file as a
multipart form: a ``serialized_request`` part holding the JSON body
(``{"segmentations": [...], "update": ...}``) and one ``mask`` part per segmentation,
named after its local path (the ``mask_url`` it also sends). Other uploads are JSON.
:data:`NucleusBody` reads either into one :class:`NucleusRequest`; :func:`with_masks`
gives each segmentation the file sent for it, and marks it to be resized to its image
as Nucleus does (Ocula's own API refuses a mask of another size).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Request

from ocula.core.types import SegmentationAnnotation
from ocula.errors import ValidationError
from ocula.server.wire import loads_json

# Largest JSON part of a multipart upload (the client sends 10 segmentations a request).
MAX_FORM_FIELD = 16 * 1024 * 1024
MAX_MASK_FILES = 100
SERIALIZED = "serialized_request"


@dataclass
class NucleusRequest:
    """A Nucleus upload's JSON body, and the mask files sent with it by file name."""

    body: dict[str, Any]
    masks: list[tuple[str, bytes]] = field(default_factory=list)


async def nucleus_body(request: Request) -> NucleusRequest:
    """The request's JSON body (an empty body is ``{}``), or its multipart form's
    ``serialized_request`` part and ``mask`` files."""
    masks: list[tuple[str, bytes]] = []
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await request.form(max_files=MAX_MASK_FILES, max_fields=10,
                                  max_part_size=MAX_FORM_FIELD)
        try:
            raw = form.get(SERIALIZED)
            if raw is None:
                raise ValidationError(f"a multipart upload needs a '{SERIALIZED}' part "
                                      "holding the request's JSON")
            body = loads_json(raw if isinstance(raw, str) else await raw.read(),
                              f"the '{SERIALIZED}' part")
            for part in form.getlist("mask"):
                if isinstance(part, str):
                    raise ValidationError("each 'mask' part must be a PNG file")
                masks.append((unquote(part.filename or ""), await part.read()))
        finally:
            await form.close()
    else:
        data = await request.body()
        body = loads_json(data, "the body") if data.strip() else {}
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object")
    return NucleusRequest(body, masks)


NucleusBody = Annotated[NucleusRequest, Depends(nucleus_body)]


def with_masks(objs: list[Any], masks: list[tuple[str, bytes]]) -> list[Any]:
    """Each segmentation of ``objs`` with the mask file sent for it (by file name, the
    ``mask_url`` it names; else, when there are as many files as segmentations, in
    order) and resized to its image where the sizes differ, as Nucleus does."""
    segs = [o for o in objs if isinstance(o, SegmentationAnnotation)]
    if not segs:
        return objs
    by_name = dict(masks)
    in_order = len(masks) == len(segs) and not all(s.mask_url in by_name for s in segs)
    files = iter(data for _, data in masks)
    out = []
    for obj in objs:
        if isinstance(obj, SegmentationAnnotation):
            data = next(files) if in_order else (
                by_name.get(obj.mask_url) if isinstance(obj.mask_url, str) else None)
            obj = replace(obj, mask_bytes=data, fit_to_image=True)
        out.append(obj)
    return out
