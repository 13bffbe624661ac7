"""YOLO (Darknet / Ultralytics) text labels.

Layouts (Ultralytics' rule: the last ``images`` folder of an image path is swapped for
``labels``): ``images/train/a.jpg`` <-> ``labels/train/a.txt``, ``train/images/a.jpg``
<-> ``train/labels/a.txt`` (Roboflow), or images and ``.txt`` files side by side. One line per
object, coordinates normalised to ``[0, 1]``:

* ``class cx cy w h``                 -> :class:`BoxAnnotation`
* ``class cx cy w h conf``            -> :class:`BoxPrediction` (``save_conf`` output)
* ``class x1 y1 x2 y2 x3 y3 ...``     -> :class:`PolygonAnnotation` (YOLO segmentation)
* the same with an odd trailing value -> :class:`PolygonPrediction`

Class names come from ``class_names``, else ``data.yaml``/``dataset.yaml`` (its
``names:`` key, read by a tiny parser so PyYAML is not needed), else ``classes.txt`` /
``obj.names``, else the class indices themselves. Pose labels (keypoints) are not read.
Item ``reference_id`` is the image path without its ``images`` folder (``train/a.jpg``);
when it starts with ``train``/``val``/``test``/... the item metadata gets ``split``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
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
    require_dir,
    require_known_items,
)

__all__ = ["export_yolo", "import_yolo", "parse_names_yaml"]

_SPLITS = {"train", "val", "valid", "validation", "test"}
_TOLERANCE = 0.01  # normalised coordinates may overshoot [0, 1] by this much


_QUOTED = re.compile(r"""^(?:'((?:[^']|'')*)'|"((?:[^"\\]|\\.)*)")\s*(?:#.*)?$""")
_FLOW_TOKEN = re.compile(r"""\s*(?:'(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^,]+)""")


def _unquote(token: str) -> str:
    """A YAML scalar: quoted (``'a'``, ``"a"``) or plain, trailing ``# comment`` removed."""
    token = token.strip()
    match = _QUOTED.match(token)
    if match:
        if match.group(1) is not None:
            return match.group(1).replace("''", "'")
        return match.group(2).replace('\\"', '"')
    return re.split(r"\s+#", token, maxsplit=1)[0].strip()


def parse_names_yaml(text: str) -> list[str] | None:
    """Class names from the top-level ``names:`` key of a YOLO ``data.yaml``.

    Understands ``names: [a, 'b c']``, ``names: {0: a, 1: b}`` and block lists
    (``- a``) or mappings (``0: a``) on the following indented lines. Returns None when
    there is no ``names`` key; raises :class:`ValidationError` when it is malformed.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^names\s*:(.*)$", line)
        if not match:
            continue
        rest = match.group(1).strip()
        if rest.startswith(("[", "{")):
            closing = "]" if rest[0] == "[" else "}"
            body = rest
            j = i
            while closing not in body and j + 1 < len(lines):
                j += 1
                body += " " + lines[j].strip()
            if closing not in body:
                raise ValidationError("data.yaml: unterminated 'names' list")
            inner = body[1:body.rindex(closing)]
            tokens = [t for t in _FLOW_TOKEN.findall(inner) if t.strip()]
            if rest[0] == "[":
                return [_unquote(t) for t in tokens]
            pairs = [t.split(":", 1) for t in tokens]
            return _from_pairs(pairs)
        if rest and not rest.startswith("#"):
            raise ValidationError(f"data.yaml: cannot read 'names: {rest}'")
        block = []
        for nxt in lines[i + 1:]:
            if not nxt.strip() or nxt.strip().startswith("#"):
                continue
            if not nxt[0].isspace() and not nxt.startswith("-"):
                break
            block.append(nxt.strip())
        if all(b.startswith("-") for b in block):
            return [_unquote(b[1:]) for b in block]
        return _from_pairs([b.split(":", 1) for b in block])
    return None


def _from_pairs(pairs: list[list[str]]) -> list[str]:
    try:
        mapping = {int(k.strip()): _unquote(v) for k, v in pairs}
    except ValueError:
        raise ValidationError("data.yaml: 'names' mapping keys must be class indices") from None
    if sorted(mapping) != list(range(len(mapping))):
        raise ValidationError("data.yaml: 'names' indices must be 0..N-1")
    return [mapping[k] for k in range(len(mapping))]


def _class_names(root: Path, given: Sequence[str] | Mapping[int, str] | None,
                 ) -> list[str] | None:
    if isinstance(given, Mapping):
        if sorted(given) != list(range(len(given))):
            raise ValidationError("class_names mapping keys must be 0..N-1")
        return [given[k] for k in range(len(given))]
    if given is not None:
        return list(given)
    for name in ("data.yaml", "dataset.yaml"):
        if (root / name).is_file():
            names = parse_names_yaml((root / name).read_text(encoding="utf-8"))
            if names is not None:
                return names
    for name in ("classes.txt", "obj.names"):
        if (root / name).is_file():
            text = (root / name).read_text(encoding="utf-8")
            return [line.strip() for line in text.splitlines() if line.strip()]
    return None


def _parse_line(line: str, where: str, *, ref: str, size: tuple[int, int],
                names: list[str] | None, ann_id: str) -> Any:
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
    n = len(values)
    confidence = None
    if n == 5 or (n >= 7 and n % 2):
        confidence, values = values[-1], values[:-1]
    if len(values) < 4 or (len(values) > 4 and len(values) < 6):
        raise ValidationError(f"{where}: expected 'class cx cy w h' or a polygon, got "
                              f"{len(tokens)} values", reference_id=ref)
    if any(v < -_TOLERANCE or v > 1 + _TOLERANCE for v in values):
        raise GeometryError(f"{where}: coordinates must be normalised to [0, 1]: "
                            f"{line.strip()!r}", reference_id=ref)
    width, height = size
    common: dict[str, Any] = {"label": label, "reference_id": ref, "annotation_id": ann_id}
    if len(values) == 4:
        cx, cy, w, h = values
        if w < 0 or h < 0:
            raise GeometryError(f"{where}: negative box size", reference_id=ref)
        geom = {"x": (cx - w / 2) * width, "y": (cy - h / 2) * height,
                "width": w * width, "height": h * height}
        if confidence is None:
            return BoxAnnotation(**common, **geom)
        return BoxPrediction(**common, **geom, confidence=confidence)
    vertices = [(values[j] * width, values[j + 1] * height) for j in range(0, len(values), 2)]
    if confidence is None:
        return PolygonAnnotation(**common, vertices=vertices)
    return PolygonPrediction(**common, vertices=vertices, confidence=confidence)


def _layout(image: Path, root: Path) -> tuple[str, Path]:
    """Reference id and label file of an image, following Ultralytics' rule.

    The last ``images`` folder in the path is swapped for ``labels`` (``images/train/a.jpg``
    and ``train/images/a.jpg`` both give ``train/a.jpg`` and a ``labels`` twin); without an
    ``images`` folder the label sits next to the image.
    """
    parts = image.relative_to(root).parts
    if "images" in parts[:-1]:
        i = len(parts) - 1 - parts[::-1].index("images")
        ref_parts = parts[:i] + parts[i + 1:]
        label = root.joinpath(*parts[:i], "labels", *parts[i + 1:])
    else:
        ref_parts, label = parts, image
    return Path(*ref_parts).as_posix(), label.with_suffix(".txt")


def import_yolo(path: Path | str, class_names: Sequence[str] | Mapping[int, str] | None = None
                ) -> ImportedData:
    """Read a YOLO dataset folder (see the module docstring for layouts and lines).

    Every image is opened (header only) because YOLO coordinates are relative to the
    image size. Images without a label file are kept as unlabelled items; label files
    without an image are reported in ``warnings``.
    """
    root = require_dir(Path(path), "YOLO folder")
    names = _class_names(root, class_names)
    data = ImportedData(categories=list(names or []))
    if names is None:
        data.warnings.append("no class names (data.yaml, classes.txt); labels are indices")
    used: set[Path] = set()
    image_dirs: set[Path] = set()
    for image in find_images(root):
        if "labels" in image.relative_to(root).parts[:-1]:
            continue
        ref, label_file = _layout(image, root)
        width, height = image_size(image, ref)
        first = Path(ref).parts[0]
        meta: dict[str, Any] = {"split": first} if first.lower() in _SPLITS and "/" in ref else {}
        data.items.append(DatasetItem(image_location=str(image.absolute()), reference_id=ref,
                                      metadata=meta, width=width, height=height))
        image_dirs.add(image.parent)
        if not label_file.is_file():
            continue
        used.add(label_file)
        stem = Path(ref).with_suffix("").as_posix()
        k = 0
        for lineno, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            obj = _parse_line(line, f"{label_file.name}:{lineno}", ref=ref,
                              size=(width, height), names=names, ann_id=f"{stem}/{k}")
            (data.predictions if obj.is_prediction else data.annotations).append(obj)
            k += 1
    if not data.items:
        raise ValidationError(f"no images found in {root}", path=str(root))
    orphans = [p for p in root.rglob("*.txt") if p not in used
               and p.name not in ("classes.txt", "obj.names")
               and ("labels" in p.relative_to(root).parts or p.parent in image_dirs)]
    if orphans:
        data.warnings.append(f"{len(orphans)} label file(s) without an image, e.g. "
                             f"{orphans[0].relative_to(root).as_posix()}")
    if not used:
        data.warnings.append(f"no label files found for the images in {root}")
    if names is None:
        labels = {o.label for o in [*data.annotations, *data.predictions]}
        data.categories = sorted(labels, key=int)
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
    as a last value. Keypoints and category annotations are not written. Returns
    ``out_dir``.
    """
    out = Path(out_dir)
    groups = group_parts(annotations, fmt="YOLO")
    labels = sorted({g[k].label for g in groups for k in ("box", "segm") if k in g})
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
        line = _line(group, geometry, index, sizes)
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
    (out / "data.yaml").write_text(f"path: .\ntrain: images\nval: images\nnames:\n{yaml_names}",
                                   encoding="utf-8")
    return out


def _yaml_quote(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _line(group: dict[str, Any], geometry: str, index: Mapping[str, int],
          sizes: Mapping[str | None, tuple[int, int]]) -> tuple[str | None, str] | None:
    box, segm = group.get("box"), group.get("segm")
    obj = box if box is not None else segm
    if obj is None:
        return None  # keypoints only
    ref = obj.reference_id
    if ref not in sizes:
        return ref, ""
    width, height = sizes[ref]
    use_polygon = geometry == "polygon" or (
        geometry == "auto" and box is None and segm.type == "polygon")
    if use_polygon and segm is not None and segm.type == "polygon":
        coords = [c for v in segm.vertices for c in (v.x / width, v.y / height)]
    else:
        bbox = obj.bbox()
        if bbox is None:
            return None  # empty mask
        x, y, w, h = bbox
        if use_polygon:
            coords = [x / width, y / height, (x + w) / width, y / height,
                      (x + w) / width, (y + h) / height, x / width, (y + h) / height]
        else:
            coords = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
    values = [str(index[obj.label]), *(_fmt(c) for c in coords)]
    confidence = getattr(obj, "confidence", None)
    if obj.is_prediction and confidence is not None:
        values.append(_fmt(confidence))
    return ref, " ".join(values)
