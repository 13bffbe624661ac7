"""Rows to JSON (Nucleus field names) and domain objects to rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ocula.core.types import payload_to_annotation


def item_payload(row: Any, url: str | None = None) -> dict[str, Any]:
    """The JSON form of an item row."""
    return {
        "id": row.id,
        "reference_id": row.reference_id,
        "image_url": url or row.image_location,
        "original_image_url": row.image_location,
        "width": row.width,
        "height": row.height,
        "metadata": row.metadata or {},
    }


def object_payload(row: Any, reference_id: str) -> dict[str, Any]:
    """The JSON form of an annotation or prediction row."""
    if row.type == "box":
        geometry: dict[str, Any] = {"x": row.x, "y": row.y, "width": row.width,
                                    "height": row.height}
    else:
        geometry = row.geometry or {}
    body: dict[str, Any] = {
        "id": row.id,
        "type": row.type,
        "label": row.label,
        "geometry": geometry,
        "reference_id": reference_id,
        "annotation_id": row.annotation_id,
        "metadata": row.metadata or {},
    }
    if row.type in ("category", "multicategory") and geometry.get("taxonomy_name") is not None:
        body["taxonomy_name"] = geometry["taxonomy_name"]
    if row.type == "multicategory":  # labels (its label is None)
        body["labels"] = list(geometry.get("labels") or [])
    if row.iscrowd:
        body["iscrowd"] = True
    if row.area is not None and row.type not in ("category", "multicategory"):
        body["area"] = row.area
    confidence = getattr(row, "confidence", None)
    if confidence is not None:
        body["confidence"] = confidence
    class_pdf = getattr(row, "class_pdf", None)
    if class_pdf:
        body["class_pdf"] = class_pdf
    track = getattr(row, "track_id", None)
    if track is not None:
        body["track_reference_id"] = track
    return body


def row_to_object(row: Any, reference_id: str, *, prediction: bool = False) -> Any:
    """A domain annotation/prediction rebuilt from its row."""
    return payload_to_annotation(object_payload(row, reference_id), prediction=prediction)


# Column order of :func:`object_values`, shared by annotations and predictions.
OBJECT_COLUMNS = ("type", "label", "x", "y", "width", "height", "area", "iscrowd",
                  "geometry", "metadata", "track_id")


def object_values(ann: Any, metadata_json: str | None) -> tuple[Any, ...]:
    """The geometry columns of a row as a tuple in OBJECT_COLUMNS order, JSON serialised
    (for bulk inserts)."""
    if ann.type == "box":
        # The hot path at millions of boxes: no dict, no JSON geometry.
        area = ann.area if ann.area is not None else float(ann.width) * float(ann.height)
        return ("box", ann.label, ann.x, ann.y, ann.width, ann.height, area,
                bool(ann.iscrowd), None, metadata_json, ann.track_reference_id)
    cols = object_columns(ann)
    geometry = cols["geometry"]
    return (cols["type"], cols["label"], cols["x"], cols["y"], cols["width"], cols["height"],
            cols["area"], cols["iscrowd"],
            json.dumps(geometry) if geometry is not None else None, metadata_json,
            cols["track_id"])


def object_rows(head_columns: Sequence[str], head: Sequence[Iterable[Any]],
                objs: Sequence[Any], metadata_json: Sequence[str | None]
                ) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    """Rows for a bulk insert, ``(columns, rows)``: the ``head`` columns, then each
    object's :func:`object_values`."""
    return ((*head_columns, *OBJECT_COLUMNS), (
        first + object_values(obj, meta) for first, obj, meta
        in zip(zip(*head, strict=False), objs, metadata_json, strict=True)))


def box_values(head_columns: Sequence[str], head: Sequence[list[Any]],
               fields: dict[str, list[Any]], metadata_json: list[str | None]
               ) -> tuple[tuple[str, ...], dict[str, Any], list[list[Any]]]:
    """Plain boxes for :func:`~ocula.core.store.bulk.insert_columns`, ``(columns,
    constants, values)``: the ``head`` columns, then the boxes' :func:`object_values`
    column by column (``fields``: their fields as lists, ``services.checks.box_columns``),
    except ``type`` and ``geometry``, the same for every box, given in ``constants``."""
    widths, heights, areas = fields["width"], fields["height"], fields["area"]
    if areas.count(None) == len(areas):
        areas = (np.array(widths, dtype=float) * np.array(heights, dtype=float)).tolist()
    else:
        areas = [a if a is not None else float(w) * float(h)
                 for a, w, h in zip(areas, widths, heights, strict=True)]
    columns = (*head_columns, *(c for c in OBJECT_COLUMNS if c not in _BOX_CONSTANTS))
    values = [*head, fields["label"], fields["x"], fields["y"], widths, heights, areas,
              list(map(bool, fields["iscrowd"])), metadata_json,
              fields["track_reference_id"]]
    return columns, dict(_BOX_CONSTANTS), values


_BOX_CONSTANTS = {"type": "box", "geometry": None}


def object_columns(ann: Any) -> dict[str, Any]:
    """The geometry columns of an annotation or prediction row."""
    box = ann.bbox()
    area = getattr(ann, "area", None)
    if area is None:
        area = ann.computed_area()
    geometry = None if ann.type == "box" else (ann.geometry() or None)
    x, y, w, h = box if box is not None else (None, None, None, None)
    return {
        "type": ann.type,
        "label": ann.label,
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        "area": area,
        "iscrowd": bool(getattr(ann, "iscrowd", False)),
        "geometry": geometry,
        "metadata": ann.metadata or None,
        "track_id": getattr(ann, "track_reference_id", None),
    }
