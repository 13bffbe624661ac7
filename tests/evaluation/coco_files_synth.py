"""Seeded COCO ground-truth and results files shaped like the files people bring.

Each pair holds what real files hold and the randomized exactness tests once lacked:
crowd regions as RLE (uncompressed and compressed), multi-part polygons, ``images``
listed out of id order (ids up to 3e10, or strings), images without annotations,
categories without ground truth, categories unknown to the ground truth, a GT ``area``
unlike the box's, stale ``area`` fields in results, results with both ``bbox`` and
``segmentation`` (as detectron2 writes), segmentation-only results (compressed RLE),
keypoint results with and without boxes, equal scores across images, and results on
images the ground truth does not list. :func:`pycocotools_stats` is the reference:
pycocotools itself, on a deep copy, with the results on unknown images removed (it
refuses those files outright).
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

#: How results are written: which fields each result carries.
RESULT_FORMS = ("box", "box+segm", "segm", "segm-then-box", "keypoints", "keypoints+box")
PERSON_KEYPOINTS = 17


def _polygon(rng: np.random.Generator, x: float, y: float, w: float, h: float) -> list[float]:
    """A random star-shaped polygon inside the box."""
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.3, 0.5, n)
    cx, cy = x + w / 2, y + h / 2
    pts = np.stack([cx + radii * w * np.cos(angles), cy + radii * h * np.sin(angles)], 1)
    return [round(float(v), 2) for v in pts.reshape(-1)]


def _rle(poly_parts: list[list[float]], h: int, w: int) -> dict[str, Any]:
    rles = mask_utils.frPyObjects(poly_parts, h, w)
    return mask_utils.merge(rles)


def _uncompressed(rle: dict[str, Any]) -> dict[str, Any]:
    bitmap = mask_utils.decode(rle)
    flat = bitmap.reshape(-1, order="F")
    changes = np.flatnonzero(np.diff(np.concatenate(([0], flat, [1 - flat[-1]]))))
    counts = np.diff(np.concatenate(([0], changes))).tolist()
    return {"size": list(rle["size"]), "counts": [int(c) for c in counts]}


def _compressed(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def coco_pair(seed: int, *, form: str | None = None, string_ids: bool = False
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO ground-truth dict and results list (see the module docstring).

    ``form`` is one of :data:`RESULT_FORMS` (default: chosen by the seed); keypoint
    forms make a person-keypoints file.
    """
    rng = np.random.default_rng(seed)
    form = form or RESULT_FORMS[seed % len(RESULT_FORMS)]
    keypoints = form.startswith("keypoints")
    n_img = int(rng.integers(3, 8))
    ids: list[Any] = [int(v) for v in rng.choice(30_000_000_000, n_img, replace=False)]
    if seed % 3 == 0:
        ids[0] = int(rng.integers(1, 5))  # small and huge ids side by side
    if string_ids:
        ids = [f"{v:x}" if k % 2 else str(v) for k, v in enumerate(ids)]
    images = [{"id": i, "file_name": f"im_{k}.png", "width": int(rng.integers(40, 120)),
               "height": int(rng.integers(40, 120))} for k, i in enumerate(ids)]
    rng.shuffle(images)  # never in id order
    if keypoints:
        cats = [{"id": 1, "name": "person", "supercategory": "person",
                 "keypoints": [f"k{j}" for j in range(PERSON_KEYPOINTS)],
                 "skeleton": [[1, 2], [2, 3]]}]
    else:
        cat_ids = [int(v) for v in rng.choice(np.arange(1, 91), int(rng.integers(2, 5)),
                                              replace=False)]
        # Names in another order than ids: pycocotools averages classes in id order.
        words = ["zebra", "apple", "mango", "kiwi", "fig", "lime"]
        names = [str(w) for w in rng.choice(words, len(cat_ids), replace=False)]
        cats = [{"id": c, "name": n, "supercategory": "thing"}
                for c, n in zip(cat_ids, names, strict=True)]
    # The last category never has ground truth; results also use an unknown one.
    gt_cats = [c["id"] for c in cats[:-1]] if len(cats) > 1 else [cats[0]["id"]]
    anns: list[dict[str, Any]] = []
    res: list[dict[str, Any]] = []
    for img in images:
        h, w = img["height"], img["width"]
        n_obj = 0 if rng.random() < 0.2 else int(rng.integers(1, 7))
        for _ in range(n_obj):
            bw, bh = rng.uniform(3, w * 0.8), rng.uniform(3, h * 0.8)
            bx, by = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            box = [round(float(v), 2) for v in (bx, by, bw, bh)]
            crowd = bool(rng.random() < 0.12)
            parts = [_polygon(rng, *box)]
            if rng.random() < 0.3:  # a second part: a multi-part polygon
                parts.append(_polygon(rng, box[0], box[1], box[2] / 2, box[3] / 2))
            rle = _rle(parts, h, w)
            ann: dict[str, Any] = {
                "id": len(anns) + 1 + int(rng.integers(0, 3)) * 1000,
                "image_id": img["id"], "category_id": int(rng.choice(gt_cats)),
                "bbox": box, "iscrowd": int(crowd),
                # Real files: the segment's area, not the box's.
                "area": float(mask_utils.area(rle)) if rng.random() < 0.8
                else round(box[2] * box[3] * float(rng.uniform(0.3, 1)), 3),
            }
            if crowd:
                ann["segmentation"] = (_uncompressed(rle) if rng.random() < 0.7
                                       else _compressed(rle))
            else:
                ann["segmentation"] = parts
            if rng.random() < 0.1:
                ann["ignore"] = 1  # pycocotools overwrites it with iscrowd
            if keypoints:
                ann["keypoints"], ann["num_keypoints"] = _gt_keypoints(rng, box)
            if any(a["id"] == ann["id"] for a in anns):
                ann["id"] = len(anns) + 100_000
            anns.append(ann)
            for _ in range(int(rng.integers(0, 3))):
                res.append(_result(rng, img, box, ann["category_id"], form, ann))
        for _ in range(int(rng.integers(0, 3))):  # background false positives
            bw, bh = rng.uniform(3, w / 2), rng.uniform(3, h / 2)
            box = [float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)), bw, bh]
            cat = int(rng.choice([c["id"] for c in cats] + [999]))  # 999: unknown category
            res.append(_result(rng, img, box, cat, form, None))
    rng.shuffle(res)
    if form == "segm-then-box" and res:
        res[0].pop("bbox", None)  # the first result decides: the segm branch for all
    if res:
        unknown = 7 if not string_ids else "nowhere"
        extra = dict(res[-1], image_id=unknown)
        res.append(extra)  # on an image the ground truth does not list
    gt = {"info": {"description": f"seed {seed}"}, "images": images, "annotations": anns,
          "categories": cats}
    return gt, res


def _gt_keypoints(rng: np.random.Generator, box: list[float]) -> tuple[list[float], int]:
    x, y, w, h = box
    flat: list[float] = []
    if rng.random() < 0.1:  # nothing labelled: ignored by pycocotools
        return [0.0] * (3 * PERSON_KEYPOINTS), 0
    for _ in range(PERSON_KEYPOINTS):
        v = int(rng.choice([0, 1, 2], p=[0.3, 0.2, 0.5]))
        if v == 0:
            flat += [0.0, 0.0, 0.0]
        else:
            flat += [round(float(rng.uniform(x, x + w)), 2),
                     round(float(rng.uniform(y, y + h)), 2), float(v)]
    return flat, sum(1 for v in flat[2::3] if v > 0)


def _result(rng: np.random.Generator, img: dict[str, Any], box: list[float], cat: int,
            form: str, ann: dict[str, Any] | None) -> dict[str, Any]:
    h, w = img["height"], img["width"]
    x, y, bw, bh = box
    j = rng.normal(0, 0.08, 4) * np.array([bw, bh, bw, bh])
    nx = float(np.clip(x + j[0], 0, w - 2))
    ny = float(np.clip(y + j[1], 0, h - 2))
    nw = float(np.clip(abs(bw + j[2]), 1, w - nx))
    nh = float(np.clip(abs(bh + j[3]), 1, h - ny))
    det_box = [round(v, 2) for v in (nx, ny, nw, nh)]
    # Scores rounded to 0.1: many ties, across images too.
    out: dict[str, Any] = {"image_id": img["id"], "category_id": cat,
                           "score": round(float(rng.random()), 1)}
    if form.startswith("keypoints"):
        kps: list[float] = []
        for k in range(PERSON_KEYPOINTS):
            if ann is not None and ann["keypoints"][3 * k + 2] > 0 and rng.random() < 0.9:
                gx, gy = ann["keypoints"][3 * k], ann["keypoints"][3 * k + 1]
                # Inside the image: the catalog refuses predictions outside it.
                kps += [round(float(np.clip(gx + rng.normal(0, 2), 0, w)), 2),
                        round(float(np.clip(gy + rng.normal(0, 2), 0, h)), 2),
                        float(rng.choice([0, 1, 2]))]
            elif rng.random() < 0.5:
                kps += [0.0, 0.0, 0.0]
            else:
                kps += [round(float(rng.uniform(nx, nx + nw)), 2),
                        round(float(rng.uniform(ny, ny + nh)), 2), 1.0]
        out["keypoints"] = kps
        if form == "keypoints+box":
            out["bbox"] = det_box
        return out
    out["area"] = round(float(rng.uniform(1, 20000)), 1)  # stale: loadRes recomputes it
    if form == "box":
        out["bbox"] = det_box
        return out
    rle = _rle([_polygon(rng, *det_box)], h, w)
    out["segmentation"] = _compressed(rle)
    if form in ("box+segm", "segm-then-box"):
        out["bbox"] = det_box
    return out


def pycocotools_stats(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str
                      ) -> np.ndarray:
    """pycocotools' summary numbers for the pair (results on unknown images removed)."""
    known = {img["id"] for img in gt["images"]}
    dets = [r for r in copy.deepcopy(results) if r["image_id"] in known]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets) if dets else COCO(), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)
