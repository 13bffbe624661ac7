"""COCO files read the way pycocotools reads them, as the engine's columns.

``COCO(gt)``, ``loadRes(results)`` and ``COCOeval._prepare`` decide, before any IoU is
computed, which objects are evaluated and with which area and box. Ocula follows them
rule by rule, so ``ocula eval`` and a catalog commit give pycocotools' numbers on the
files people actually have:

* **Images** are visited in ascending id order (``sorted(getImgIds())``); that order
  breaks ties between equal scores on different images. Ids are ints or strings, one
  kind per file (pycocotools cannot sort a mix).
* **Ids keep their type.** An annotation or result whose ``image_id`` is ``2299`` does
  not name the image ``"2299"`` in pycocotools (its ground truth is silently left out,
  its results are refused). Ocula refuses such a file with an error naming both forms.
* Ground truth on an image the file does not list is left out (pycocotools never visits
  it); so is ground truth or a result of a category not in ``categories``.
* Results on images the ground truth does not list are refused by pycocotools; Ocula
  leaves them out with a warning.
* **The first result decides how every result is read** (``loadRes``):

  - it has a non-empty ``bbox``: every result's area is its box's ``w·h`` (even when it
    also has a ``segmentation``, as detectron2 and mmdetection write), and a result
    without ``segmentation`` is its box's rectangle for ``segm``;
  - else it has a ``segmentation``: area = the mask's pixel count, box = the mask's
    tight pixel box unless the result gives one;
  - else it has ``keypoints``: box and area = the extent of all its points (unlabelled
    ``0, 0`` points included).

  A file that mixes forms (pycocotools crashes on one) is read result by result, each
  with the first rule that fits it (:func:`result_rule`). A stale ``area`` written in a
  results file is never read.
* Ground truth keeps its own ``area`` (w·h when absent) and ``bbox``; ``iscrowd`` is
  truthy or not; an ``ignore`` field is overwritten by ``iscrowd`` (as pycocotools
  does), and for keypoints a ground truth with ``num_keypoints == 0`` is ignored.
* Masks (``segm``): polygons are rasterised at the image's size and their parts merged;
  uncompressed RLE keeps its own size; compressed RLE is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import methodcaller
from typing import Any

import numpy as np

from ocula.core.evaluation.inputs import Detections, GroundTruth
from ocula.core.evaluation.segm import MaskPairIoU, MaskSet
from ocula.core.masks import polygons_to_rle, to_uncompressed
from ocula.errors import GeometryError, ValidationError

__all__ = ["IOU_TYPES", "CocoInputs", "evaluate_inputs", "image_order", "load_coco",
           "loadres_branch", "resolve_image", "result_rule"]

IOU_TYPES = ("bbox", "segm", "keypoints")
_IMAGE_ID = methodcaller("get", "image_id")


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, str):
        return "str"
    return None


def image_order(ids: Sequence[Any]) -> dict[Any, int]:
    """Each image id's position in pycocotools' visiting order (ascending id).

    Raises :class:`ValidationError` for ids that are neither ints nor strings, for a mix
    of both, and for an id listed twice.
    """
    kinds = set()
    for value in ids:
        kind = _kind(value)
        if kind is None:
            raise ValidationError(f"image id {value!r} must be an integer or a string")
        kinds.add(kind)
    if len(kinds) > 1:
        raise ValidationError("image ids mix integers and strings; pycocotools cannot order "
                              "them: use one type for all image ids")
    order: dict[Any, int] = {}
    for rank, value in enumerate(sorted(ids)):
        if value in order:
            raise ValidationError(f"image id {value!r} appears twice")
        order[value] = rank
    return order


def resolve_image(image_id: Any, known: Mapping[Any, Any], *, what: str) -> Any:
    """``known[image_id]``, None when the id names no image, and a clear error when it
    names one only as another type (``2299`` for ``"2299"``), which pycocotools would
    treat as a different image."""
    kind = _kind(image_id)
    if kind is not None and image_id in known:
        return known[image_id]
    twin: Any = None
    if kind == "int":
        twin = str(image_id)
    elif kind == "str" and image_id.strip().lstrip("-").isdecimal():
        twin = int(image_id)
    if twin is not None and twin in known:
        raise ValidationError(
            f"{what} has image_id {image_id!r} ({type(image_id).__name__}) but the image "
            f"is listed with id {twin!r} ({type(twin).__name__}); pycocotools treats these "
            "as different images: use the same type for ids everywhere")
    return None


def loadres_branch(results: Sequence[Mapping[str, Any]]) -> str:
    """``"bbox"``, ``"segm"`` or ``"keypoints"``: how pycocotools' ``loadRes`` reads every
    result, chosen by the first one (see the module docstring)."""
    if not results:
        return "bbox"
    first = results[0]
    if not isinstance(first, Mapping):
        raise ValidationError(f"result #0 must be an object, got {first!r}")
    if "bbox" in first and first["bbox"] != []:
        return "bbox"
    if "segmentation" in first:
        return "segm"
    if "keypoints" in first:
        return "keypoints"
    raise ValidationError("result #0 has no bbox, segmentation or keypoints")


def _box(value: Any, what: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise GeometryError(f"{what}: 'bbox' must be [x, y, width, height], got {value!r}")
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{what}: 'bbox' must hold numbers, got {value!r}") from exc


def _float_column(values: list[Any]) -> np.ndarray | None:
    """``values`` as float64 when each is an int or float (``float(v)`` each), else None."""
    if not set(map(type, values)) <= {float, int}:
        return None
    return np.array(values, dtype=np.float64).reshape(len(values))


def _box_column(values: list[Any]) -> np.ndarray | None:
    """``values`` as an ``(N, 4)`` float64 array when each is a list of 4 ints or floats
    (what :func:`_box` gives each), else None: :func:`_box` then reads them one by one."""
    if not values:
        return np.zeros((0, 4), dtype=np.float64)
    if set(map(type, values)) != {list} or set(map(len, values)) != {4}:
        return None
    if not set(map(type, chain.from_iterable(values))) <= {float, int}:
        return None
    return np.array(values, dtype=np.float64)


def mask_counts(segm: Any, height: int | None, width: int | None, *, what: str
                ) -> tuple[list[int], int, int]:
    """Uncompressed counts and size of a COCO segmentation, as ``annToRLE`` makes them:
    polygons rasterised at ``height × width`` and merged, RLE at its own size."""
    try:
        if isinstance(segm, list):
            if height is None or width is None:
                raise GeometryError("cannot rasterise polygons: the image has no size")
            rle = polygons_to_rle(segm, int(height), int(width))
        else:
            rle = to_uncompressed(segm, height=height, width=width)
    except GeometryError as exc:
        raise GeometryError(f"{what}: {exc.message}") from exc
    return rle["counts"], int(rle["size"][0]), int(rle["size"][1])


def _keypoint_triplets(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64) if isinstance(value, list) else None
    if arr is None or arr.ndim != 1 or len(arr) % 3 or len(arr) == 0:
        raise GeometryError(f"{what}: 'keypoints' must be a flat list of x, y, v triplets")
    return arr


@dataclass
class CocoInputs:
    """Both sides of a COCO evaluation, as :func:`load_coco` reads them.

    ``gt.image`` / ``dt.image`` hold each image's rank in pycocotools' visiting order,
    ``label`` the category id, ``id`` the annotation id (results: ``1..N`` as loadRes
    numbers them). ``pair_iou`` is set for ``segm``. For ``keypoints``,
    ``gt_keypoints`` / ``dt_keypoints`` hold each row's flat ``x, y, v`` triplets and
    ``num_keypoints`` each ground truth's ``num_keypoints`` field.
    """

    iou_type: str
    gt: GroundTruth
    dt: Detections
    categories: list[Any]
    category_names: dict[Any, str]
    pair_iou: MaskPairIoU | None = None
    gt_keypoints: list[np.ndarray] = field(default_factory=list)
    dt_keypoints: list[np.ndarray] = field(default_factory=list)
    num_keypoints: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


def _categories(dataset: Mapping[str, Any]) -> dict[Any, str]:
    raw = dataset.get("categories") or []
    if not isinstance(raw, list):
        raise ValidationError("COCO 'categories' must be a list")
    names: dict[Any, str] = {}
    for i, cat in enumerate(raw):
        if not isinstance(cat, Mapping) or _kind(cat.get("id")) is None:
            raise ValidationError(f"category #{i} must be an object with an integer or "
                                  f"string 'id', got {cat!r}")
        names[cat["id"]] = str(cat.get("name", cat["id"]))
    if len({_kind(c) for c in names}) > 1:
        raise ValidationError("category ids mix integers and strings; use one type")
    return names


def _evaluated(records: Sequence[Any], what: str, order: Mapping[Any, int],
               names: Mapping[Any, str]) -> tuple[list[tuple[int, Any, Mapping[str, Any]]], int]:
    """``(index, image id, record)`` of the records pycocotools evaluates (on a listed
    image, of a listed category), and how many name an image the file does not list."""
    if set(map(type, records)) <= {dict}:
        try:
            return _evaluated_dicts(records, what, order, names)
        except (TypeError, ValidationError):
            pass  # the loop below raises the error of the first bad record
    rows = []
    outside = 0
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValidationError(f"{what} #{i} must be an object, got {rec!r}")
        if resolve_image(rec.get("image_id"), order, what=f"{what} #{i}") is None:
            outside += 1
        elif rec.get("category_id") in names:
            rows.append((i, rec.get("image_id"), rec))
    return rows, outside


def _evaluated_dicts(records: Sequence[dict[str, Any]], what: str, order: Mapping[Any, int],
                     names: Mapping[Any, str]
                     ) -> tuple[list[tuple[int, Any, Mapping[str, Any]]], int]:
    """:func:`_evaluated` of plain dicts by whole columns, the same rows. Raises
    TypeError (ids neither ints nor strings, an unhashable category id) or
    ValidationError; :func:`_evaluated`'s loop then reads record by record."""
    images = list(map(_IMAGE_ID, records))
    if not set(map(type, images)) <= {int, str}:
        raise TypeError("image ids of other types: read record by record")
    ranks = list(map(order.get, images))
    missing = [i for i, rank in enumerate(ranks) if rank is None]
    for i in missing:  # an id listed only as the other type is an error
        resolve_image(images[i], order, what=f"{what} #{i}")
    rows = [(i, img, rec) for i, (img, rec, rank) in enumerate(zip(images, records, ranks,
                                                                    strict=True))
            if rank is not None and rec.get("category_id") in names]
    return rows, len(missing)


def load_coco(dataset: Mapping[str, Any], results: Sequence[Mapping[str, Any]],
              iou_type: str = "bbox") -> CocoInputs:
    """Read a COCO ground-truth dict and a results list as pycocotools would evaluate
    them under ``iou_type`` (``bbox``, ``segm`` or ``keypoints``).

    Raises :class:`ValidationError` / :class:`GeometryError` naming the record for a
    file pycocotools would refuse or crash on, except results on unknown images, which
    are left out with a warning in :attr:`CocoInputs.warnings`.
    """
    if iou_type not in IOU_TYPES:
        raise ValidationError(f"iou_type must be one of {list(IOU_TYPES)}, got {iou_type!r}")
    images = dataset.get("images")
    if not isinstance(images, list) or not all(isinstance(i, Mapping) and "id" in i
                                               for i in images):
        raise ValidationError("COCO ground truth needs an 'images' list of objects with 'id'")
    order = image_order([img["id"] for img in images])
    sizes = {img["id"]: (img.get("height"), img.get("width")) for img in images}
    names = _categories(dataset)
    warnings: list[str] = []
    anns = dataset.get("annotations") or []
    if not isinstance(anns, list):
        raise ValidationError("COCO 'annotations' must be a list")
    gt_rows, outside = _evaluated(anns, "annotation", order, names)
    if outside:
        warnings.append(f"{outside} ground-truth annotations are on images the file does "
                        "not list; they are not evaluated (as in pycocotools)")
    if not isinstance(results, list):
        raise ValidationError("COCO results must be a list")
    branch = loadres_branch(results)
    dt_rows, unknown = _evaluated(results, "result", order, names)
    if unknown:
        # pycocotools refuses such files outright; evaluating the rest is more useful.
        warnings.append(f"{unknown} predictions refer to images not in the ground truth; "
                        "they are ignored")
    out = _ground_truth(gt_rows, order, iou_type, names)
    out.warnings = warnings
    gt_masks = _gt_masks(gt_rows, sizes) if iou_type == "segm" else None
    _detections(out, dt_rows, order, sizes, branch, gt_masks)
    return out


def _ground_truth(rows: list[tuple[int, Any, Mapping[str, Any]]], order: Mapping[Any, int],
                  iou_type: str, names: dict[Any, str]) -> CocoInputs:
    n = len(rows)
    bbox = _box_column([ann.get("bbox") for _, _, ann in rows]) if iou_type != "segm" else None
    area = _float_column([ann.get("area") for _, _, ann in rows])
    if bbox is None or area is None:
        bbox = np.zeros((n, 4), dtype=np.float64)
        area = np.zeros(n, dtype=np.float64)
        for k, (_, _, ann) in enumerate(rows):
            what = f"annotation {ann.get('id', k + 1)!r}"
            if "bbox" in ann or iou_type != "segm":
                bbox[k] = _box(ann.get("bbox"), what)
            raw_area = ann.get("area")
            area[k] = float(raw_area) if raw_area is not None else bbox[k, 2] * bbox[k, 3]
    gt = GroundTruth(
        np.array([order[img] for _, img, _ in rows], dtype=np.int64),
        _label_column([ann["category_id"] for _, _, ann in rows]),
        bbox, area=area,
        iscrowd=np.array([bool(ann.get("iscrowd", 0)) for _, _, ann in rows], dtype=bool),
        id=np.array([_int_id(ann.get("id", k + 1)) for k, (_, _, ann) in enumerate(rows)],
                    dtype=np.int64))
    out = CocoInputs(iou_type, gt, Detections([], [], np.zeros((0, 4)), []),
                     sorted(names), names)
    if iou_type == "keypoints":
        out.gt_keypoints = [_keypoint_triplets(ann.get("keypoints"),
                                               f"annotation {ann.get('id', k + 1)!r}")
                            for k, (_, _, ann) in enumerate(rows)]
        out.num_keypoints = np.array(
            [ann["num_keypoints"] if ann.get("num_keypoints") is not None
             else int(np.count_nonzero(kp[2::3] > 0))
             for (_, _, ann), kp in zip(rows, out.gt_keypoints, strict=True)], dtype=np.int64)
    return out


def _int_id(value: Any) -> int:
    # Annotation ids only label rows in results; non-integer ids fall back to 0.
    return int(value) if _kind(value) == "int" else 0


def _label_column(values: list[Any]) -> np.ndarray:
    if values and (set(map(type, values)) == {int} or all(_kind(v) == "int" for v in values)):
        return np.array(values, dtype=np.int64)
    return np.array([str(v) for v in values]) if values else np.zeros(0, dtype=np.int64)


def _gt_masks(rows: list[tuple[int, Any, Mapping[str, Any]]],
              sizes: Mapping[Any, tuple[Any, Any]]) -> MaskSet:
    counts, hs, ws = [], [], []
    for k, (_, img, ann) in enumerate(rows):
        what = f"annotation {ann.get('id', k + 1)!r}"
        if "segmentation" not in ann:
            raise ValidationError(f"{what} has no 'segmentation' to evaluate with "
                                  "iou_type='segm'")
        c, h, w = mask_counts(ann["segmentation"], *sizes[img], what=what)
        counts.append(c)
        hs.append(h)
        ws.append(w)
    return MaskSet(counts, hs, ws)


def result_rule(branch: str, result: Mapping[str, Any]) -> str:
    """How one result's area and box are made: the file's ``loadRes`` branch when the
    result has what that branch reads, else the first of box, mask, keypoints it has.
    pycocotools crashes on such a mixed file; Ocula reads it result by result."""
    have = {"bbox": "bbox" in result and result["bbox"] != [],
            "segm": "segmentation" in result, "keypoints": "keypoints" in result}
    if have[branch]:
        return branch
    return next((rule for rule, present in have.items() if present), branch)


def _detections(out: CocoInputs, rows: list[tuple[int, Any, Mapping[str, Any]]],
                order: Mapping[Any, int], sizes: Mapping[Any, tuple[Any, Any]],
                branch: str, gt_masks: MaskSet | None) -> None:
    plain = _plain_boxes(out, rows, branch)
    if plain is not None:
        bbox, scores = plain
        out.dt = Detections(
            np.array([order[img] for _, img, _ in rows], dtype=np.int64),
            _label_column([res["category_id"] for _, _, res in rows]),
            bbox, scores, area=bbox[:, 2] * bbox[:, 3],
            id=np.array([i + 1 for i, _, _ in rows], dtype=np.int64))
        return
    n = len(rows)
    bbox = np.zeros((n, 4), dtype=np.float64)
    area = np.zeros(n, dtype=np.float64)
    rules = [result_rule(branch, res) for _, _, res in rows]
    need_masks = out.iou_type == "segm" or "segm" in rules
    counts: list[list[int]] = []
    hs: list[int] = []
    ws: list[int] = []
    for k, ((i, img, res), rule) in enumerate(zip(rows, rules, strict=True)):
        what = f"result #{i}"
        if rule == "bbox":
            bbox[k] = _box(res.get("bbox"), what)
            area[k] = bbox[k, 2] * bbox[k, 3]
        elif rule == "keypoints":
            kp = _keypoint_triplets(res.get("keypoints"), what)
            xs, ys = kp[0::3], kp[1::3]
            x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
            bbox[k] = (x0, y0, x1 - x0, y1 - y0)
            area[k] = (x1 - x0) * (y1 - y0)
        if need_masks:
            segm = res.get("segmentation")
            if segm is None and rule != "segm":
                # loadRes' box branch: a result without a mask is its box's rectangle.
                x, y, w, h = bbox[k]
                segm = [[x, y, x, y + h, x + w, y + h, x + w, y]]
            c, h, w = mask_counts(segm, *sizes[img], what=what)
            counts.append(c)
            hs.append(h)
            ws.append(w)
        if out.iou_type == "keypoints":
            out.dt_keypoints.append(_keypoint_triplets(res.get("keypoints"), what))
    masks = MaskSet(counts, hs, ws) if need_masks else None
    for k, ((i, _, res), rule) in enumerate(zip(rows, rules, strict=True)):
        if rule == "segm":
            assert masks is not None
            area[k] = masks.area[k]
            bbox[k] = _box(res["bbox"], f"result #{i}") if "bbox" in res else _mask_box(masks, k)
    scores = []
    for i, _, res in rows:
        score = res.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ValidationError(f"result #{i}: 'score' must be a number, got {score!r}")
        scores.append(float(score))
    out.dt = Detections(
        np.array([order[img] for _, img, _ in rows], dtype=np.int64),
        _label_column([res["category_id"] for _, _, res in rows]),
        bbox, np.array(scores, dtype=np.float64), area=area,
        id=np.array([i + 1 for i, _, _ in rows], dtype=np.int64))
    if gt_masks is not None:
        assert masks is not None
        out.pair_iou = MaskPairIoU(masks, gt_masks, out.gt.iscrowd)


def _plain_boxes(out: CocoInputs, rows: list[tuple[int, Any, Mapping[str, Any]]],
                 branch: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Boxes and scores of a ``bbox`` evaluation whose results all have a box of four
    numbers and a numeric score, read as whole columns: the values, areas (``w·h``) and
    rules the loop in :func:`_detections` gives such a file. None for any other file."""
    if out.iou_type != "bbox" or branch != "bbox":
        return None
    bbox = _box_column([res.get("bbox") for _, _, res in rows])
    scores = _float_column([res.get("score") for _, _, res in rows])
    if bbox is None or scores is None:
        return None
    return bbox, scores


def _mask_box(masks: MaskSet, k: int) -> list[float]:
    """pycocotools' ``toBbox``: the tight pixel box, zeros for an empty mask."""
    if masks.area[k] == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = float(masks.x0[k]), float(masks.y0[k])
    return [x0, y0, float(masks.x1[k]) - x0 + 1, float(masks.y1[k]) - y0 + 1]


def evaluate_inputs(inputs: CocoInputs, *, sigmas: Any = None) -> Any:
    """COCO evaluation of :func:`load_coco`'s result (a
    :class:`~ocula.core.evaluation.results.CocoEvaluation`); ``sigmas`` are the
    per-keypoint OKS constants for ``keypoints`` (default: COCO's, for 17 keypoints)."""
    from ocula.core.evaluation.coco import evaluate_coco

    if inputs.iou_type == "keypoints":
        from ocula.core.evaluation.keypoints import evaluate_keypoints

        return evaluate_keypoints(inputs.gt, inputs.dt, inputs.gt_keypoints,
                                  inputs.dt_keypoints, sigmas=sigmas,
                                  categories=inputs.categories or None,
                                  num_keypoints=inputs.num_keypoints)
    return evaluate_coco(inputs.gt, inputs.dt, categories=inputs.categories or None,
                         pair_iou=inputs.pair_iou)
