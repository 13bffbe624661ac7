"""COCO instances / keypoints JSON: import ground truth and results, export both.

One COCO annotation record becomes up to three domain annotations, one per geometry it
carries (restrict with ``kinds``):

==================  ==========================================  =====================
COCO field          domain annotation                           ``annotation_id``
==================  ==========================================  =====================
``bbox``            :class:`BoxAnnotation`                      ``"17"``
one polygon         :class:`PolygonAnnotation`                  ``"17/polygon"``
several polygons    :class:`MaskAnnotation` (rasterised)        ``"17/mask"``
RLE (either form)   :class:`MaskAnnotation` (uncompressed RLE)  ``"17/mask"``
``keypoints``       :class:`KeypointsAnnotation`                ``"17/keypoints"``
==================  ==========================================  =====================

Box, polygon and mask keep COCO's ``area`` and ``iscrowd``; the box is COCO's ``bbox``
exactly, so box and segmentation metrics match pycocotools. Other annotation fields go
to ``metadata``, a ground truth's ``score`` too (model-made labels carry one).
Keypoints: ``v=0`` -> ``Keypoint(None, None, visible=False)``, ``v=1`` -> coordinates
with ``visible=False``, ``v=2`` -> ``visible=True``; the category's ``keypoints`` names
and its ``skeleton`` (converted from COCO's 1-based to 0-based indices, unless it
already uses index 0) are copied.

Results (:func:`import_coco_results`) are read as pycocotools' ``loadRes`` reads them
(:mod:`ocula.core.evaluation.coco_files`): each part's ``area`` is the one ``loadRes``
computes, a mask-only result keeps only its mask (its box is derived when evaluated), a
keypoint-only result gets the box of its points' extent, and a predicted polygon is
stored as the mask pycocotools makes of it. Records on images or of categories the
ground truth does not list are left out with a warning; ids of another type than the
images' are refused.

Items: ``reference_id`` is the image ``file_name``; ``metadata`` holds ``coco_id`` and
the other image fields (``license``, ``date_captured``, ...). Items come in ascending
image id order, pycocotools' order. :func:`export_coco` reverses all of this, merging
the parts of one record back together by annotation id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from ocula.core.evaluation.coco_files import (
    image_order,
    loadres_branch,
    resolve_image,
    result_rule,
)
from ocula.core.masks import polygons_to_rle, to_uncompressed
from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    KeypointsPrediction,
    MaskAnnotation,
    MaskPrediction,
    Point,
    PolygonAnnotation,
    PolygonPrediction,
)
from ocula.errors import DuplicateIdError, GeometryError, ValidationError

from ._common import (
    ImportedData,
    Prediction,
    all_numbers,
    check_box,
    image_size,
    is_number,
    load_json,
    part_id,
    unique_labels,
)
from .coco_export import (
    _ANN_FIELDS,
    _IMAGE_FIELDS,
    _image_ids,
    export_coco,
    export_coco_results,
    export_slice_contents,
    save_coco,
)

__all__ = ["KINDS", "export_coco", "export_coco_results", "export_slice_contents", "import_coco",
           "import_coco_results", "save_coco"]

KINDS = ("box", "polygon", "mask", "keypoints")


def _kinds(kinds: Collection[str] | None) -> set[str]:
    if kinds is None:
        return set(KINDS)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValidationError(f"unknown annotation kinds {sorted(unknown)}; use {list(KINDS)}")
    return set(kinds)


def _parse_categories(raw: Any, warnings: list[str]) -> tuple[dict[Any, dict], list[str]]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ValidationError("COCO 'categories' must be a list")
    by_id: dict[Any, dict] = {}
    for i, cat in enumerate(raw):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise ValidationError(f"category #{i} must be an object with 'id' and 'name': "
                                  f"{cat!r}")
        if cat["id"] in by_id:
            raise DuplicateIdError(f"category id {cat['id']!r} appears twice")
        if any(c["name"] == cat["name"] for c in by_id.values()):
            warnings.append(f"category name {cat['name']!r} is used by several ids; "
                            "their annotations share one label")
        by_id[cat["id"]] = cat
    return by_id, unique_labels(c["name"] for c in raw)


def _parse_images(raw: Any, images_dir: Path) -> tuple[list[DatasetItem], dict[Any, DatasetItem]]:
    """Items in pycocotools' visiting order (ascending image id), so that ties between
    equal scores on different images fall as they do in pycocotools, however the
    file lists its images; and the items by image id."""
    if not isinstance(raw, list):
        raise ValidationError("COCO file has no 'images' list")
    for i, img in enumerate(raw):
        if not isinstance(img, dict) or "id" not in img:
            raise ValidationError(f"image #{i} must be an object with an 'id'")
    seen: set[Any] = set()
    for img in raw:
        if img["id"] in seen:
            raise DuplicateIdError(f"image id {img['id']!r} appears twice",
                                   reference_id=img.get("file_name"))
        seen.add(img["id"])
    order = image_order([img["id"] for img in raw])
    items: list[DatasetItem] = []
    by_id: dict[Any, DatasetItem] = {}
    names: set[str] = set()
    for img in sorted(raw, key=lambda im: order[im["id"]]):
        name = img.get("file_name")
        if not isinstance(name, str) or not name:
            raise ValidationError(f"image id {img['id']!r} has no 'file_name'")
        if name in names:
            raise DuplicateIdError(f"file_name {name!r} appears twice", reference_id=name)
        names.add(name)
        path = (images_dir / name).absolute()
        width, height = img.get("width"), img.get("height")
        if width is None or height is None:
            width, height = image_size(path, name)
        elif not all(is_number(v) and float(v).is_integer() and v > 0 for v in (width, height)):
            raise ValidationError(f"image {name!r}: width/height must be positive integers, "
                                  f"got {width!r}x{height!r}", reference_id=name)
        width, height = int(width), int(height)
        meta = {"coco_id": img["id"]}
        meta.update({k: v for k, v in img.items() if k not in _IMAGE_FIELDS})
        item = DatasetItem(image_location=str(path), reference_id=name, metadata=meta,
                           width=width, height=height)
        items.append(item)
        by_id[img["id"]] = item
    return items, by_id


def _skeleton(cat: dict, warnings: list[str]) -> list[list[int]]:
    """COCO's 1-based skeleton as 0-based pairs; a skeleton that already uses index 0
    is 0-based (some tools write it so) and is kept as it is, with a warning."""
    raw = cat.get("skeleton") or []
    pairs = [[int(a), int(b)] for a, b in raw]
    if any(a == 0 or b == 0 for a, b in pairs):
        note = f"category {cat['name']!r}: skeleton uses index 0, read as 0-based"
        if note not in warnings:
            warnings.append(note)
        return pairs
    return [[a - 1, b - 1] for a, b in pairs]


def _keypoints(raw: Any, cat: dict, *, what: str, ref: str | None, prediction: bool,
               warnings: list[str]) -> tuple[list[Keypoint], list[str], list[list[int]]]:
    if not isinstance(raw, list) or len(raw) % 3 or not all(is_number(v) for v in raw):
        raise GeometryError(f"{what}: 'keypoints' must be a flat list of x, y, v triplets",
                            reference_id=ref)
    names = list(cat.get("keypoints") or [])
    if names and len(names) * 3 != len(raw):
        raise GeometryError(f"{what}: {len(raw) // 3} keypoints but category "
                            f"{cat['name']!r} names {len(names)}", reference_id=ref)
    points = []
    for j in range(0, len(raw), 3):
        x, y, v = raw[j:j + 3]
        if prediction:
            # Detections' visibility is never read by COCOeval: every point counts.
            points.append(Keypoint(None, None, False) if v == 0 and x == 0 and y == 0
                          else Keypoint(float(x), float(y), v > 0))
        elif v == 0:  # not labelled: COCO's coordinates for it mean nothing
            points.append(Keypoint(None, None, False))
        else:
            points.append(Keypoint(float(x), float(y), v >= 2))
    return points, names, _skeleton(cat, warnings)


def _convert(ann: dict, *, ann_id: str, item: DatasetItem, cat: dict, kinds: set[str],
             branch: str | None, warnings: list[str]) -> list[Any]:
    """Turn one COCO record into domain annotations (see the module docstring);
    ``branch`` is None for ground truth, else how pycocotools' ``loadRes`` reads this
    results file (:func:`~ocula.core.evaluation.coco_files.loadres_branch`)."""
    ref = item.reference_id
    what = f"{'result' if branch else 'annotation'} {ann_id}"
    prediction = branch is not None
    label = cat["name"]
    meta = {k: v for k, v in ann.items() if k not in _ANN_FIELDS}
    common: dict[str, Any] = {"label": label, "reference_id": ref}
    if prediction:
        score = ann.get("score")
        if not is_number(score):
            raise ValidationError(f"{what}: 'score' must be a number, got {score!r}",
                                  reference_id=ref)
        common["confidence"] = float(score)
    elif "score" in ann:
        meta["score"] = ann["score"]
    area = ann.get("area")
    if prediction:
        area = None  # loadRes recomputes every result's area; a written one is stale
    elif area is not None and not is_number(area):
        raise GeometryError(f"{what}: 'area' must be a number, got {area!r}", reference_id=ref)
    shape: dict[str, Any] = {"iscrowd": bool(ann.get("iscrowd", 0)) and not prediction,
                             "area": None if area is None else float(area)}
    box = None
    if ann.get("bbox") is not None and ann.get("bbox") != []:
        box = check_box(ann["bbox"], what=what, reference_id=ref)
    seg = ann.get("segmentation")
    segm_parts: list[Any] = []
    if seg:
        segm_parts = _segmentation(seg, common=common, shape=shape, meta=meta, ann_id=ann_id,
                                   item=item, kinds=kinds, prediction=prediction,
                                   warnings=warnings)
    rule = result_rule(branch, ann) if branch is not None else None
    kp_part = None
    if ann.get("keypoints") is not None:
        points, names, skeleton = _keypoints(ann["keypoints"], cat, what=what, ref=ref,
                                             prediction=prediction, warnings=warnings)
        if rule == "keypoints":
            # loadRes: the box and area are the extent of all points, unlabelled included.
            xs = [float(v) for v in ann["keypoints"][0::3]]
            ys = [float(v) for v in ann["keypoints"][1::3]]
            box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        if "keypoints" in kinds:
            cls = KeypointsPrediction if prediction else KeypointsAnnotation
            kp_part = cls(**common, keypoints=points, names=names, skeleton=skeleton,
                          annotation_id=part_id(ann_id, "keypoints"),
                          metadata=dict(meta) or None)
    loadres_area = None
    if rule is not None:
        # pycocotools' loadRes: box results -> w*h, segmentation results -> the mask's
        # pixel count, keypoint results -> the extent of their points.
        if rule == "segm":
            loadres_area = float(segm_parts[0].computed_area()) if segm_parts else 0.0
        elif box is not None:
            loadres_area = box[2] * box[3]
        for part in segm_parts:
            part.area = loadres_area
    out: list[Any] = []
    if box is not None and "box" in kinds:
        cls = BoxPrediction if prediction else BoxAnnotation
        box_shape = dict(shape, area=loadres_area) if rule is not None else shape
        x, y, w, h = box
        out.append(cls(**common, **box_shape, x=x, y=y, width=w, height=h,
                       annotation_id=ann_id, metadata=dict(meta) or None))
    out.extend(segm_parts)
    if kp_part is not None:
        out.append(kp_part)
    if not out and box is None and not seg and ann.get("keypoints") is None:
        warnings.append(f"{what} on {ref!r} has no bbox, segmentation or keypoints; skipped")
    return out


def _segmentation(seg: Any, *, common: dict, shape: dict, meta: dict, ann_id: str,
                  item: DatasetItem, kinds: set[str], prediction: bool,
                  warnings: list[str]) -> list[Any]:
    ref = item.reference_id
    what = f"annotation {ann_id}"
    h, w = item.height, item.width
    mask_cls = MaskPrediction if prediction else MaskAnnotation
    poly_cls = PolygonPrediction if prediction else PolygonAnnotation
    mask_id = part_id(ann_id, "mask")
    if isinstance(seg, dict):
        try:
            rle = to_uncompressed(seg, height=h, width=w)
        except GeometryError as exc:
            raise GeometryError(f"{what}: {exc.message}", reference_id=ref) from exc
        if h is not None and rle["size"] != [h, w]:
            raise GeometryError(f"{what}: RLE size {rle['size']} differs from the image "
                                f"size [{h}, {w}]", reference_id=ref)
        if "mask" in kinds:
            return [mask_cls(**common, **shape, mask=rle, annotation_id=mask_id,
                             metadata=dict(meta) or None)]
        warnings.append(f"{what} on {ref!r}: RLE mask skipped ('mask' not in kinds)")
        return []
    if not isinstance(seg, list) or not all(isinstance(p, list) for p in seg):
        raise GeometryError(f"{what}: 'segmentation' must be a list of polygons or an RLE "
                            "object", reference_id=ref)
    for poly in seg:
        if len(poly) < 6 or len(poly) % 2 or not all_numbers(poly):
            raise GeometryError(f"{what}: each polygon must be an even number (>= 6) of "
                                f"finite coordinates, got {poly!r}", reference_id=ref)
    # A predicted polygon is kept as the mask pycocotools makes of it, so that the
    # stored area is the one loadRes gives (a polygon's own area is its shoelace area).
    if len(seg) == 1 and "polygon" in kinds and not prediction:
        flat = seg[0]
        vertices = [Point(float(flat[j]), float(flat[j + 1])) for j in range(0, len(flat), 2)]
        return [poly_cls(**common, **shape, vertices=vertices,
                         annotation_id=part_id(ann_id, "polygon"), metadata=dict(meta) or None)]
    if "mask" in kinds:
        if h is None or w is None:
            raise GeometryError(f"{what}: cannot rasterise polygons, image size unknown",
                                reference_id=ref)
        return [mask_cls(**common, **shape, mask=polygons_to_rle(seg, h, w),
                         annotation_id=mask_id, metadata=dict(meta) or None)]
    warnings.append(f"{what} on {ref!r}: {len(seg)}-part polygon skipped "
                    "('mask' not in kinds)")
    return []


def _convert_records(records: Any, *, images: Mapping[Any, DatasetItem], cats: Mapping[Any, dict],
                     kinds: set[str], results: bool, warnings: list[str],
                     scored_as_predictions: bool = False) -> tuple[list[Any], list[Any]]:
    """Domain objects of every record, and those of records with a ``score`` when
    ``scored_as_predictions``. Records on images or of categories the ground truth does
    not list are left out with a warning, as pycocotools never evaluates them."""
    if not isinstance(records, list):
        raise ValidationError("COCO 'annotations' must be a list")
    for i, ann in enumerate(records):
        if not isinstance(ann, dict):
            raise ValidationError(f"{'result' if results else 'annotation'} #{i} must be an "
                                  f"object, got {ann!r}")
    branch = loadres_branch(records) if results else None
    scored_branch = None
    if scored_as_predictions:
        scored_branch = loadres_branch([r for r in records if "score" in r])
    out: list[Any] = []
    predictions: list[Any] = []
    seen: set[str] = set()
    no_image: list[Any] = []
    no_cat: list[Any] = []
    scored = 0
    for i, ann in enumerate(records):
        ann_id = str(i + 1) if results else str(ann.get("id", i + 1))
        if ann_id in seen:
            raise DuplicateIdError(f"annotation id {ann_id} appears twice")
        seen.add(ann_id)
        what = f"{'result #' + str(i) if results else 'annotation ' + ann_id}"
        item = resolve_image(ann.get("image_id"), images, what=what)
        if item is None:
            no_image.append(ann.get("image_id"))
            continue
        cat = cats.get(ann.get("category_id"))
        if cat is None:
            no_cat.append(ann.get("category_id"))
            continue
        if scored_branch is not None and "score" in ann:
            predictions.extend(_convert(ann, ann_id=ann_id, item=item, cat=cat, kinds=kinds,
                                        branch=scored_branch, warnings=warnings))
            continue
        scored += int(not results and "score" in ann)
        out.extend(_convert(ann, ann_id=ann_id, item=item, cat=cat, kinds=kinds, branch=branch,
                            warnings=warnings))
    kind = "results" if results else "annotations"
    if no_image:
        warnings.append(f"{len(no_image)} {kind} refer to image ids the ground truth does not "
                        f"list (e.g. {no_image[0]!r}); left out")
    if no_cat:
        warnings.append(f"{len(no_cat)} {kind} have category ids the ground truth does not "
                        f"list (e.g. {no_cat[0]!r}); left out")
    if scored:
        warnings.append(f"{scored} ground-truth annotations carry a 'score'; imported as ground "
                        "truth with the score in their metadata (import detections with "
                        "--predictions)")
    return out, predictions


_UNSUPPORTED = {"segments_info": "panoptic", "caption": "captions"}


def _refuse_other_flavours(data: dict, path: Path) -> None:
    """Panoptic and captions files share COCO's layout but not its objects."""
    anns = data.get("annotations")
    first = anns[0] if isinstance(anns, list) and anns and isinstance(anns[0], dict) else {}
    for key, flavour in _UNSUPPORTED.items():
        if key in first:
            raise ValidationError(f"{path} is a COCO {flavour} file ('{key}' in its "
                                  f"annotations); this COCO flavour is not supported: import "
                                  "COCO instances or person-keypoints files", path=str(path))


def import_coco(annotations_json: Path | str, images_dir: Path | str | None = None, *,
                kinds: Collection[str] | None = None,
                scored: Literal["annotations", "predictions"] = "annotations") -> ImportedData:
    """Read a COCO instances (or person keypoints) JSON file.

    ``images_dir`` is where ``file_name`` paths are resolved (default: the JSON file's
    folder). Image files are only opened when the JSON lacks ``width``/``height``.
    ``kinds`` restricts the geometries produced (subset of :data:`KINDS`). Items come
    in ascending image id order. Every record is ground truth, a ``score`` kept in its
    metadata (model-made labels carry one), unless ``scored="predictions"``: then
    records with a ``score`` land in ``predictions``, read as :func:`import_coco_results`
    reads results (what :func:`export_coco` writes for its ``predictions``).
    """
    if scored not in ("annotations", "predictions"):
        raise ValidationError(f"scored must be 'annotations' or 'predictions', got {scored!r}")
    path = Path(annotations_json)
    data = load_json(path, "COCO annotation file")
    if not isinstance(data, dict):
        raise ValidationError(f"{path} is not a COCO instances file (expected an object with "
                              "'images', 'annotations', 'categories')", path=str(path))
    _refuse_other_flavours(data, path)
    warnings: list[str] = []
    cats, names = _parse_categories(data.get("categories"), warnings)
    root = Path(images_dir) if images_dir is not None else path.parent
    items, by_id = _parse_images(data.get("images"), root)
    annotations, predictions = _convert_records(
        data.get("annotations", []), images=by_id, cats=cats, kinds=_kinds(kinds),
        results=False, warnings=warnings, scored_as_predictions=scored == "predictions")
    coco_info = {"categories": data.get("categories") or []}
    for key in ("info", "licenses"):
        if key in data:
            coco_info[key] = data[key]
    return ImportedData(items=items, annotations=annotations, predictions=predictions,
                        categories=names, info={"coco": coco_info}, warnings=warnings)


def import_coco_results(results_json: Path | str, gt: ImportedData | Path | str | dict, *,
                        kinds: Collection[str] | None = None,
                        warnings: list[str] | None = None) -> list[Prediction]:
    """Read detector results in COCO's results format, mapped onto a ground truth.

    ``results_json`` holds a list of ``{image_id, category_id, score, bbox |
    segmentation | keypoints}`` (an instances file with an ``annotations`` list is also
    accepted). ``image_id``/``category_id`` are resolved through ``gt``: a COCO file, a
    COCO dict (e.g. from :func:`export_coco`) or an :class:`ImportedData`. For the
    latter, images are numbered as :func:`export_coco` numbers them and categories come
    from ``gt.info["coco"]["categories"]``, else ``gt.categories`` numbered from 1.
    Predictions get ``annotation_id`` ``str(index + 1)``, like pycocotools' ``loadRes``.

    Every result is read as ``loadRes`` reads it: the first result decides whether boxes,
    masks or keypoints set each result's area and box, a written ``area`` is ignored,
    and a result with only a mask or only keypoints gets its box from them. Results on
    images or of categories the ground truth does not list are left out; what was left
    out is appended to ``warnings`` when given.
    """
    if isinstance(gt, str | Path):
        gt = import_coco(gt)
    if isinstance(gt, dict):
        cats, _ = _parse_categories(gt.get("categories"), [])
        _, images = _parse_images(gt.get("images"), Path("."))
    else:
        raw_cats = gt.info.get("coco", {}).get("categories") or [
            {"id": i, "name": name} for i, name in enumerate(gt.categories, start=1)]
        cats, _ = _parse_categories(raw_cats, [])
        images = dict(zip(_image_ids(gt.items), gt.items, strict=True))
    data = load_json(Path(results_json), "COCO results file")
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]
    if not isinstance(data, list):
        raise ValidationError(f"{results_json} is not a COCO results list")
    preds, _ = _convert_records(data, images=images, cats=cats, kinds=_kinds(kinds),
                                results=True, warnings=warnings if warnings is not None else [])
    return preds
