"""CVAT for images 1.1 XML (``annotations.xml``): import and export.

==============  ====================================================================
CVAT element    domain annotation
==============  ====================================================================
``<box>``       :class:`BoxAnnotation`: ``x=xtl, y=ytl, width=xbr-xtl, height=ybr-ytl``
                (CVAT's coordinates are continuous pixel corners, not 1-based)
``<polygon>``   :class:`PolygonAnnotation`
``<polyline>``  :class:`LineAnnotation`
``<points>``    :class:`KeypointsAnnotation`, every point visible, no names
``<mask>``      :class:`MaskAnnotation`: CVAT's row-major RLE of its ``left, top, width,
                height`` box, converted exactly to COCO uncompressed RLE of the image
``<tag>``       :class:`CategoryAnnotation`
``<ellipse>``, ``<cuboid>``, ``<skeleton>``: skipped with a warning
                (Ocula has no type that holds them faithfully)
==============  ====================================================================

``annotation_id`` is ``"<image name>/<k>"``, ``k`` counting the image's imported
elements in document order (skipped ones do not count, so ids survive a round trip).
Metadata layout, each key present only when the XML has it::

    {"occluded": bool, "z_order": int, "source": str,
     "group_id": int,      # omitted when 0 (no group), as CVAT writes it
     "rotation": float,    # boxes: CVAT's degrees about the centre, omitted when 0;
                           # x/y/width/height stay the box before rotation
     "attributes": {name: value}}

Attribute values are typed by the label's ``<input_type>`` in ``<meta>``: ``checkbox``
gives a bool, ``number`` an int or float, anything else the text as written. Items:
``reference_id`` is the image ``name``; ``metadata`` is ``{"cvat_id": id}`` plus
``"cvat_attributes"`` holding any other ``<image>`` attributes (``subset``, ...). The
``<meta>`` labels (name, color, type, attribute specs) are kept in
``ImportedData.info["cvat"]["labels"]``; pass them to :func:`export_cvat` as
``categories`` to write them back unchanged.

A label not declared in ``<meta>`` is refused (CVAT refuses labels not registered for
the task) unless the file declares no labels at all. ``<track>`` elements (CVAT for
video) are refused.

Writing is :mod:`ocula.io.cvat_export` (re-exported here as :func:`export_cvat`).

Security: the file is parsed by expat into :mod:`xml.etree.ElementTree` elements
(defusedxml is not a dependency), keeping each element's line for error messages.
Expat fetches no external entities, and entity declarations are refused outright, so
no entity expansion can blow up; CVAT files never declare entities.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import numpy as np

from ocula.core.masks import rle_decode, rle_encode
from ocula.core.types import (
    BoxAnnotation,
    CategoryAnnotation,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    LineAnnotation,
    MaskAnnotation,
    Point,
    PolygonAnnotation,
)
from ocula.errors import DuplicateIdError, GeometryError, OculaError, ValidationError

from ._common import (
    ImportedData,
    image_size,
    require_file,
    unique_labels,
)

__all__ = ["export_cvat", "import_cvat"]

_GEOMETRY = {"box": ("xtl", "ytl", "xbr", "ybr"), "polygon": ("points",),
             "polyline": ("points",), "points": ("points",),
             "mask": ("rle", "left", "top", "width", "height"),
             "tag": ()}
_SKIPPED = ("ellipse", "cuboid", "skeleton")
_IMAGE_FIELDS = ("id", "name", "width", "height")
_SPEC_FIELDS = ("name", "mutable", "input_type", "default_value", "values")


# --- reading ------------------------------------------------------------------------


@dataclass
class _Source:
    """The parsed file: where each element sits, the declared labels, the warnings."""

    xml: Path
    lines: dict[int, int]
    specs: dict[str, dict[str, dict[str, Any]]]  # label -> attribute name -> spec
    warnings: list[str]
    notes: dict[str, list] = field(default_factory=dict)

    def line(self, el: ET.Element) -> int | None:
        return self.lines.get(id(el))

    def error(self, cls: type[OculaError], el: ET.Element, ref: str | None, message: str
              ) -> OculaError:
        line = self.line(el)
        image = f", image {ref!r}" if ref is not None else ""
        return cls(f"{self.xml.name} line {line}{image}: {message}", reference_id=ref,
                   path=str(self.xml), line=line)

    def note(self, what: str, reason: str, el: ET.Element, ref: str) -> None:
        """Count an oddity (a skipped element, ...); one warning per kind at the end."""
        entry = self.notes.setdefault(what, [0, reason, ref, self.line(el)])
        entry[0] += 1


def _parse_xml(path: Path) -> tuple[ET.Element, dict[int, int]]:
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    def refuse(*_: Any) -> None:
        raise ValidationError(f"{path} declares XML entities, which a CVAT file never does; "
                              "refused", path=str(path), line=parser.CurrentLineNumber)

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.buffer_text = True
    try:
        with path.open("rb") as fh:
            parser.ParseFile(fh)
    except expat.ExpatError as exc:
        raise ValidationError(f"{path} is not valid XML: {expat.ErrorString(exc.code)} at "
                              f"line {exc.lineno}, column {exc.offset + 1}", path=str(path),
                              line=exc.lineno, column=exc.offset + 1) from exc
    return builder.close(), lines


def _child(el: ET.Element, tag: str) -> str | None:
    child = el.find(tag)
    return None if child is None else child.text or ""


def _labels(root: ET.Element) -> list[dict[str, Any]]:
    """Label records from ``<meta>`` (task, project or job block), first one wins."""
    records: dict[str, dict[str, Any]] = {}
    meta = root.find("meta")
    for block in meta.iter("labels") if meta is not None else ():
        for lab in block.findall("label"):
            name = _child(lab, "name")
            if not name or name in records or _child(lab, "parent"):
                continue  # skeleton sub-labels: their skeletons are skipped anyway
            rec: dict[str, Any] = {"name": name}
            for key in ("color", "type"):
                if _child(lab, key):
                    rec[key] = _child(lab, key)
            rec["attributes"] = []
            for attr in lab.findall("attributes/attribute"):
                spec = {k: _child(attr, k) for k in _SPEC_FIELDS if _child(attr, k) is not None}
                spec["values"] = spec["values"].split("\n") if spec.get("values") else []
                rec["attributes"].append(spec)
            records[name] = rec
    return list(records.values())


def _number(raw: str, what: str, src: _Source, el: ET.Element, ref: str | None) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise src.error(GeometryError, el, ref, f"{what} must be a finite number, got {raw!r}")
    return value


def _integer(raw: str, what: str, src: _Source, el: ET.Element, ref: str | None) -> int:
    try:
        return int(raw)
    except ValueError:
        raise src.error(ValidationError, el, ref,
                        f"{what} must be an integer, got {raw!r}") from None


def _typed(raw: str, spec: dict[str, Any] | None, src: _Source, el: ET.Element, ref: str
           ) -> Any:
    """An attribute value as its declared input type asks (see the module docstring)."""
    kind = (spec or {}).get("input_type")
    if kind == "checkbox":
        if raw.strip().lower() not in ("true", "false"):
            raise src.error(ValidationError, el, ref, f"checkbox attribute {spec['name']!r} "
                            f"must be true or false, got {raw!r}")
        return raw.strip().lower() == "true"
    if kind == "number":
        try:
            return int(raw)
        except ValueError:
            return _number(raw, f"number attribute {spec['name']!r}", src, el, ref)
    return raw


def _flags(el: ET.Element, src: _Source, ref: str) -> dict[str, Any]:
    """The shape's XML attributes other than label and geometry, as metadata."""
    meta: dict[str, Any] = {}
    for key, raw in el.attrib.items():
        if key == "label" or key in _GEOMETRY[el.tag]:
            continue
        if key == "occluded":
            if raw.strip().lower() not in ("0", "1", "true", "false"):
                raise src.error(ValidationError, el, ref, f"occluded must be 0 or 1, got {raw!r}")
            meta["occluded"] = raw.strip().lower() in ("1", "true")
        elif key in ("z_order", "group_id"):
            value = _integer(raw, key, src, el, ref)
            if value or key == "z_order":
                meta[key] = value
        elif key == "rotation":
            angle = _number(raw, "rotation", src, el, ref)
            if angle:
                meta["rotation"] = angle
        elif key == "source":
            meta["source"] = raw
        else:
            src.note(f"{key!r} attribute of <{el.tag}>", "ignored, not part of CVAT for images 1.1",
                     el, ref)
    specs = src.specs.get(el.get("label", ""), {})
    attributes: dict[str, Any] = {}
    for attr in el.findall("attribute"):
        name = attr.get("name")
        if not name:
            raise src.error(ValidationError, attr, ref, "<attribute> without a name")
        if name in attributes:
            raise src.error(DuplicateIdError, attr, ref, f"attribute {name!r} given twice")
        if src.specs and name not in specs:
            src.note(f"attribute {name!r} of label {el.get('label')!r}",
                     "kept as text, not declared in <meta>", attr, ref)
        attributes[name] = _typed(attr.text or "", specs.get(name), src, attr, ref)
    if attributes:
        meta["attributes"] = attributes
    return meta


def _points(el: ET.Element, src: _Source, ref: str, least: int) -> list[tuple[float, float]]:
    raw = el.get("points")
    if raw is None:
        raise src.error(GeometryError, el, ref, f"<{el.tag}> has no points")
    out = []
    for pair in raw.split(";"):
        xy = pair.split(",")
        if len(xy) != 2:
            raise src.error(GeometryError, el, ref, f"malformed points {raw!r}: expected "
                            "'x1,y1;x2,y2;...'")
        out.append((_number(xy[0], "a point's x", src, el, ref),
                    _number(xy[1], "a point's y", src, el, ref)))
    if len(out) < least:
        raise src.error(GeometryError, el, ref, f"<{el.tag}> needs at least {least} point(s), "
                        f"got {len(out)}")
    return out


def _mask(el: ET.Element, item: DatasetItem, src: _Source) -> dict[str, Any]:
    """CVAT's mask (row-major runs over its box) as COCO RLE over the whole image."""
    ref = item.reference_id
    box = [_integer(el.get(k, ""), k, src, el, ref) for k in ("left", "top", "width", "height")]
    left, top, w, h = box
    try:
        counts = [int(c) for c in el.get("rle", "").split(",")]
    except ValueError:
        raise src.error(GeometryError, el, ref, "rle must be comma-separated integers, got "
                        f"{el.get('rle', '')[:40]!r}") from None
    W, H = item.width or 0, item.height or 0  # noqa: N806 - image size
    if min(counts) < 0 or w <= 0 or h <= 0 or left < 0 or top < 0 or left + w > W \
            or top + h > H:
        raise src.error(GeometryError, el, ref, f"mask box {box} (left, top, width, height) "
                        f"or its runs do not fit the {W}x{H} image")
    if sum(counts) != w * h:
        raise src.error(GeometryError, el, ref, f"mask runs sum to {sum(counts)}, expected "
                        f"width*height = {w * h}")
    full = np.zeros((H, W), dtype=bool)
    # The crop's row-major runs are the column-major runs of its transpose.
    full[top:top + h, left:left + w] = rle_decode({"size": [w, h], "counts": counts}).T
    return rle_encode(full)


def _convert(el: ET.Element, item: DatasetItem, src: _Source) -> Any | None:
    ref = item.reference_id or ""
    if el.tag in _SKIPPED:
        src.note(f"<{el.tag}>", "skipped, Ocula has no type that holds it", el, ref)
        return None
    if el.tag not in _GEOMETRY:
        if el.tag != "attribute":
            src.note(f"<{el.tag}>", "skipped, unknown element", el, ref)
        return None
    label = el.get("label")
    if not label:
        raise src.error(ValidationError, el, ref, f"<{el.tag}> has no label")
    if src.specs and label not in src.specs:
        raise src.error(ValidationError, el, ref, f"label {label!r} is not declared in <meta> "
                        "(CVAT refuses labels not registered for the task)")
    common = {"label": label, "reference_id": ref, "metadata": _flags(el, src, ref) or None}
    if el.tag == "box":
        xtl, ytl, xbr, ybr = (_number(el.get(c, ""), c, src, el, ref) for c in _GEOMETRY["box"])
        if xbr < xtl or ybr < ytl:
            raise src.error(GeometryError, el, ref, f"box has xbr < xtl or ybr < ytl: "
                            f"{[xtl, ytl, xbr, ybr]}")
        return BoxAnnotation(x=xtl, y=ytl, width=xbr - xtl, height=ybr - ytl, **common)
    if el.tag == "polygon":
        return PolygonAnnotation(vertices=[Point(x, y) for x, y in _points(el, src, ref, 3)],
                                 **common)
    if el.tag == "polyline":
        return LineAnnotation(vertices=[Point(x, y) for x, y in _points(el, src, ref, 2)],
                              **common)
    if el.tag == "points":
        return KeypointsAnnotation(
            keypoints=[Keypoint(x, y, True) for x, y in _points(el, src, ref, 1)], **common)
    if el.tag == "mask":
        return MaskAnnotation(mask=_mask(el, item, src), **common)
    return CategoryAnnotation(**common)


def _item(image: ET.Element, dirs: Sequence[Path], src: _Source) -> DatasetItem:
    name = image.get("name")
    if not name:
        raise src.error(ValidationError, image, None, "<image> has no name")
    candidates = [(d / name).absolute() for d in dirs]
    path = next((c for c in candidates if c.is_file()), candidates[0])
    raw_w, raw_h = image.get("width"), image.get("height")
    if raw_w is None or raw_h is None:
        width, height = image_size(path, name)
    else:
        width, height = (_integer(v, k, src, image, name)
                         for k, v in (("width", raw_w), ("height", raw_h)))
        if width <= 0 or height <= 0:
            raise src.error(ValidationError, image, name, f"width/height must be positive, "
                            f"got {width}x{height}")
    meta: dict[str, Any] = {}
    if image.get("id") is not None:
        meta["cvat_id"] = _integer(image.get("id", ""), "id", src, image, name)
    extra = {k: v for k, v in image.attrib.items() if k not in _IMAGE_FIELDS}
    if extra:
        meta["cvat_attributes"] = extra
    return DatasetItem(image_location=str(path), reference_id=name, metadata=meta,
                       width=width, height=height)


def import_cvat(path: Path | str, images_dir: Path | str | None = None) -> ImportedData:
    """Read a CVAT for images 1.1 XML file (or a folder holding ``annotations.xml``).

    Image ``name``s are resolved in ``images_dir``; by default in the XML's folder,
    then its ``images/`` subfolder. Image files are only opened when an ``<image>``
    lacks ``width``/``height``. See the module docstring for the mapping.
    """
    xml = Path(path)
    if xml.is_dir():
        xml = xml / "annotations.xml"
    xml = require_file(xml, "CVAT annotation file")
    root, lines = _parse_xml(xml)
    if root.tag != "annotations":
        raise ValidationError(f"{xml} is not a CVAT for images file (root <{root.tag}>, "
                              "expected <annotations>)", path=str(xml))
    labels = _labels(root)
    specs = {r["name"]: {a["name"]: a for a in r["attributes"] if a.get("name")} for r in labels}
    src = _Source(xml, lines, specs, [])
    version = _child(root, "version")
    if version is not None and version.strip() != "1.1":
        src.warnings.append(f"{xml.name}: version {version.strip()!r}, read as 1.1")
    track = root.find("track")
    if track is not None:
        raise src.error(ValidationError, track, None, "<track> elements belong to 'CVAT for "
                        "video'; export the task as 'CVAT for images 1.1'")
    if not labels:
        src.warnings.append(f"{xml.name}: no labels declared in <meta>; labels taken from "
                            "the shapes")
    dirs = [Path(images_dir)] if images_dir is not None else [xml.parent, xml.parent / "images"]
    data = ImportedData(info={"cvat": {"labels": labels, "version": "1.1"}})
    names: set[str | None] = set()
    ids: dict[int, str | None] = {}
    for image in root.findall("image"):
        item = _item(image, dirs, src)
        if item.reference_id in names:
            raise src.error(DuplicateIdError, image, item.reference_id, "image name appears "
                            "twice")
        cvat_id = (item.metadata or {}).get("cvat_id")
        if cvat_id in ids:
            raise src.error(DuplicateIdError, image, item.reference_id, f"image id {cvat_id} "
                            f"appears twice (also image {ids[cvat_id]!r})")
        names.add(item.reference_id)
        if cvat_id is not None:
            ids[cvat_id] = item.reference_id
        data.items.append(item)
        converted = (_convert(el, item, src) for el in image)
        for k, ann in enumerate(a for a in converted if a is not None):
            ann.annotation_id = f"{item.reference_id}/{k}"
            data.annotations.append(ann)
    for what, (count, reason, ref, line) in src.notes.items():
        src.warnings.append(f"{xml.name}: {count} x {what}: {reason} (first on image "
                            f"{ref!r}, line {line})")
    data.warnings = src.warnings
    data.categories = unique_labels([r["name"] for r in labels]
                                    + [a.label for a in data.annotations])
    return data


from .cvat_export import export_cvat  # noqa: E402  (the writer; re-exported here)
