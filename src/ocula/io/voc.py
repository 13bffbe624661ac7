"""Pascal VOC XML: ``Annotations/*.xml`` + ``JPEGImages/`` (or a folder of XML files).

Each ``<object>`` becomes a :class:`BoxAnnotation`. VOC boxes are 1-based inclusive
pixel indices, so ``x = xmin - 1``, ``width = xmax - xmin + 1`` (the convention of
Detectron2 and the VOC devkit); :func:`export_voc` applies the inverse. ``difficult``,
``truncated``, ``occluded`` (as booleans) and ``pose`` go to the annotation metadata;
``<part>`` elements (person layout) are ignored with a warning.

Security: the files are parsed with :mod:`xml.etree.ElementTree` because defusedxml is
not a dependency. Expat does not fetch external entities, and recent expat versions
limit entity expansion, but a hostile XML file could still be slow to parse; VOC
folders are local files chosen by the user, so this is acceptable here.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocula.core.types import BoxAnnotation, DatasetItem
from ocula.errors import DuplicateIdError, GeometryError, ValidationError

from ._common import (
    IMAGE_SUFFIXES,
    ImportedData,
    image_size,
    item_size,
    number,
    require_dir,
    require_file,
    require_known_items,
    unique_labels,
)

__all__ = ["export_voc", "import_voc"]

_FLAGS = ("difficult", "truncated", "occluded")


def _text(node: ET.Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _int(node: ET.Element | None, tag: str) -> int | None:
    value = _text(node, tag)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def _locate_image(name: str, dirs: Sequence[Path], path_hint: str | None
                  ) -> Path:
    candidates = [d / name for d in dirs]
    if path_hint:
        candidates.append(Path(path_hint))
    if not Path(name).suffix:  # filename without extension: try the usual ones
        candidates += [d / (name + s) for d in dirs for s in IMAGE_SUFFIXES]
    return next((c for c in candidates if c.is_file()), candidates[0]).absolute()


def _parse_object(obj: ET.Element, k: int, *, ref: str, stem: str, xml_file: Path
                  ) -> BoxAnnotation:
    label = _text(obj, "name")
    if not label:
        raise ValidationError(f"{xml_file.name}: object #{k} has no <name>", reference_id=ref)
    box = obj.find("bndbox")
    coords = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        value = _text(box, tag)
        try:
            coords.append(float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise GeometryError(f"{xml_file.name}: object #{k} ({label}) has a missing or "
                                f"non-numeric <bndbox>/<{tag}>: {value!r}",
                                reference_id=ref) from None
    xmin, ymin, xmax, ymax = coords
    if xmax < xmin or ymax < ymin:
        raise GeometryError(f"{xml_file.name}: object #{k} ({label}) has xmax < xmin or "
                            f"ymax < ymin: {coords}", reference_id=ref)
    meta: dict[str, Any] = {}
    pose = _text(obj, "pose")
    if pose:
        meta["pose"] = pose
    for flag in _FLAGS:
        value = _text(obj, flag)
        if value is not None:
            meta[flag] = value not in ("0", "", "false", "False")
    return BoxAnnotation(label=label, x=xmin - 1, y=ymin - 1, width=xmax - xmin + 1,
                         height=ymax - ymin + 1, reference_id=ref,
                         annotation_id=f"{stem}/{k}", metadata=meta or None)


def _parse_file(xml_file: Path, image_dirs: Sequence[Path], rel: Path, warnings: list[str]
                ) -> tuple[DatasetItem, list[BoxAnnotation]]:
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise ValidationError(f"{xml_file} is not valid XML: {exc}", path=str(xml_file),
                              line=line, column=col) from exc
    if root.tag != "annotation":
        raise ValidationError(f"{xml_file} is not a VOC annotation (root <{root.tag}>)",
                              path=str(xml_file))
    stem = rel.with_suffix("").as_posix()
    name = _text(root, "filename") or stem
    if rel.parent != Path(".") and "/" not in name:
        name = (rel.parent / name).as_posix()  # keep sub-folders in the reference id
    image = _locate_image(name, image_dirs, _text(root, "path"))
    ref = name if Path(name).suffix else name + image.suffix
    size = root.find("size")
    width, height = _int(size, "width"), _int(size, "height")
    if not width or not height:
        width, height = image_size(image, ref)
    meta: dict[str, Any] = {}
    if _text(root, "folder"):
        meta["folder"] = _text(root, "folder")
    if _text(root, "segmented") is not None:
        meta["segmented"] = _text(root, "segmented") not in ("0", "")
    item = DatasetItem(image_location=str(image), reference_id=ref, metadata=meta,
                       width=width, height=height)
    boxes = []
    for k, obj in enumerate(root.findall("object")):
        boxes.append(_parse_object(obj, k, ref=ref, stem=stem, xml_file=xml_file))
        if obj.find("part") is not None:
            warnings.append(f"{xml_file.name}: <part> elements of object #{k} ignored")
    return item, boxes


def import_voc(path: Path | str, *, image_set: str | None = None) -> ImportedData:
    """Read a VOC folder (``Annotations/`` + ``JPEGImages/``) or a folder of XML files.

    ``image_set`` (e.g. ``"train"``) restricts the import to the ids listed in
    ``ImageSets/Main/<image_set>.txt``. Image files are looked up in ``JPEGImages/``,
    next to the XML files, then at the XML's ``<path>``; they are opened only when the
    XML has no ``<size>``.
    """
    root = require_dir(Path(path), "VOC folder")
    if (root / "Annotations").is_dir():
        xml_dir, image_dirs = root / "Annotations", [root / "JPEGImages", root]
    else:
        xml_dir, image_dirs = root, [root, root / "JPEGImages"]
    files = sorted(xml_dir.rglob("*.xml"))
    if image_set is not None:
        listing = require_file(root / "ImageSets" / "Main" / f"{image_set}.txt", "VOC image set")
        wanted = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        by_stem = {f.relative_to(xml_dir).with_suffix("").as_posix(): f for f in files}
        missing = [s for s in wanted if s not in by_stem]
        if missing:
            raise ValidationError(f"image set {image_set!r} lists {len(missing)} id(s) without "
                                  f"an XML file, e.g. {missing[0]!r}", reference_id=missing[0])
        files = [by_stem[s] for s in wanted]
    if not files:
        raise ValidationError(f"no VOC XML files in {xml_dir}", path=str(xml_dir))
    data = ImportedData(info={"voc": {"root": str(root.absolute())}})
    seen: set[str] = set()
    for xml_file in files:
        item, boxes = _parse_file(xml_file, image_dirs, xml_file.relative_to(xml_dir),
                                  data.warnings)
        if item.reference_id in seen:
            raise DuplicateIdError(f"image {item.reference_id!r} is annotated by two XML "
                                   "files", reference_id=item.reference_id)
        seen.add(item.reference_id)  # type: ignore[arg-type]
        data.items.append(item)
        data.annotations.extend(boxes)
    data.categories = unique_labels(a.label for a in data.annotations)
    return data


def _fmt(value: float) -> str:
    return str(number(round(value, 6)))


def export_voc(items: Sequence[DatasetItem], annotations: Sequence[Any], out_dir: Path | str,
               *, copy_images: bool = True) -> Path:
    """Write ``Annotations/<reference_id>.xml`` (and copy images to ``JPEGImages/``).

    Only ground-truth boxes are written (VOC has no other geometry); predictions and
    other annotation types are ignored. ``out_dir`` is created; returns it.
    """
    out = Path(out_dir)
    boxes: dict[str | None, list[BoxAnnotation]] = {}
    for ann in annotations:
        if ann.type == "box" and not ann.is_prediction:
            boxes.setdefault(ann.reference_id, []).append(ann)
    require_known_items((i.reference_id for i in items), boxes)
    for item in items:
        ref = item.reference_id
        if not ref:
            raise ValidationError(f"item {item.image_location!r} has no reference_id")
        source = Path(item.image_location) if item.image_location else None
        width, height = item_size(item)
        root = ET.Element("annotation")
        meta = item.metadata or {}
        ET.SubElement(root, "folder").text = str(meta.get("folder", "JPEGImages"))
        ET.SubElement(root, "filename").text = ref
        size = ET.SubElement(root, "size")
        for tag, value in (("width", width), ("height", height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        ET.SubElement(root, "segmented").text = "1" if meta.get("segmented") else "0"
        for box in boxes.get(ref, []):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = box.label
            bmeta = box.metadata or {}
            if "pose" in bmeta:
                ET.SubElement(obj, "pose").text = str(bmeta["pose"])
            for flag in _FLAGS:
                if flag in bmeta:
                    ET.SubElement(obj, flag).text = "1" if bmeta[flag] else "0"
            bnd = ET.SubElement(obj, "bndbox")
            corners = (box.x + 1, box.y + 1, box.x + box.width, box.y + box.height)
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
                ET.SubElement(bnd, tag).text = _fmt(value)
        ET.indent(root)
        target = out / "Annotations" / Path(ref).with_suffix(".xml")
        target.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=False)
        if copy_images and source is not None and source.is_file():
            dest = out / "JPEGImages" / ref
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.absolute() != dest.absolute():
                shutil.copy2(source, dest)
    return out
