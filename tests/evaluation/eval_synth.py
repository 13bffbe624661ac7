"""Seeded random COCO cases for the evaluation tests, and a quiet pycocotools runner."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

FLAVORS = ("mixed", "crowded", "crowd_heavy", "extreme_sizes", "duplicates", "sparse")


def random_case(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO instances dict and results list exercising the protocol's corner cases.

    The flavour cycles with the seed:

    * ``mixed`` — a few images and classes, jittered true detections, wrong classes,
      random boxes, scores rounded to 0.1 (many ties), some crowd regions;
    * ``crowded`` — one category with 100–160 detections per image (beyond maxDets);
    * ``crowd_heavy`` — many crowd regions, detections inside and around them;
    * ``extreme_sizes`` — 0.5 px to 4e5 px boxes (areas beyond COCO's range), zero-size;
    * ``duplicates`` — repeated ground-truth boxes (equal IoUs) and repeated detections;
    * ``sparse`` — images without ground truth or without detections, categories absent
      from the ground truth or from the predictions.
    """
    rng = np.random.default_rng(seed)
    flavor = FLAVORS[seed % len(FLAVORS)]
    n_img = int(rng.integers(1, 9))
    n_cat = 1 if flavor == "crowded" else int(rng.integers(1, 6))
    image_ids = sorted(int(i) for i in rng.choice(10_000, n_img, replace=False))
    cat_ids = sorted(int(c) for c in rng.choice(200, n_cat + 2, replace=False))
    gt_cats = cat_ids[:n_cat]  # the last two exist only in predictions (unknown to GT)
    # "sparse" lists one category that is never annotated.
    listed_cats = cat_ids[: n_cat + 1] if flavor == "sparse" and n_cat > 1 else gt_cats
    anns: list[dict[str, Any]] = []
    res: list[dict[str, Any]] = []
    round_to = 1 if flavor in ("mixed", "duplicates") else 3

    def box(scale: float = 1.0) -> list[float]:
        if flavor == "extreme_sizes":
            w, h = np.exp(rng.uniform(np.log(0.5), np.log(4e5), 2))
            if rng.random() < 0.05:
                w = 0.0
        else:
            w, h = rng.uniform(2, 220, 2) * scale
        x, y = rng.uniform(-20, 500, 2)
        return [float(x), float(y), float(w), float(h)]

    def jitter(b: list[float], amount: float) -> list[float]:
        x, y, w, h = b
        j = rng.normal(0, amount, 4) * np.array([w, h, w, h])
        return [float(x + j[0]), float(y + j[1]), float(abs(w + j[2])), float(abs(h + j[3]))]

    def score() -> float:
        return float(np.round(rng.random(), round_to))

    for img in image_ids:
        empty_gt = flavor == "sparse" and rng.random() < 0.3
        n_obj = 0 if empty_gt else int(rng.integers(0, 10 if flavor != "crowded" else 40))
        for _ in range(n_obj):
            b = box()
            cat = gt_cats[int(rng.integers(len(gt_cats)))]
            crowd_p = {"crowd_heavy": 0.4, "mixed": 0.08}.get(flavor, 0.03)
            crowd = bool(rng.random() < crowd_p)
            # The GT area (a segment's) need not equal the box area.
            area = b[2] * b[3] * float(rng.uniform(0.4, 1.0))
            copies = int(rng.integers(2, 4)) if flavor == "duplicates" and rng.random() < 0.4 else 1
            for _ in range(copies):
                anns.append({
                    "id": len(anns) + 1, "image_id": img, "category_id": cat, "bbox": b,
                    "area": area, "iscrowd": int(crowd),
                })
            if flavor == "sparse" and rng.random() < 0.5:
                continue  # this image's objects stay undetected
            for _ in range(int(rng.integers(0, 4 if not crowd else 6))):
                d_cat = cat if rng.random() < 0.8 else cat_ids[int(rng.integers(len(cat_ids)))]
                d = jitter(b, 0.12 if not crowd else 0.4)
                if crowd:
                    d = [b[0] + rng.uniform(0, b[2]), b[1] + rng.uniform(0, b[3]),
                         float(rng.uniform(1, 60)), float(rng.uniform(1, 60))]
                res.append({"image_id": img, "category_id": d_cat, "bbox": d, "score": score()})
                if flavor == "duplicates" and rng.random() < 0.3:
                    res.append(dict(res[-1]))
        if flavor == "duplicates":
            for _ in range(int(rng.integers(1, 4))):
                # Two ground truths at exactly equal IoU from a detection between them
                # (values on a 0.5 grid keep the arithmetic exact): pycocotools gives the
                # detection to the later one, which decides what the next detection gets.
                x, y = (float(v) for v in rng.integers(0, 800, 2) / 2)
                w, h = (float(v) for v in rng.integers(8, 200, 2) * 2)
                shift = float(rng.integers(1, int(w // 2)))
                cat = gt_cats[int(rng.integers(len(gt_cats)))]
                for gx in (x, x + shift):
                    anns.append({
                        "id": len(anns) + 1, "image_id": img, "category_id": cat,
                        "bbox": [gx, y, w, h], "area": w * h * float(rng.uniform(0.3, 1.0)),
                        "iscrowd": 0,
                    })
                res.append({"image_id": img, "category_id": cat,
                             "bbox": [x + shift / 2, y, w, h], "score": 0.9})
                near = x + shift * float(rng.choice([-0.2, 1.2]))
                res.append({"image_id": img, "category_id": cat, "bbox": [near, y, w, h],
                            "score": 0.8})
        n_random = int(rng.integers(0, 6))
        if flavor == "crowded":
            n_random = int(rng.integers(100, 160))
        if flavor == "sparse" and rng.random() < 0.4:
            n_random = 0
        for _ in range(n_random):
            cat = cat_ids[int(rng.integers(len(cat_ids)))] if flavor != "crowded" else gt_cats[0]
            res.append({"image_id": img, "category_id": cat, "bbox": box(), "score": score()})
    if not res:
        res.append({"image_id": image_ids[0], "category_id": listed_cats[0], "bbox": box(),
                    "score": 0.5})
    order = rng.permutation(len(res))
    res = [res[i] for i in order]
    dataset = {
        "images": [{"id": i, "width": 640, "height": 480} for i in image_ids],
        "categories": [{"id": c, "name": f"c{c}"} for c in listed_cats],
        "annotations": anns,
    }
    return dataset, res


def run_pycocotools(dataset: dict[str, Any], results: list[dict[str, Any]]) -> COCOeval:
    """``COCOeval(iouType="bbox")`` evaluate/accumulate/summarize, with prints silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def reference_per_class_ap(ev: COCOeval) -> np.ndarray:
    """Per-class AP at IoU .50:.95, area all, maxDets 100 from pycocotools' precision."""
    precision = ev.eval["precision"][:, :, :, 0, -1]
    out = []
    for k in range(precision.shape[2]):
        s = precision[:, :, k]
        out.append(float(np.mean(s[s > -1])) if (s > -1).any() else -1.0)
    return np.array(out)


def assert_same_fields(a: Any, b: Any) -> None:
    """Two dataclass results equal field by field (arrays: same dtype, same values)."""
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, field
            np.testing.assert_array_equal(x, y, err_msg=field)
        else:
            assert x == y, field
