"""CVAT for images 1.1 XML: the writer (:func:`export_cvat`); the format and the reader
are described in :mod:`ocula.io.cvat`.

Lines are written as ``<polyline>``. A multicategory annotation is written as one
``<tag>`` per label (CVAT has no multi-label tag), so it reads back as that many
categories."""

from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocula.core.masks import rle_decode, rle_encode
from ocula.core.types import CategoryAnnotation, DatasetItem
from ocula.errors import DuplicateIdError, ValidationError

from ._common import group_parts, is_number, item_size, number, require_known_items, unique_labels

__all__ = ["export_cvat"]

_GEOMETRY_BOX = ("xtl", "ytl", "xbr", "ybr")
_IMAGE_FIELDS = ("id", "name", "width", "height")
_SPEC_FIELDS = ("name", "mutable", "input_type", "default_value", "values")


# --- writing ------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A value as CVAT writes it: checkboxes as true/false, numbers without a '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(number(value)) if is_number(value) else str(value)


def _attributes(obj: Any) -> dict[str, Any]:
    attributes = (obj.metadata or {}).get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
            isinstance(v, str | bool) or is_number(v) for v in attributes.values()):
        raise ValidationError(f"annotation {obj.annotation_id!r}: metadata 'attributes' must "
                              "map names to text, numbers or booleans for CVAT",
                              reference_id=obj.reference_id)
    return attributes


def _step(values: Sequence[Any]) -> str:
    """A number attribute's step fine enough for every value seen."""
    decimals = 0
    for v in values:
        if isinstance(v, float) and not v.is_integer():
            text = repr(v)
            decimals = max(decimals, 10 if "e" in text else len(text.partition(".")[2]))
    return f"{10.0 ** -decimals:.{decimals}f}"


def _inferred_spec(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """An attribute spec for values no ``categories`` record declares."""
    if all(isinstance(v, bool) for v in values):
        kind, default, options = "checkbox", "false", ["false"]
    elif all(is_number(v) for v in values):
        low, high = math.floor(min(values)), math.ceil(max(values))
        kind, default = "number", str(low)
        options = [str(low), str(max(high, low + 1)), _step(values)]
    else:
        kind, default, options = "text", "", []
    return {"name": name, "mutable": "False", "input_type": kind, "default_value": default,
            "values": options}


def _label_records(categories: Sequence[str] | Sequence[dict] | None, objects: Sequence[Any]
                   ) -> list[dict[str, Any]]:
    if categories and isinstance(categories[0], dict):
        records = copy.deepcopy([dict(c) for c in categories])  # type: ignore[arg-type]
    else:
        records = [{"name": n} for n in categories or []]
    known = {r["name"] for r in records}
    labels = unique_labels(o.label for o in objects)
    records += [{"name": n} for n in sorted(set(labels) - known)]
    seen: dict[str, dict[str, list[Any]]] = {}
    for obj in objects:
        for name, value in _attributes(obj).items():
            seen.setdefault(obj.label, {}).setdefault(name, []).append(value)
    for rec in records:
        specs = rec.setdefault("attributes", [])
        declared = {s.get("name") for s in specs}
        specs += [_inferred_spec(n, vals) for n, vals in seen.get(rec["name"], {}).items()
                  if n not in declared]
    return records


def _write_meta(root: ET.Element, records: Sequence[dict[str, Any]], size: int) -> None:
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    for tag, text in (("name", "ocula export"), ("size", str(size)), ("mode", "annotation")):
        ET.SubElement(task, tag).text = text
    labels = ET.SubElement(task, "labels")
    for rec in records:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = rec["name"]
        for key in ("color", "type"):
            if rec.get(key) and rec[key] != "skeleton":  # a skeleton needs its sub-labels
                ET.SubElement(label, key).text = str(rec[key])
        attrs = ET.SubElement(label, "attributes")
        for spec in rec["attributes"]:
            attr = ET.SubElement(attrs, "attribute")
            for key in _SPEC_FIELDS:
                if key == "values":
                    ET.SubElement(attr, key).text = "\n".join(map(str, spec.get(key) or []))
                elif key in spec:
                    ET.SubElement(attr, key).text = str(spec[key])


def _part_groups(objects: Sequence[Any]) -> dict[int, int]:
    """CVAT group ids tying the parts of one source object (COCO's box + polygon)."""
    taken = [g for o in objects if isinstance(g := (o.metadata or {}).get("group_id"), int)]
    next_id = max(taken, default=0) + 1
    out: dict[int, int] = {}
    for group in group_parts(objects, fmt="CVAT"):
        parts = [group[k] for k in ("box", "segm", "keypoints") if k in group]
        if len(parts) > 1 and not any((p.metadata or {}).get("group_id") for p in parts):
            out.update((id(p), next_id) for p in parts)
            next_id += 1
    return out


def _mask_attrs(ann: Any, size: tuple[int, int]) -> dict[str, str]:
    """COCO RLE of the image as CVAT's row-major runs over the mask's tight box."""
    if list(ann.mask["size"]) != [size[1], size[0]]:
        raise ValidationError(f"mask {ann.annotation_id!r} is {ann.mask['size']} (h, w), its "
                              f"image {size[1]}x{size[0]}", reference_id=ann.reference_id)
    full = rle_decode(ann.mask)
    ys, xs = np.nonzero(full)
    # An empty mask has no box; CVAT's smallest box (1x1, one background run) holds it.
    x0, y0, x1, y1 = (xs.min(), ys.min(), xs.max(), ys.max()) if xs.size else (0, 0, 0, 0)
    crop = full[y0:y1 + 1, x0:x1 + 1]
    counts = rle_encode(crop.T)["counts"]  # column-major runs of the transpose
    return {"rle": ", ".join(map(str, counts)), "left": str(x0), "top": str(y0),
            "width": str(x1 - x0 + 1), "height": str(y1 - y0 + 1)}


def _geometry(ann: Any, size: tuple[int, int]) -> dict[str, str]:
    if ann.type == "box":
        corners = (ann.x, ann.y, ann.x + ann.width, ann.y + ann.height)
        return dict(zip(_GEOMETRY_BOX, map(_text, corners), strict=True))
    if ann.type in ("polygon", "line"):
        return {"points": ";".join(f"{_text(v.x)},{_text(v.y)}" for v in ann.vertices)}
    if ann.type == "keypoints":
        for j, kp in enumerate(ann.keypoints):
            if kp.x is None or kp.y is None or not kp.visible:
                raise ValidationError(f"keypoints {ann.annotation_id!r}: point {j} is "
                                      f"{'unlabelled' if kp.x is None else 'not visible'}; "
                                      "CVAT <points> hold visible points only",
                                      reference_id=ann.reference_id)
        return {"points": ";".join(f"{_text(k.x)},{_text(k.y)}" for k in ann.keypoints)}
    if ann.type == "mask":
        return _mask_attrs(ann, size)
    return {}


def _int_meta(ann: Any, key: str) -> int | None:
    value = (ann.metadata or {}).get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValidationError(f"annotation {ann.annotation_id!r}: metadata {key!r} must be an "
                              f"integer for CVAT, got {value!r}", reference_id=ann.reference_id)
    return value


def _write_shape(image: ET.Element, ann: Any, size: tuple[int, int], group: int | None
                 ) -> None:
    tag = {"box": "box", "polygon": "polygon", "line": "polyline", "keypoints": "points",
           "mask": "mask", "category": "tag"}[ann.type]
    meta = ann.metadata or {}
    attrs = {"label": ann.label}
    if "source" in meta:
        attrs["source"] = str(meta["source"])
    if tag != "tag":  # CVAT's loader reads occluded on every shape
        attrs["occluded"] = "1" if meta.get("occluded") else "0"
    attrs.update(_geometry(ann, size))
    rotation = meta.get("rotation")
    if tag == "box" and rotation:
        if not is_number(rotation):
            raise ValidationError(f"annotation {ann.annotation_id!r}: rotation must be a "
                                  f"number, got {rotation!r}", reference_id=ann.reference_id)
        attrs["rotation"] = _text(rotation)
    if _int_meta(ann, "z_order") is not None:
        attrs["z_order"] = str(meta["z_order"])
    group = _int_meta(ann, "group_id") or group
    if group:
        attrs["group_id"] = str(group)
    el = ET.SubElement(image, tag, attrs)
    for name, value in _attributes(ann).items():
        ET.SubElement(el, "attribute", {"name": name}).text = _text(value)


def _as_tags(ann: Any) -> list[Any]:
    """A multicategory as one category per label (CVAT's tags hold one label each);
    anything else as it is."""
    if ann.type != "multicategory":
        return [ann]
    return [CategoryAnnotation(label, ann.reference_id, metadata=ann.metadata,
                               annotation_id=ann.annotation_id) for label in ann.labels]


def export_cvat(items: Sequence[DatasetItem], annotations: Sequence[Any], out_path: Path | str,
                *, categories: Sequence[str] | Sequence[dict] | None = None) -> Path:
    """Write CVAT for images 1.1 XML to ``out_path`` (``annotations.xml`` inside it if it is
    a folder); returns the file written.

    ``categories`` lists the labels first in ``<meta>``: names, or label records such as
    ``imported.info["cvat"]["labels"]`` (which keep colours and attribute specs). Other
    labels follow in sorted order; attributes no record declares get a spec inferred
    from their values (checkbox, number or text). Ground-truth boxes, polygons, lines
    (``<polyline>``), visible keypoints (without names), masks (over their tight box)
    and categories are written, and multicategories as one ``<tag>`` per label;
    predictions are not, and other metadata keys are left out. Parts of one source object
    (same base id, e.g. COCO's box and polygon) share a new ``group_id``.
    Image ids are the items' ``cvat_id`` when all are distinct, else 0..N-1.
    """
    objects = [part for a in annotations if not a.is_prediction for part in _as_tags(a)]
    require_known_items((i.reference_id for i in items), (o.reference_id for o in objects))
    groups = _part_groups(objects)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    _write_meta(root, _label_records(categories, objects), len(items))
    by_item: dict[str | None, list[Any]] = {}
    for obj in objects:
        by_item.setdefault(obj.reference_id, []).append(obj)
    ids = [(i.metadata or {}).get("cvat_id") for i in items]
    if not all(isinstance(v, int) for v in ids) or len(set(ids)) != len(ids):
        ids = list(range(len(items)))
    names: set[str] = set()
    for item, image_id in zip(items, ids, strict=True):
        ref = item.reference_id
        if not ref:
            raise ValidationError(f"item {item.image_location!r} has no reference_id")
        if ref in names:
            raise DuplicateIdError(f"reference_id {ref!r} appears twice", reference_id=ref)
        names.add(ref)
        width, height = item_size(item, by_item.get(ref, ()))
        attrs = {"id": str(image_id), "name": ref, "width": str(width), "height": str(height)}
        extra = (item.metadata or {}).get("cvat_attributes")
        if isinstance(extra, dict):
            attrs.update({str(k): str(v) for k, v in extra.items() if k not in _IMAGE_FIELDS})
        image = ET.SubElement(root, "image", attrs)
        for obj in by_item.get(ref, ()):
            _write_shape(image, obj, (width, height), groups.get(id(obj)))
    ET.indent(root)
    out = Path(out_path)
    out = out / "annotations.xml" if out.is_dir() else out
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out
