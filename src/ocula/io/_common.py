"""Pieces shared by the importers and exporters: the result type, file and image helpers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ocula.core.types import (
    PART_SUFFIXES as PART_SUFFIXES,  # re-exported: the importers' part ids
)
from ocula.core.types import (
    Annotation,
    BoxPrediction,
    CategoryPrediction,
    DatasetItem,
    KeypointsPrediction,
    MaskPrediction,
    PolygonPrediction,
    SegmentationPrediction,
    base_id,
)
from ocula.core.types import part_id as part_id
from ocula.errors import GeometryError, ImageError, NotFoundError, ValidationError

Prediction = (
    BoxPrediction | PolygonPrediction | KeypointsPrediction | CategoryPrediction
    | MaskPrediction | SegmentationPrediction
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class ImportedData:
    """What an importer returns: plain domain objects, not yet in any store.

    ``items`` have ``image_location`` set to an absolute local path; every annotation
    and prediction names its item through ``reference_id``. ``categories`` lists the
    label names in the source's order. ``info`` keeps format-specific extras an
    exporter may want back (for COCO: ``info["coco"]`` with the original ``categories``
    records, ``info`` and ``licenses``). ``warnings`` lists what was skipped and why.
    """

    items: list[DatasetItem] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is an existing file, else raise :class:`NotFoundError`."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{what} not found: {path}", path=str(path))
    return path


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is an existing directory, else raise :class:`NotFoundError`."""
    path = Path(path)
    if not path.is_dir():
        raise NotFoundError(f"{what} not found or not a directory: {path}", path=str(path))
    return path


def load_json(path: Path, what: str = "annotation file") -> Any:
    """Read a JSON file, turning a missing file or bad JSON into typed errors."""
    path = require_file(path, what)
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}",
            path=str(path), line=exc.lineno, column=exc.colno,
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{what} {path} is not UTF-8 text: {exc}", path=str(path)) from exc


def image_size(path: Path, reference_id: str | None = None) -> tuple[int, int]:
    """``(width, height)`` of an image, reading only its header."""
    try:
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError as exc:
        raise ImageError(f"image not found: {path}", reference_id=reference_id,
                         path=str(path)) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"cannot read image {path}: {exc}", reference_id=reference_id,
                         path=str(path)) from exc


def find_images(directory: Path) -> list[Path]:
    """Image files under ``directory`` (recursively), sorted by relative path."""
    return sorted(
        p for p in directory.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def check_box(values: Any, *, what: str, reference_id: str | None) -> tuple[float, ...]:
    """Validate four finite numbers with non-negative width/height (``x, y, w, h``)."""
    if (not isinstance(values, list | tuple) or len(values) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool)
                       and math.isfinite(v) for v in values)):
        raise GeometryError(f"{what}: bbox must be 4 finite numbers [x, y, width, height], "
                            f"got {values!r}", reference_id=reference_id)
    x, y, w, h = (float(v) for v in values)
    if w < 0 or h < 0:
        raise GeometryError(f"{what}: bbox has a negative size {values!r}",
                            reference_id=reference_id)
    return x, y, w, h


def unique_labels(labels: Iterable[str | None]) -> list[str]:
    """Distinct non-empty labels in first-seen order."""
    seen: dict[str, None] = {}
    for label in labels:
        if label:
            seen.setdefault(label, None)
    return list(seen)


def number(value: float) -> int | float:
    """``3.0 -> 3`` so exported files stay tidy; other values unchanged."""
    return int(value) if float(value).is_integer() else float(value)


# Objects that are never parts of a source object; COCO has no place for them either
# (no image-level labels, no open curves), so its export leaves them out.
UNGROUPED_TYPES = ("category", "multicategory", "line")


def group_parts(objects: Iterable[Any], *, fmt: str = "COCO") -> list[dict[str, Any]]:
    """Gather the parts of each source object, undoing :func:`part_id`.

    Returns one dict per object with keys among ``"box"``, ``"segm"`` (polygon or
    mask), ``"keypoints"`` and ``"base"`` (the shared id). Parts merge when they have
    the same item, base id, label and prediction-ness; objects without an id stand
    alone. Category, multicategory and line annotations are skipped (no format that
    groups parts holds them as parts); index-mask segmentations are refused.
    """
    groups: list[dict[str, Any]] = []
    index: dict[tuple, dict[str, Any]] = {}
    for obj in objects:
        if obj.type in UNGROUPED_TYPES:
            continue
        kind = "segm" if obj.type in ("polygon", "mask") else obj.type
        if kind not in ("box", "segm", "keypoints"):
            raise ValidationError(f"cannot export a {obj.type!r} annotation to {fmt}; expand "
                                  "it into instance masks first", reference_id=obj.reference_id)
        key = (obj.is_prediction, obj.reference_id, base_id(obj.annotation_id), obj.label)
        group = index.get(key) if obj.annotation_id is not None else None
        if group is None or kind in group:
            group = {"base": key[2]}
            groups.append(group)
            index[key] = group
        group[kind] = obj
    return groups


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool), as JSON numbers should be."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def all_numbers(values: list) -> bool:
    """Fast check that a JSON list holds only finite numbers (no bools, strings, NaN)."""
    if all(type(v) is float or type(v) is int for v in values):
        return math.isfinite(sum(values)) or all(math.isfinite(v) for v in values)
    return False


def item_size(item: DatasetItem, objects: Sequence[Any] = ()) -> tuple[int, int]:
    """``(width, height)`` of an item: its fields, else its local image's header, else
    the size of one of its masks in ``objects``; :class:`ValidationError` if none."""
    if item.width is not None and item.height is not None:
        return int(item.width), int(item.height)
    loc = item.image_location
    if loc and not loc.startswith(("http://", "https://")) and Path(loc).is_file():
        return image_size(Path(loc), item.reference_id)
    for obj in objects:
        if obj.reference_id == item.reference_id and obj.type == "mask":
            h, w = obj.mask["size"]
            return int(w), int(h)
    raise ValidationError(f"item {item.reference_id!r} has no width/height and its image is "
                          "not a readable local file", reference_id=item.reference_id)


def require_known_items(known: Iterable[str | None], referenced: Iterable[str | None]) -> None:
    """Raise if an annotation being exported names an item the export does not hold."""
    have = set(known)
    stray = next((r for r in referenced if r not in have), None)
    if stray is not None:
        raise ValidationError(f"annotation refers to unknown item {stray!r}", reference_id=stray)
