"""Pascal VOC XML: ``Annotations/*.xml`` + ``JPEGImages/`` (or a folder of XML files).

Each ``<object>`` becomes a :class:`BoxAnnotation`. VOC boxes are 1-based inclusive
pixel indices, so ``x = xmin - 1``, ``width = xmax - xmin + 1`` (the convention of
Detectron2 and the VOC devkit); :func:`export_voc` applies the inverse. A box reaching
outside the image (``xmin = 0`` or ``ymin = 0`` from tools that write 0-based corners,
``xmax`` past the width) is clamped to the image with a warning; one wholly outside is a
:class:`GeometryError`. ``difficult``,
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
from pathlib import Path, PureWindowsPath
from typing import Any

from ocula.core.types import BoxAnnotation, DatasetItem
from ocula.errors import DuplicateIdError, GeometryError, ImageError, ValidationError

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
_CORNERS = ("xmin", "ymin", "xmax", "ymax")
# Lower and upper case, since a case-sensitive file system finds only the one written.
_SUFFIXES = tuple(dict.fromkeys(s for suffix in IMAGE_SUFFIXES
                                for s in (suffix, suffix.upper())))
# Where VOC-like exports keep their images, relative to the dataset root.
_IMAGE_FOLDERS = ("JPEGImages", "images", "Images", "PNGImages")


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


def _candidates(root: Path, image_dirs: Sequence[Path], sub: Path, *, filename: str | None,
                folder: str | None, path_hint: str | None, stem: str) -> list[tuple[Path, str]]:
    """Every place the image of one XML file may be, most telling first, each with the
    reference id the item gets when the image is found there.

    ``sub`` is the XML's sub-folder below the annotation folder and ``stem`` its path
    without suffix. Tools disagree on ``<filename>`` (the name at labelling time, maybe
    without suffix or as a full Windows path) and on ``<folder>`` (VOC writes the dataset
    name, labelImg the image folder), so each reading is tried in turn; the XML's own
    name comes last since renamed XML files keep their old ``<filename>``.
    """
    plain = PureWindowsPath(filename).name if filename else None  # "C:\\a\\b.jpg" -> b.jpg
    names = [n for n in dict.fromkeys((filename, plain)) if n]
    refs = [n if "/" in n else (sub / n).as_posix() for n in names]
    found = [(d / r, r) for r in refs for d in image_dirs]
    if plain and folder:
        ref = (sub / plain).as_posix()
        found += [(root / folder / plain, ref), (root.parent / folder / plain, ref)]
    if path_hint:
        found.append((Path(path_hint), (sub / PureWindowsPath(path_hint).name).as_posix()))
    bare = [r for r in refs if not Path(r).suffix] + [stem]
    found += [(d / (r + s), r + s) for r in bare for d in image_dirs for s in _SUFFIXES]
    unique: dict[Path, str] = {}
    for path, ref in found:
        unique.setdefault(path.absolute(), ref)
    return list(unique.items())


def _parse_object(obj: ET.Element, k: int, *, ref: str, stem: str, xml_file: Path,
                  size: tuple[int, int], warnings: list[str]) -> BoxAnnotation:
    label = _text(obj, "name")
    what = f"{xml_file.name}: object #{k}"
    if not label:
        raise ValidationError(f"{what} has no <name>", reference_id=ref)
    what += f" ({label})"
    box = obj.find("bndbox")
    coords = []
    for tag in _CORNERS:
        value = _text(box, tag)
        try:
            coords.append(float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise GeometryError(f"{what} has a missing or non-numeric <bndbox>/<{tag}>: "
                                f"{value!r}", reference_id=ref) from None
    xmin, ymin, xmax, ymax = coords
    if xmax < xmin or ymax < ymin:
        raise GeometryError(f"{what} has xmax < xmin or ymax < ymin: {coords}",
                            reference_id=ref)
    # 1-based inclusive corners -> pixel edges; a 0 written by 0-based tools (or a corner
    # past the image) would put the box outside the image, which the store refuses.
    width, height = size
    x0, y0, x1, y1 = max(xmin - 1, 0), max(ymin - 1, 0), min(xmax, width), min(ymax, height)
    if x1 <= x0 or y1 <= y0:
        raise GeometryError(f"{what}: box {_corners(coords)} lies outside the "
                            f"{width}x{height} image", reference_id=ref)
    if (x0, y0, x1, y1) != (xmin - 1, ymin - 1, xmax, ymax):
        warnings.append(f"{what}: box {_corners(coords)} reaches outside the "
                        f"{width}x{height} image; clamped to it")
    meta: dict[str, Any] = {}
    pose = _text(obj, "pose")
    if pose:
        meta["pose"] = pose
    for flag in _FLAGS:
        value = _text(obj, flag)
        if value is not None:
            meta[flag] = value not in ("0", "", "false", "False")
    return BoxAnnotation(label=label, x=x0, y=y0, width=x1 - x0, height=y1 - y0,
                         reference_id=ref, annotation_id=f"{stem}/{k}", metadata=meta or None)


def _corners(coords: Sequence[float]) -> str:
    return " ".join(f"{tag}={_fmt(v)}" for tag, v in zip(_CORNERS, coords, strict=True))


def _find_image(xml_file: Path, candidates: Sequence[tuple[Path, str]]) -> tuple[Path, str]:
    found = next(((p, r) for p, r in candidates if p.is_file()), None)
    if found is None:
        tried = "".join(f"\n  {p}" for p, _ in candidates)
        raise ImageError(f"{xml_file.name}: image not found; tried{tried}",
                         reference_id=candidates[0][1], path=str(xml_file),
                         tried=[str(p) for p, _ in candidates])
    return found


def _parse_file(xml_file: Path, root: Path, image_dirs: Sequence[Path], rel: Path,
                warnings: list[str]) -> tuple[DatasetItem, list[BoxAnnotation]]:
    try:
        tree = ET.parse(xml_file).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise ValidationError(f"{xml_file} is not valid XML: {exc}", path=str(xml_file),
                              line=line, column=col) from exc
    if tree.tag != "annotation":
        raise ValidationError(f"{xml_file} is not a VOC annotation (root <{tree.tag}>)",
                              path=str(xml_file))
    stem = rel.with_suffix("").as_posix()
    folder = _text(tree, "folder")
    image, ref = _find_image(xml_file, _candidates(
        root, image_dirs, rel.parent, filename=_text(tree, "filename"), folder=folder,
        path_hint=_text(tree, "path"), stem=stem))
    size = tree.find("size")
    width, height = _int(size, "width"), _int(size, "height")
    if not width or not height:
        width, height = image_size(image, ref)
    meta: dict[str, Any] = {}
    if folder:
        meta["folder"] = folder
    if _text(tree, "segmented") is not None:
        meta["segmented"] = _text(tree, "segmented") not in ("0", "")
    item = DatasetItem(image_location=str(image), reference_id=ref, metadata=meta,
                       width=width, height=height)
    boxes = []
    for k, obj in enumerate(tree.findall("object")):
        boxes.append(_parse_object(obj, k, ref=ref, stem=stem, xml_file=xml_file,
                                   size=(width, height), warnings=warnings))
        if obj.find("part") is not None:
            warnings.append(f"{xml_file.name}: <part> elements of object #{k} ignored")
    return item, boxes


def import_voc(path: Path | str, *, image_set: str | None = None) -> ImportedData:
    """Read a VOC folder (``Annotations/`` + ``JPEGImages/``) or a folder of XML files.

    ``image_set`` (e.g. ``"train"``) restricts the import to the ids listed in
    ``ImageSets/Main/<image_set>.txt``. Each XML's image is looked up, in this order:
    its ``<filename>`` (also as a bare name when it holds a path) in ``JPEGImages/``,
    ``images/``, ``Images/``, ``PNGImages/`` and the root (the root first for a folder
    of XML files); ``<folder>/<filename>`` below the root and below its parent (labelImg
    keeps XML and images in sibling folders); the XML's ``<path>``; then the XML's own
    name with each image suffix in the same folders. The item's ``reference_id`` is the
    name the image was found under. No image at all is an :class:`ImageError` listing
    every path tried. Images are opened only when the XML has no ``<size>``.
    """
    root = require_dir(Path(path), "VOC folder")
    folders = [root / name for name in _IMAGE_FOLDERS]
    if (root / "Annotations").is_dir():
        xml_dir, image_dirs = root / "Annotations", [*folders, root]
    else:
        xml_dir, image_dirs = root, [root, *folders]
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
        item, boxes = _parse_file(xml_file, root, image_dirs, xml_file.relative_to(xml_dir),
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
