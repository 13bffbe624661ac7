"""COCO export: items and annotations (and predictions) back to COCO instances JSON and
results lists. The parts of one source object (``"17"``, ``"17/polygon"``, ...) are merged
back into one record; see :mod:`ocula.io.coco` for the mapping both ways."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ocula.core.types import DatasetItem, KeypointsAnnotation, payload_to_annotation
from ocula.errors import DuplicateIdError, ValidationError

from ._common import UNGROUPED_TYPES, group_parts, item_size, number, unique_labels

__all__ = ["export_coco", "export_coco_results", "export_slice_contents", "save_coco"]

_ANN_FIELDS = {"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd",
               "keypoints", "num_keypoints", "score"}
_IMAGE_FIELDS = {"id", "file_name", "width", "height"}


def _image_ids(items: Sequence[DatasetItem]) -> list[Any]:
    """COCO image ids: the items' ``coco_id`` if all have distinct ones of one type (ints
    or strings), else 1..N."""
    ids = [(i.metadata or {}).get("coco_id") for i in items]
    for kind in (int, str):
        if all(isinstance(v, kind) and not isinstance(v, bool) for v in ids) and \
                len(set(ids)) == len(ids):
            return ids
    return list(range(1, len(items) + 1))


def _category_records(categories: Sequence[str] | Sequence[dict] | None,
                      objects: Sequence[Any]) -> list[dict]:
    labels = unique_labels(getattr(o, "label", None) for o in objects
                           if o.type not in UNGROUPED_TYPES)
    if categories and isinstance(categories[0], dict):
        records = [dict(c) for c in categories]  # type: ignore[arg-type]
    else:
        records = [{"id": i, "name": n} for i, n in enumerate(categories or [], start=1)]
    known = {c["name"] for c in records}
    next_id = max((c["id"] for c in records if isinstance(c["id"], int)), default=0) + 1
    for name in sorted(set(labels) - known):
        records.append({"id": next_id, "name": name})
        next_id += 1
    for obj in objects:  # keypoint names/skeleton for categories that lack them
        if isinstance(obj, KeypointsAnnotation) and obj.names:
            rec = next(c for c in records if c["name"] == obj.label)
            if not rec.get("keypoints"):
                rec["keypoints"] = list(obj.names)
                rec["skeleton"] = [[a + 1, b + 1] for a, b in obj.skeleton]
    return records


def _record(group: dict[str, Any], *, image_id: Any, category_id: Any) -> dict[str, Any]:
    box, segm, kps = group.get("box"), group.get("segm"), group.get("keypoints")
    parts = [p for p in (box, segm, kps) if p is not None]
    first = parts[0]
    rec: dict[str, Any] = {"id": None, "image_id": image_id, "category_id": category_id}
    for part in parts:
        rec.update({k: v for k, v in (part.metadata or {}).items() if k not in rec
                    and k not in _ANN_FIELDS})
    if segm is not None:
        if segm.type == "polygon":
            rec["segmentation"] = [[number(c) for v in segm.vertices for c in (v.x, v.y)]]
        else:
            rec["segmentation"] = {"size": list(segm.mask["size"]),
                                   "counts": list(segm.mask["counts"])}
    bbox = None
    for part in (box, segm):  # the first part with a box (a mask's box needs decoding)
        bbox = part.bbox() if part is not None else None
        if bbox is not None:
            break
    if bbox is None and kps is not None:  # all labelled keypoints, occluded ones too
        pts = [(k.x, k.y) for k in kps.keypoints if k.x is not None and k.y is not None]
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            bbox = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    if box is not None or segm is not None or not first.is_prediction:
        # COCOeval needs a GT bbox even for keypoints-only objects (derived here);
        # keypoint results are written without one, as detectors write them.
        rec["bbox"] = [number(v) for v in (bbox or (0, 0, 0, 0))]
    area = next((p.area for p in (box, segm) if p is not None and p.area is not None), None)
    if area is None and not first.is_prediction:  # GT needs an area; loadRes computes its own
        shaped = segm if segm is not None else box
        area = shaped.computed_area() if shaped is not None else bbox[2] * bbox[3] if bbox else 0
    if area is not None:
        rec["area"] = number(area)
    crowd = any(getattr(p, "iscrowd", False) for p in parts)
    if not first.is_prediction or crowd:
        rec["iscrowd"] = int(crowd)
    if kps is not None:
        flat: list[int | float] = []
        for k in kps.keypoints:
            if k.x is None or k.y is None:
                flat.extend((0, 0, 0))
            else:
                flat.extend((number(k.x), number(k.y), 2 if k.visible else 1))
        rec["keypoints"] = flat
        rec["num_keypoints"] = sum(1 for k in kps.keypoints if k.x is not None)
    scores = [p.confidence for p in parts if getattr(p, "confidence", None) is not None]
    if first.is_prediction and scores:
        rec["score"] = scores[0]
    elif not first.is_prediction and "score" in (first.metadata or {}):
        rec["score"] = first.metadata["score"]  # model-made ground truth keeps its score
    return rec


def _build(items: Sequence[DatasetItem], objects: Sequence[Any],
           categories: Sequence[str] | Sequence[dict] | None
           ) -> tuple[list[dict], list[dict], list[dict]]:
    cat_records = _category_records(categories, objects)
    cat_ids = {}
    for c in cat_records:
        cat_ids.setdefault(c["name"], c["id"])
    images, image_ids = [], {}
    for item, image_id in zip(items, _image_ids(items), strict=True):
        if not item.reference_id:
            raise ValidationError(f"item {item.image_location!r} has no reference_id")
        if item.reference_id in image_ids:
            raise DuplicateIdError(f"reference_id {item.reference_id!r} appears twice",
                                   reference_id=item.reference_id)
        width, height = item_size(item, objects)
        rec = {"id": image_id, "file_name": item.reference_id, "width": width, "height": height}
        rec.update({k: v for k, v in (item.metadata or {}).items()
                    if k not in _IMAGE_FIELDS and k != "coco_id"})
        images.append(rec)
        image_ids[item.reference_id] = image_id
    records = []
    groups = group_parts(objects)
    for group in groups:
        first = next(group[k] for k in ("box", "segm", "keypoints") if k in group)
        if first.reference_id not in image_ids:
            raise ValidationError(f"annotation {first.annotation_id!r} refers to unknown item "
                                  f"{first.reference_id!r}", reference_id=first.reference_id)
        if not first.label:
            raise ValidationError(f"annotation {first.annotation_id!r} has no label",
                                  reference_id=first.reference_id)
        records.append(_record(group, image_id=image_ids[first.reference_id],
                               category_id=cat_ids[first.label]))
    bases = [g["base"] for g in groups]
    # isdecimal, not isdigit: "³" is a digit that int() refuses.
    ids: list[int] = ([int(b) for b in bases] if all(b is not None and b.isdecimal()
                                                     for b in bases) else [])
    if len(set(ids)) != len(records):  # not all numbers, or two alike ("7" and "٧")
        ids = list(range(1, len(records) + 1))
    for rec, ann_id in zip(records, ids, strict=True):
        rec["id"] = ann_id
    return images, records, cat_records


def export_coco(items: Sequence[DatasetItem], annotations: Sequence[Any] = (),
                predictions: Sequence[Any] | None = None, *,
                categories: Sequence[str] | Sequence[dict] | None = None,
                info: dict | None = None, licenses: list | None = None) -> dict[str, Any]:
    """Build a COCO instances dict (``json.dump`` it to write the file).

    ``categories`` fixes the category ids: label names numbered from 1 in that order,
    or COCO category records (e.g. ``imported.info["coco"]["categories"]``, which keeps
    the original ids, supercategories and keypoint names). Labels not listed are added
    after, in sorted order; by default all labels are numbered from 1 in sorted order.
    Image ids are the items' ``coco_id`` metadata when every item has a distinct one,
    else 1..N in ``items`` order; annotation ids likewise come from numeric annotation
    ids or are renumbered. Masks are written as uncompressed RLE, polygons as
    segmentation lists. ``predictions`` (optional) are written as extra annotations
    carrying a ``score``. Category and multicategory annotations are not exported (COCO
    has no image-level labels), nor are lines (COCO has no open polylines; export them
    as CVAT ``<polyline>``).
    """
    objects = [*annotations, *(predictions or [])]
    images, records, cat_records = _build(items, objects, categories)
    out: dict[str, Any] = {}
    if info is not None:
        out["info"] = info
    if licenses is not None:
        out["licenses"] = licenses
    out.update(images=images, annotations=records, categories=cat_records)
    return out


def export_coco_results(items: Sequence[DatasetItem], predictions: Sequence[Any], *,
                        categories: Sequence[str] | Sequence[dict] | None = None
                        ) -> list[dict[str, Any]]:
    """Predictions in COCO's results format (``pycocotools.COCO.loadRes`` input).

    Image and category ids follow :func:`export_coco` for the same ``items`` and
    ``categories`` — pass the ground truth's categories so the ids agree.
    """
    _, records, _ = _build(items, predictions, categories)
    for rec in records:
        rec.pop("id", None)
        rec.pop("iscrowd", None)
    return records


def export_slice_contents(contents: Mapping[str, Any]) -> dict[str, Any]:
    """A COCO dict of what a slice holds (``Service.slice_contents``: item, annotation
    and prediction payloads); predictions are written with their ``score``."""
    items = [DatasetItem.from_payload(p) for p in contents.get("items", [])]
    anns = [payload_to_annotation(p) for p in contents.get("annotations", [])]
    preds = [payload_to_annotation(p, prediction=True) for p in contents.get("predictions", [])]
    return export_coco(items, anns, preds or None)


def save_coco(items: Sequence[DatasetItem], annotations: Sequence[Any], out_path: Path | str,
              **options: Any) -> Path:
    """Write :func:`export_coco`'s dict to ``out_path`` (parents created); returns it."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(export_coco(items, annotations, **options)), encoding="utf-8")
    return out
