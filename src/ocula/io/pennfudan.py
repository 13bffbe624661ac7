"""Penn-Fudan pedestrians: ``PNGImages/<stem>.png`` + ``PedMasks/<stem>_mask.png``.

Each mask PNG is an instance map: pixel value ``k`` (``1..N``) marks pedestrian ``k``
and 0 is background. Like the Nucleus tutorial, every pedestrian yields a
:class:`BoxAnnotation` (the tight box around its pixels, ``annotation_id``
``"<stem>/<k>"``) and a :class:`MaskAnnotation` (``"<stem>/<k>/mask"``).
The ``Annotation/*.txt`` files of the original archive are not needed and not read.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocula.core.masks import rle_decode, rle_encode
from ocula.core.types import BoxAnnotation, DatasetItem, MaskAnnotation
from ocula.errors import GeometryError, ImageError, ValidationError

from ._common import (
    ImportedData,
    find_images,
    group_parts,
    image_size,
    item_size,
    part_id,
    require_dir,
    require_known_items,
)

__all__ = ["export_pennfudan", "import_pennfudan"]


def _read_mask(path: Path, ref: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16", "1"):
                raise ImageError(f"mask {path.name} has mode {img.mode}; expected a "
                                 "single-channel instance map", reference_id=ref)
            return np.asarray(img)
    except OSError as exc:
        raise ImageError(f"cannot read mask {path}: {exc}", reference_id=ref,
                         path=str(path)) from exc


def import_pennfudan(path: Path | str, *, label: str = "pedestrian") -> ImportedData:
    """Read a Penn-Fudan folder (the ``PennFudanPed`` directory of the archive).

    Images without a mask become unlabelled items (reported in ``warnings``); a mask
    whose size differs from its image raises :class:`GeometryError`.
    """
    root = require_dir(Path(path), "Penn-Fudan folder")
    image_dir = require_dir(root / "PNGImages", "Penn-Fudan PNGImages folder")
    mask_dir = root / "PedMasks"
    data = ImportedData(categories=[label])
    for image in find_images(image_dir):
        ref = image.relative_to(image_dir).as_posix()
        width, height = image_size(image, ref)
        data.items.append(DatasetItem(image_location=str(image.absolute()), reference_id=ref,
                                      metadata={}, width=width, height=height))
        mask_file = mask_dir / image.relative_to(image_dir).with_name(f"{image.stem}_mask.png")
        if not mask_file.is_file():
            data.warnings.append(f"{ref}: no mask {mask_file.name}; item left unlabelled")
            continue
        instances = _read_mask(mask_file, ref)
        if instances.shape != (height, width):
            raise GeometryError(f"mask {mask_file.name} is {instances.shape[1]}x"
                                f"{instances.shape[0]} but image {ref} is {width}x{height}",
                                reference_id=ref)
        stem = image.relative_to(image_dir).with_suffix("").as_posix()
        for k in np.unique(instances):
            if k == 0:
                continue
            rle = rle_encode(instances == k)
            base = f"{stem}/{int(k)}"
            mask = MaskAnnotation(label=label, mask=rle, reference_id=ref,
                                  annotation_id=part_id(base, "mask"))
            x, y, w, h = mask.bbox()  # type: ignore[misc]  # never empty here
            data.annotations.append(BoxAnnotation(label=label, x=x, y=y, width=w, height=h,
                                                  reference_id=ref, annotation_id=base))
            data.annotations.append(mask)
    if not data.items:
        raise ValidationError(f"no images in {image_dir}", path=str(image_dir))
    return data


def export_pennfudan(items: Sequence[DatasetItem], annotations: Sequence[Any],
                     out_dir: Path | str, *, copy_images: bool = True) -> Path:
    """Write ``PNGImages/`` (copied images) and ``PedMasks/<stem>_mask.png``.

    Only ground-truth masks are written; instance numbers follow the numeric suffix of
    their annotation ids (``"<stem>/<k>/mask"``) when present, else their order. Where
    masks overlap, the later one wins. Returns ``out_dir``.
    """
    out = Path(out_dir)
    masks: dict[str | None, list[tuple[int | None, MaskAnnotation]]] = {}
    for group in group_parts(annotations, fmt="Penn-Fudan"):
        segm = group.get("segm")
        if segm is None or segm.type != "mask" or segm.is_prediction:
            continue
        tail = (group["base"] or "").rsplit("/", 1)[-1]
        masks.setdefault(segm.reference_id, []).append(
            (int(tail) if tail.isdecimal() else None, segm))
    require_known_items((i.reference_id for i in items), masks)
    for item in items:
        ref = item.reference_id
        if not ref:
            raise ValidationError(f"item {item.image_location!r} has no reference_id")
        source = Path(item.image_location) if item.image_location else None
        width, height = item_size(item, annotations)
        entries = masks.get(ref, [])
        numbers = [n for n, _ in entries]
        if None in numbers or len(set(numbers)) != len(numbers):
            numbers = list(range(1, len(entries) + 1))
        if max(numbers, default=0) > 255:
            raise ValidationError(f"item {ref!r}: more than 255 instances", reference_id=ref)
        canvas = np.zeros((height, width), dtype=np.uint8)
        for number, (_, mask) in zip(numbers, entries, strict=True):
            bitmap = rle_decode(mask.mask)
            if bitmap.shape != canvas.shape:
                raise GeometryError(f"mask {mask.annotation_id!r} is {bitmap.shape[1]}x"
                                    f"{bitmap.shape[0]}, image is {width}x{height}",
                                    reference_id=ref)
            canvas[bitmap] = number
        rel = Path(ref)
        target = out / "PedMasks" / rel.with_name(f"{rel.stem}_mask.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(target)  # uint8 2-D -> mode "L"
        if copy_images and source is not None and source.is_file():
            dest = out / "PNGImages" / ref
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.absolute() != dest.absolute():
                shutil.copy2(source, dest)
    return out
