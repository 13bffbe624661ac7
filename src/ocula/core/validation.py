"""Checks at the boundary: every item and annotation is validated before any write.

Each check returns the errors it found instead of raising at the first, so a rejected
batch reports every offending entry at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from ocula.errors import (
    AnnotationTypeError,
    DuplicateIdError,
    GeometryError,
    MetadataError,
    OculaError,
    ValidationError,
)

# Boxes may overhang the image by this much (pixels): rounding in exporters and
# annotation tools routinely produces x + width = W + 0.5.
EDGE_TOLERANCE = 1.0


def check_metadata(metadata: Any, where: str, reference_id: str | None) -> OculaError | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return MetadataError(f"{where}: metadata must be a JSON object, got "
                             f"{type(metadata).__name__}", reference_id=reference_id)
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return MetadataError(f"{where}: metadata is not JSON-serialisable: {exc}",
                             reference_id=reference_id)
    return None


def find_duplicates(keys: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    dups: list[Any] = []
    for key in keys:
        if key in seen:
            dups.append(key)
        seen.add(key)
    return dups


def duplicate_errors(keys: Iterable[Any], what: str) -> list[OculaError]:
    return [
        DuplicateIdError(f"{what} {key!r} appears more than once in this batch",
                         reference_id=key if isinstance(key, str) else key[0])
        for key in dict.fromkeys(find_duplicates(keys))
    ]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_annotation(
    ann: Any,
    image_size: tuple[int, int] | None,
    allowed_types: list[str] | None,
    *,
    prediction: bool = False,
) -> OculaError | None:
    """Validate one annotation or prediction against its item's size; None if fine."""
    ref = ann.reference_id
    kind = "prediction" if prediction else "annotation"
    where = f"{ann.type} {kind} {ann.annotation_id or ''} on {ref!r}".replace("  ", " ")
    if not ref:
        return ValidationError(f"{kind} has no reference_id", reference_id=None)
    if allowed_types is not None and ann.type not in allowed_types:
        return AnnotationTypeError(
            f"{where}: this dataset does not allow {ann.type!r} annotations "
            f"(allowed: {', '.join(allowed_types)})", reference_id=ref)
    label = getattr(ann, "label", None)
    if ann.type != "segmentation" and (not isinstance(label, str) or not label.strip()):
        return ValidationError(f"{where}: label is missing", reference_id=ref)
    if prediction and ann.type != "segmentation":
        conf = getattr(ann, "confidence", None)
        if conf is not None and (not _is_number(conf) or not 0.0 <= conf <= 1.0):
            return ValidationError(f"{where}: confidence must be in [0, 1], got {conf!r}",
                                   reference_id=ref)
    if (err := check_metadata(ann.metadata, where, ref)) is not None:
        return err
    return _check_geometry(ann, image_size, where)


def _check_geometry(ann: Any, image_size: tuple[int, int] | None, where: str) -> OculaError | None:
    ref = ann.reference_id
    if ann.type == "box":
        values = (ann.x, ann.y, ann.width, ann.height)
        if not all(_is_number(v) for v in values):
            return GeometryError(f"{where}: box coordinates must be finite numbers, got "
                                 f"{values}", reference_id=ref)
        if ann.width < 0 or ann.height < 0:
            return GeometryError(f"{where}: box has negative size "
                                 f"({ann.width}×{ann.height})", reference_id=ref)
    elif ann.type == "polygon":
        if len(ann.vertices) < 3:
            return GeometryError(f"{where}: a polygon needs at least 3 vertices",
                                 reference_id=ref)
        if not all(_is_number(v.x) and _is_number(v.y) for v in ann.vertices):
            return GeometryError(f"{where}: polygon vertices must be finite numbers",
                                 reference_id=ref)
    elif ann.type == "keypoints":
        for k in ann.keypoints:
            if k.visible and not (_is_number(k.x) and _is_number(k.y)):
                return GeometryError(f"{where}: visible keypoints need finite x and y",
                                     reference_id=ref)
    elif ann.type == "mask":
        size = ann.mask.get("size") if isinstance(ann.mask, dict) else None
        counts = ann.mask.get("counts") if isinstance(ann.mask, dict) else None
        if not size or not isinstance(counts, list):
            return GeometryError(f"{where}: mask must be RLE {{size, counts}}", reference_id=ref)
        if image_size and tuple(size) != (image_size[1], image_size[0]):
            return GeometryError(f"{where}: mask size {size} does not match the image "
                                 f"({image_size[1]}×{image_size[0]} h×w)", reference_id=ref)
        if sum(counts) != size[0] * size[1]:
            return GeometryError(f"{where}: RLE counts do not cover the mask", reference_id=ref)
    box = ann.bbox() if ann.type != "mask" else None
    if box is not None and image_size is not None:
        x, y, w, h = box
        width, height = image_size
        t = EDGE_TOLERANCE
        if x < -t or y < -t or x + w > width + t or y + h > height + t:
            return GeometryError(
                f"{where}: geometry ({x:g}, {y:g}, {w:g}×{h:g}) lies outside the "
                f"{width}×{height} image", reference_id=ref)
    return None
