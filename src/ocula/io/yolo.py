"""YOLO (Darknet / Ultralytics) text labels, and DOTA's oriented boxes.

Layouts (Ultralytics' rule: the last ``images`` folder of an image path, in any case,
is swapped for ``labels``): ``images/train/a.jpg`` <-> ``labels/train/a.txt``,
``train/images/a.jpg`` <-> ``train/labels/a.txt`` (Roboflow), ``Images/a.jpg`` <->
``Annotations/a.txt``, or images and ``.txt`` files side by side. One line per object,
coordinates normalised to ``[0, 1]``:

* ``class cx cy w h``                 -> :class:`BoxAnnotation`
* ``class cx cy w h conf``            -> :class:`BoxPrediction` (``save_conf`` output)
* ``class x1 y1 x2 y2 x3 y3 ...``     -> :class:`PolygonAnnotation` (YOLO segmentation,
  and Ultralytics' oriented boxes as 4-vertex polygons)
* the same with an odd trailing value -> :class:`PolygonPrediction`
* with ``kpt_shape: [K, 3]`` (or ``[K, 2]``) in ``data.yaml``, every line is a pose
  line ``class cx cy w h x1 y1 v1 ... xK yK vK`` -> :class:`BoxAnnotation` plus a
  :class:`KeypointsAnnotation` with id ``"<id>/keypoints"``. Visibility 0 is a point not
  labelled (``Keypoint(None, None, False)``), 1 labelled but occluded, 2 visible;
  without a visibility column every point is visible. Point names come from
  ``kpt_names`` (per class, or one list for all); ``flip_idx`` is ignored. A trailing
  confidence makes a :class:`BoxPrediction` + :class:`KeypointsPrediction` (a point
  is visible when its score is at least 0.5). A line of another length is a
  :class:`GeometryError` naming the file and line.

DOTA: ``images/P0001.png`` <-> ``labelTxt/P0001.txt`` holds ``x1 y1 ... x4 y4 class
difficult`` in pixels (:mod:`ocula.io.dota`): a 4-vertex :class:`PolygonAnnotation`
per line, its class name as label. A folder whose label-like files belong to no image
is refused rather than imported without labels.

Class names come from ``class_names``, else ``data.yaml``/``dataset.yaml`` (its
``names:`` key, read by a tiny parser so PyYAML is not needed:
:mod:`ocula.io.yolo_yaml`), else ``classes.txt`` / ``obj.names``, else the class
indices themselves. Item ``reference_id`` is the image path without its ``images``
folder (``train/a.jpg``); when it starts with ``train``/``val``/``test``/... the item
metadata gets ``split``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    KeypointsPrediction,
    PolygonAnnotation,
    PolygonPrediction,
)
from ocula.errors import GeometryError, ValidationError

from ._common import (
    ImportedData,
    find_images,
    group_parts,
    image_size,
    item_size,
    part_id,
    require_dir,
    require_known_items,
    unique_labels,
)
from .dota import read_dota
from .yolo_yaml import PoseSpec, parse_names_yaml, parse_pose_yaml

__all__ = ["export_yolo", "import_yolo", "parse_names_yaml"]

_SPLITS = {"train", "val", "valid", "validation", "test"}
_NAME_FILES = ("classes.txt", "obj.names")
# Folders that may sit beside an ``images`` folder with one YOLO .txt per image.
_LABEL_DIRS = ("labels", "Labels", "Annotations", "annotations")
_DOTA_DIR = "labelTxt"
_TOLERANCE = 0.01  # normalised coordinates may overshoot [0, 1] by this much


def _yaml_text(root: Path) -> str | None:
    for name in ("data.yaml", "dataset.yaml"):
        if (root / name).is_file():
            return (root / name).read_text(encoding="utf-8")
    return None


def _class_names(root: Path, given: Sequence[str] | Mapping[int, str] | None,
                 yaml_text: str | None) -> list[str] | None:
    if isinstance(given, Mapping):
        if sorted(given) != list(range(len(given))):
            raise ValidationError("class_names mapping keys must be 0..N-1")
        return [given[k] for k in range(len(given))]
    if given is not None:
        return list(given)
    if yaml_text is not None:
        names = parse_names_yaml(yaml_text)
        if names is not None:
            return names
    for name in _NAME_FILES:
        if (root / name).is_file():
            text = (root / name).read_text(encoding="utf-8")
            return [line.strip() for line in text.splitlines() if line.strip()]
    return None


def _check_normalised(values: Sequence[float], where: str, ref: str, line: str) -> None:
    if any(v < -_TOLERANCE or v > 1 + _TOLERANCE for v in values):
        raise GeometryError(f"{where}: coordinates must be normalised to [0, 1]: "
                            f"{line.strip()!r}", reference_id=ref)


def _box(values: Sequence[float], where: str, common: dict[str, Any], size: tuple[int, int],
         confidence: float | None) -> BoxAnnotation:
    cx, cy, w, h = values
    if w < 0 or h < 0:
        raise GeometryError(f"{where}: negative box size", reference_id=common["reference_id"])
    width, height = size
    geom = {"x": (cx - w / 2) * width, "y": (cy - h / 2) * height,
            "width": w * width, "height": h * height}
    if confidence is None:
        return BoxAnnotation(**common, **geom)
    return BoxPrediction(**common, **geom, confidence=confidence)


def _pose(values: list[float], line: str, where: str, common: dict[str, Any],
          size: tuple[int, int], pose: PoseSpec, cls: int) -> list[Any]:
    """A pose line: its box and its keypoints, the keypoints under the ``/keypoints`` id."""
    ref, count, dims = common["reference_id"], pose.count, pose.dims
    n = 4 + count * dims
    if len(values) not in (n, n + 1):
        raise GeometryError(
            f"{where}: kpt_shape [{count}, {dims}] needs 'class cx cy w h' and "
            f"{count * dims} keypoint values ({n + 1} in all, {n + 2} with a confidence), "
            f"got {len(values) + 1}", reference_id=ref)
    confidence = values[n] if len(values) > n else None
    points = values[4:n]
    _check_normalised([*values[:4], *(v for j, v in enumerate(points) if j % dims < 2)],
                      where, ref, line)
    width, height = size
    keypoints = []
    for j in range(0, len(points), dims):
        x, y = points[j] * width, points[j + 1] * height
        v = points[j + 2] if dims == 3 else 2.0
        if confidence is not None:  # a predicted point's third value is its score
            keypoints.append(Keypoint(x, y, v >= 0.5))
        elif v not in (0, 1, 2):
            raise GeometryError(f"{where}: keypoint #{j // dims} has visibility {v:g}; YOLO "
                                "pose labels use 0 (not labelled), 1 (occluded) or 2 (visible)",
                                reference_id=ref)
        else:
            keypoints.append(Keypoint(x, y, v == 2) if v else Keypoint(None, None, False))
    parts = {**common, "annotation_id": part_id(common["annotation_id"], "keypoints"),
             "keypoints": keypoints, "names": list(pose.names_of(cls))}
    kps = (KeypointsAnnotation(**parts) if confidence is None
           else KeypointsPrediction(**parts, confidence=confidence))
    return [_box(values[:4], where, common, size, confidence), kps]


def _parse_line(line: str, where: str, *, ref: str, size: tuple[int, int],
                names: list[str] | None, ann_id: str, pose: PoseSpec | None) -> list[Any]:
    tokens = line.split()
    try:
        cls_f = float(tokens[0])
        values = [float(t) for t in tokens[1:]]
    except ValueError:
        raise ValidationError(f"{where}: non-numeric value in {line.strip()!r}",
                              reference_id=ref) from None
    if not cls_f.is_integer() or cls_f < 0:
        raise ValidationError(f"{where}: class {tokens[0]!r} is not a class index",
                              reference_id=ref)
    cls = int(cls_f)
    if names is not None and cls >= len(names):
        raise ValidationError(f"{where}: class {cls} but only {len(names)} class names",
                              reference_id=ref)
    label = names[cls] if names is not None else str(cls)
    common: dict[str, Any] = {"label": label, "reference_id": ref, "annotation_id": ann_id}
    if pose is not None:
        return _pose(values, line, where, common, size, pose, cls)
    n = len(values)
    confidence = None
    if n == 5 or (n >= 7 and n % 2):
        confidence, values = values[-1], values[:-1]
    if len(values) < 4 or (len(values) > 4 and len(values) < 6):
        raise ValidationError(f"{where}: expected 'class cx cy w h' or a polygon, got "
                              f"{len(tokens)} values", reference_id=ref)
    _check_normalised(values, where, ref, line)
    if len(values) == 4:
        return [_box(values, where, common, size, confidence)]
    width, height = size
    vertices = [(values[j] * width, values[j + 1] * height) for j in range(0, len(values), 2)]
    if confidence is None:
        return [PolygonAnnotation(**common, vertices=vertices)]
    return [PolygonPrediction(**common, vertices=vertices, confidence=confidence)]


def _layout(image: Path, root: Path) -> tuple[str, list[tuple[Path, bool]]]:
    """Reference id of an image and the label files it may have, each with whether it
    is a DOTA file, most likely first.

    Following Ultralytics, the last ``images`` folder (any case) in the path is swapped
    for ``labels`` (``images/train/a.jpg`` and ``train/images/a.jpg`` both give
    ``train/a.jpg``), or for ``Annotations`` or DOTA's ``labelTxt``; a ``.txt`` beside
    the image comes last.
    """
    parts = image.relative_to(root).parts
    folders = [i for i, part in enumerate(parts[:-1]) if part.lower() == "images"]
    beside = (image.with_suffix(".txt"), False)
    if not folders:
        return Path(*parts).as_posix(), [beside]
    i = folders[-1]
    twins = [(root.joinpath(*parts[:i], name, *parts[i + 1:]).with_suffix(".txt"),
              name == _DOTA_DIR) for name in (*_LABEL_DIRS, _DOTA_DIR)]
    return Path(*parts[:i], *parts[i + 1:]).as_posix(), [*twins, beside]


def _refuse_unread(root: Path) -> None:
    """Raise when a folder holds label-like files but none belongs to an image, so an
    unknown layout fails instead of importing images without their labels."""
    strays = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".txt", ".xml", ".json")
                    and p.is_file() and p.name not in _NAME_FILES
                    and not p.name.lower().startswith(("readme", "license")))
    if not strays:
        return
    suffixes = {p.suffix.lower() for p in strays}
    hint = (" (XML files: Pascal VOC? import them as voc)" if ".xml" in suffixes
            else " (JSON files: COCO? import them as coco)" if ".txt" not in suffixes else "")
    raise ValidationError(
        f"no label file in {root} belongs to an image, yet it holds {len(strays)} "
        f"label-like file(s), e.g. {strays[0].relative_to(root).as_posix()}{hint}. YOLO "
        "labels are read from a .txt named like the image in a labels/, Annotations/ or "
        "labelTxt/ (DOTA) folder beside its images/ folder, or next to the image",
        path=str(root))


def import_yolo(path: Path | str, class_names: Sequence[str] | Mapping[int, str] | None = None
                ) -> ImportedData:
    """Read a YOLO dataset folder (see the module docstring for layouts and lines).

    Every image is opened (header only) because YOLO coordinates are relative to the
    image size. Images without a label file are kept as unlabelled items; label files
    without an image are reported in ``warnings``. A folder whose label-like files
    (``.txt``, ``.xml``, ``.json``) match no image at all is refused with a
    :class:`ValidationError`.
    """
    root = require_dir(Path(path), "YOLO folder")
    yaml_text = _yaml_text(root)
    names = _class_names(root, class_names, yaml_text)
    pose = parse_pose_yaml(yaml_text) if yaml_text is not None else None
    data = ImportedData()
    used: set[Path] = set()
    image_dirs: set[Path] = set()
    dota_labels: list[str] = []
    for image in find_images(root):
        if {"labels", _DOTA_DIR} & set(image.relative_to(root).parts[:-1]):
            continue
        ref, candidates = _layout(image, root)
        width, height = image_size(image, ref)
        first = Path(ref).parts[0]
        meta: dict[str, Any] = {"split": first} if first.lower() in _SPLITS and "/" in ref else {}
        data.items.append(DatasetItem(image_location=str(image.absolute()), reference_id=ref,
                                      metadata=meta, width=width, height=height))
        image_dirs.add(image.parent)
        label_file, is_dota = next(((p, d) for p, d in candidates if p.is_file()), (None, False))
        if label_file is None:
            continue
        used.add(label_file)
        stem = Path(ref).with_suffix("").as_posix()
        if is_dota:
            polygons, header = read_dota(label_file, ref=ref, stem=stem)
            meta.update(header)
            data.annotations.extend(polygons)
            dota_labels.extend(p.label for p in polygons)
            continue
        k = 0
        for lineno, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            for obj in _parse_line(line, f"{label_file.name}:{lineno}", ref=ref,
                                   size=(width, height), names=names, ann_id=f"{stem}/{k}",
                                   pose=pose):
                (data.predictions if obj.is_prediction else data.annotations).append(obj)
            k += 1
    if not data.items:
        raise ValidationError(f"no images found in {root}", path=str(root))
    if not used:
        _refuse_unread(root)
        data.warnings.append(f"no label files found for the images in {root}")
    label_dirs = {*_LABEL_DIRS, _DOTA_DIR}
    orphans = [p for p in root.rglob("*.txt") if p not in used and p.name not in _NAME_FILES
               and (label_dirs & set(p.relative_to(root).parts) or p.parent in image_dirs)]
    if orphans:
        data.warnings.append(f"{len(orphans)} label file(s) without an image, e.g. "
                             f"{orphans[0].relative_to(root).as_posix()}")
    data.categories = list(names or [])
    if names is None:
        dota = set(dota_labels)
        indices = {o.label for o in [*data.annotations, *data.predictions]} - dota
        data.categories = sorted(indices, key=int)
        if indices or not dota_labels:
            data.warnings.insert(0, "no class names (data.yaml, classes.txt); labels are "
                                 "indices")
    data.categories += [n for n in unique_labels(dota_labels) if n not in data.categories]
    return data


def _fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"


def export_yolo(items: Sequence[DatasetItem], annotations: Sequence[Any], out_dir: Path | str,
                *, class_names: Sequence[str] | None = None,
                geometry: Literal["auto", "box", "polygon"] = "auto",
                copy_images: bool = True) -> Path:
    """Write ``images/``, ``labels/``, ``classes.txt`` and ``data.yaml`` under ``out_dir``.

    Class indices follow ``class_names`` (labels not listed are appended in sorted
    order; by default all labels sorted). ``geometry`` picks what one object becomes:
    ``"box"`` its box (or the box around its polygon/mask); ``"polygon"`` its polygon
    (boxes and masks become their 4-corner box); ``"auto"`` its box when it has one,
    else its polygon, else the box around its mask. Predictions get their confidence
    as a last value. Category annotations are not written.

    When any object has keypoints, every line is a pose line (``geometry`` "box" or
    "auto"): the object's box (else the box around its polygon, mask or labelled
    points), then ``x y v`` per point with YOLO's visibility (0 not labelled, 1
    occluded, 2 visible; for predictions 1 or 0), all objects with the same number of
    points; objects without keypoints get zeros. ``data.yaml`` then has ``kpt_shape``
    and each class's ``kpt_names`` (no ``flip_idx``: which points mirror each other is
    not known). Returns ``out_dir``.
    """
    out = Path(out_dir)
    groups = group_parts(annotations, fmt="YOLO")
    pose = _pose_count(groups, geometry)
    labels = sorted({obj.label for g in groups for k, obj in g.items() if k != "base"})
    names = list(class_names or [])
    names += [n for n in labels if n not in names]
    index = {n: i for i, n in enumerate(names)}
    by_item: dict[str | None, list[str]] = {}
    sizes = {}
    for item in items:
        if not item.reference_id:
            raise ValidationError(f"item {item.image_location!r} has no reference_id")
        sizes[item.reference_id] = item_size(item, annotations)
    for group in groups:
        line = _line(group, geometry, index, sizes, pose)
        if line is not None:
            by_item.setdefault(line[0], []).append(line[1])
    require_known_items(sizes, by_item)
    for item in items:
        ref = item.reference_id or ""
        target = out / "labels" / Path(ref).with_suffix(".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = by_item.get(ref, [])
        target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        source = Path(item.image_location) if item.image_location else None
        if copy_images and source is not None and source.is_file():
            dest = out / "images" / ref
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.absolute() != dest.absolute():
                shutil.copy2(source, dest)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("".join(n + "\n" for n in names), encoding="utf-8")
    yaml_names = "".join(f"  {i}: {_yaml_quote(n)}\n" for i, n in enumerate(names))
    yaml = f"path: .\ntrain: images\nval: images\nnames:\n{yaml_names}"
    if pose is not None:
        yaml += f"kpt_shape: [{pose}, 3]\n" + _yaml_kpt_names(groups, index)
    (out / "data.yaml").write_text(yaml, encoding="utf-8")
    return out


def _yaml_quote(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _pose_count(groups: Sequence[dict[str, Any]], geometry: str) -> int | None:
    """The number of keypoints every pose line holds; None when no object has any."""
    counts = {len(g["keypoints"].keypoints) for g in groups if "keypoints" in g}
    if not counts:
        return None
    if len(counts) > 1:
        raise ValidationError(f"cannot write YOLO pose labels: objects have "
                              f"{sorted(counts)} keypoints, and kpt_shape allows one count")
    if geometry == "polygon":
        raise ValidationError("YOLO pose lines hold a box and keypoints, not a polygon: "
                              "export keypoints with geometry='box' or 'auto'")
    return counts.pop()


def _yaml_kpt_names(groups: Sequence[dict[str, Any]], index: Mapping[str, int]) -> str:
    by_class: dict[int, list[str]] = {}
    for group in groups:
        kps = group.get("keypoints")
        if kps is not None and kps.names:
            by_class.setdefault(index[kps.label], list(kps.names))
    if not by_class:
        return ""
    rows = "".join(f"  {cls}: [{', '.join(_yaml_quote(n) for n in by_class[cls])}]\n"
                   for cls in sorted(by_class))
    return "kpt_names:\n" + rows


def _keypoint_values(kps: Any, count: int, size: tuple[int, int]) -> list[float]:
    """``x y v`` triplets of one object, normalised; zeros for an object without points."""
    if kps is None:
        return [0.0] * (3 * count)
    width, height = size
    values: list[float] = []
    for k in kps.keypoints:
        if k.x is None or k.y is None:
            values += [0.0, 0.0, 0.0]
        else:
            seen = (1 if k.visible else 0) if kps.is_prediction else (2 if k.visible else 1)
            values += [k.x / width, k.y / height, seen]
    return values


def _labelled_box(kps: Any) -> tuple[float, float, float, float] | None:
    """Box around every labelled point, occluded ones too (``bbox()`` counts only the
    visible ones)."""
    pts = [(k.x, k.y) for k in kps.keypoints if k.x is not None and k.y is not None]
    if not pts:
        return None
    xs, ys = zip(*pts, strict=True)
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def _line(group: dict[str, Any], geometry: str, index: Mapping[str, int],
          sizes: Mapping[str | None, tuple[int, int]], pose: int | None
          ) -> tuple[str | None, str] | None:
    box, segm, kps = group.get("box"), group.get("segm"), group.get("keypoints")
    obj = next(o for o in (box, segm, kps) if o is not None)
    ref = obj.reference_id
    if ref not in sizes:
        return ref, ""
    width, height = sizes[ref]
    use_polygon = pose is None and (geometry == "polygon" or (
        geometry == "auto" and box is None and segm is not None and segm.type == "polygon"))
    if use_polygon and segm is not None and segm.type == "polygon":
        coords = [c for v in segm.vertices for c in (v.x / width, v.y / height)]
    else:
        if pose is None and obj is kps:
            return None  # keypoints only, and no pose lines to hold them
        bbox = obj.bbox() if obj is not kps else _labelled_box(kps)
        if bbox is None:
            return None  # empty mask, or no labelled point
        x, y, w, h = bbox
        if use_polygon:
            coords = [x / width, y / height, (x + w) / width, y / height,
                      (x + w) / width, (y + h) / height, x / width, (y + h) / height]
        else:
            coords = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
    if pose is not None:
        coords += _keypoint_values(kps, pose, (width, height))
    values = [str(index[obj.label]), *(_fmt(c) for c in coords)]
    confidence = getattr(obj, "confidence", None)
    if obj.is_prediction and confidence is not None:
        values.append(_fmt(confidence))
    return ref, " ".join(values)
