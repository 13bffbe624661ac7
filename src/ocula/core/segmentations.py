"""Index masks (Nucleus' segmentations): read, check, split, and rebuild.

A Nucleus segmentation is one PNG per item whose pixel values are indexes, plus a list
of segments ``{label, index}`` naming them. Ocula stores one mask per segment
(``SegmentationAnnotation.to_instances``); this module holds the rest, with no I/O:

- :func:`decode_index_png` reads the PNG (8- or 16-bit grey, or palette indexes);
- :func:`fit_index_mask` checks its size against the image's, or resizes it with
  nearest neighbours where the caller asks (the Nucleus routes: Nucleus resizes);
- :func:`segment_errors` checks the segments against the mask;
- :func:`rebuild_segmentations` groups stored masks (object JSON) back into one
  segmentation per item, and :func:`index_mask` paints them back into one index array,
  which :func:`encode_index_png` writes as a PNG.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from ocula.core.masks import rle_decode
from ocula.core.types import SegmentationAnnotation, payload_to_annotation
from ocula.errors import ImageError, NotFoundError, OculaError, ValidationError

__all__ = ["MAX_INDEX", "decode_index_png", "encode_index_png", "fit_index_mask",
           "index_mask", "is_segment", "missing_segments", "rebuild_segmentations",
           "segment_errors", "SegmentationMask", "segmentation_mask"]

# The largest index a PNG can hold (16-bit grey).
MAX_INDEX = 65535
# Decoding a PNG bomb would take the server's memory: refuse masks past this many pixels
# (a 16k x 16k image).
MAX_PIXELS = 16384 * 16384
_INDEX_MODES = ("L", "P", "I;16", "I;16B", "I;16L", "I", "1")


def decode_index_png(data: bytes, what: str, reference_id: str | None = None) -> np.ndarray:
    """The index array (H x W, integers) of a PNG's bytes; an :class:`ImageError` naming
    ``what`` when it is no PNG, or not one channel of indexes."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ImageError(f"{what} is not a PNG (an index mask is a one-channel PNG whose "
                         "pixel values are segment indexes)", reference_id=reference_id)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(f"{what} is {img.width}x{img.height} pixels, more than "
                                 f"the {MAX_PIXELS} an index mask may have",
                                 reference_id=reference_id)
            if img.mode not in _INDEX_MODES:
                raise ImageError(f"{what} has {img.mode} pixels; an index mask has one "
                                 "channel of indexes (8- or 16-bit grey, or a palette)",
                                 reference_id=reference_id)
            img.load()
            arr = np.asarray(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read {what} as a PNG: {exc}",
                         reference_id=reference_id) from exc
    return arr.astype(np.int64) if arr.dtype == bool else arr


def fit_index_mask(index: np.ndarray, width: int | None, height: int | None, *,
                   resize: bool, what: str, reference_id: str | None = None) -> np.ndarray:
    """``index`` at the image's size: as it is when the sizes agree (or the image's is
    unknown); resized with nearest neighbours when ``resize``; else a
    :class:`ValidationError` giving both sizes."""
    h, w = index.shape
    if width is None or height is None or (w, h) == (width, height):
        return index
    if not resize:
        raise ValidationError(f"{what} is {w}x{h} pixels but its image is "
                              f"{width}x{height}; an index mask must have its image's size",
                              reference_id=reference_id)
    return index[_nearest(h, height)[:, None], _nearest(w, width)[None, :]]


def _nearest(src: int, dst: int) -> np.ndarray:
    """The source pixel of each of ``dst`` pixels, exactly as Pillow's NEAREST resize
    picks it: pixel centres stepped by ``src / dst``, summed one step at a time (its
    rounding included, so the same pixels are picked as ``Image.resize`` picks)."""
    steps = np.full(dst, src / dst)
    steps[0] *= 0.5
    return np.minimum(np.cumsum(steps).astype(np.int64), src - 1)


def segment_errors(seg: SegmentationAnnotation, where: str) -> list[OculaError]:
    """What is wrong with ``seg`` before its mask is read: no ``mask_url``, no segments,
    an index that is not an integer in [0, 65535] or is given twice, a label that is not
    text, metadata that is not an object."""
    ref = seg.reference_id
    errors: list[OculaError] = []
    if not isinstance(seg.mask_url, str) or not seg.mask_url:
        errors.append(ValidationError(f"{where}: mask_url must be a URL or a file path",
                                      reference_id=ref))
    if not seg.annotations:
        errors.append(ValidationError(f"{where}: a segmentation needs at least one segment "
                                      "{label, index}", reference_id=ref))
    seen: set[int] = set()
    for s in seg.annotations:
        if isinstance(s.index, bool) or not isinstance(s.index, int) \
                or not 0 <= s.index <= MAX_INDEX:
            errors.append(ValidationError(f"{where}: segment index must be an integer in "
                                          f"[0, {MAX_INDEX}], got {s.index!r}",
                                          reference_id=ref))
            continue
        if not isinstance(s.label, str) or not s.label.strip():
            errors.append(ValidationError(f"{where}: segment {s.index} has no label",
                                          reference_id=ref))
        if s.metadata is not None and not isinstance(s.metadata, dict):
            errors.append(ValidationError(f"{where}: segment {s.index}'s metadata must be "
                                          "an object", reference_id=ref))
        if s.index in seen:
            errors.append(ValidationError(f"{where}: segment index {s.index} is given twice",
                                          reference_id=ref))
        seen.add(s.index)
    return errors


def missing_segments(seg: SegmentationAnnotation, index: np.ndarray, where: str
                     ) -> list[OculaError]:
    """An error for each segment whose index no pixel of ``index`` holds."""
    present = set(np.unique(index).tolist())
    return [ValidationError(f"{where}: segment index {s.index} ({s.label!r}) is not in the "
                            f"mask, whose pixels hold {_some(sorted(present))}",
                            reference_id=seg.reference_id)
            for s in seg.annotations if s.index not in present]


def _some(values: Sequence[int], n: int = 12) -> str:
    shown = ", ".join(map(str, values[:n]))
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def is_segment(obj: dict[str, Any]) -> bool:
    """Whether an object's JSON is one mask of a segmentation."""
    return obj.get("type") == "mask" and isinstance(
        (obj.get("geometry") or {}).get("segmentation"), dict)


def rebuild_segmentations(objects: Iterable[dict[str, Any]]
                          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(others, segmentations)``: the objects that are not masks of a segmentation, and
    one segmentation per item (and ``reference_id``) rebuilt from those that are, in
    Nucleus' form ``{type: "segmentation", reference_id, annotation_id, mask_url,
    annotations: [{label, index, metadata?}]}`` plus ``item_id`` when the objects carry
    it. Segments come in index order."""
    others: list[dict[str, Any]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        if is_segment(obj):
            groups.setdefault(obj["reference_id"], []).append(obj)
        else:
            others.append(obj)
    segmentations = []
    for ref, parts in groups.items():
        parts.sort(key=lambda o: o["geometry"]["segmentation"].get("index", 0))
        source = parts[0]["geometry"]["segmentation"]
        body: dict[str, Any] = {
            "type": "segmentation", "reference_id": ref,
            "annotation_id": source.get("annotation_id"),
            "mask_url": source.get("mask_url"),
            "annotations": [_segment(p) for p in parts]}
        if source.get("annotation_metadata"):
            body["metadata"] = source["annotation_metadata"]
        for key in ("item_id", "run_id"):
            if key in parts[0]:
                body[key] = parts[0][key]
        segmentations.append(body)
    return others, segmentations


def _segment(part: dict[str, Any]) -> dict[str, Any]:
    source = part["geometry"]["segmentation"]
    out: dict[str, Any] = {"label": part["label"], "index": source.get("index")}
    if source.get("metadata"):
        out["metadata"] = source["metadata"]
    return out


def index_mask(parts: Sequence[dict[str, Any]]) -> np.ndarray:
    """The index array the masks of one segmentation (object JSON) were split from:
    each mask's pixels painted with its index, 0 elsewhere (uint8 when every index fits,
    else uint16)."""
    if not parts:
        raise ValidationError("no segmentation masks to rebuild an index mask from")
    indexes = [int(p["geometry"]["segmentation"]["index"]) for p in parts]
    h, w = parts[0]["geometry"]["rle"]["size"]
    out = np.zeros((h, w), dtype=np.uint8 if max(indexes) <= 255 else np.uint16)
    for part, idx in zip(parts, indexes, strict=True):
        out[rle_decode(part["geometry"]["rle"])] = idx
    return out


def encode_index_png(index: np.ndarray) -> bytes:
    """``index`` as a one-channel PNG (8-bit grey, or 16-bit when it needs it)."""
    img = Image.fromarray(index.astype(np.uint8) if index.dtype == np.uint8
                          else index.astype(np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class SegmentationMask(NamedTuple):
    """An item's segmentation: its index array and the segmentation as sent."""

    index: np.ndarray
    segmentation: SegmentationAnnotation


def segmentation_mask(objects: Iterable[dict[str, Any]], what: str, *,
                      prediction: bool = False) -> SegmentationMask:
    """The segmentation the masks among ``objects`` (one item's, object JSON) were split
    from, with its index array; a :class:`NotFoundError` naming ``what`` when there is
    none."""
    parts = [o for o in objects if is_segment(o)]
    if not parts:
        raise NotFoundError(f"{what} has no segmentation")
    _, (seg, *_) = rebuild_segmentations(parts)
    return SegmentationMask(index_mask(parts),
                            payload_to_annotation(seg, prediction=prediction))
