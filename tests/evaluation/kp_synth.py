"""Seeded random COCO keypoint cases, the engine's columns for them, and pycocotools runs."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ocula.core.evaluation import Detections, GroundTruth, keypoint_boxes

PERSON = 1
KP_FLAVORS = ("mixed", "crowded", "unlabelled", "sizes", "integers", "sparse")


class KeypointCase:
    """One random case: a COCO keypoints dataset, a results list and sigmas per category.

    The flavour cycles with the seed:

    * ``mixed`` — person plus other categories, jittered true detections, wrong classes,
      random poses, scores rounded to 0.1 (ties), some crowd regions;
    * ``crowded`` — 21–45 detections per image and category (beyond maxDets=20);
    * ``unlabelled`` — many people with ``num_keypoints == 0`` (all v = 0, coordinates
      kept or zeroed), crowd regions without keypoints, stale ``num_keypoints`` fields;
    * ``sizes`` — areas from 0 to beyond 1e10 (outside every range), equal scores;
    * ``integers`` — integer coordinates and boxes, as in COCO's own files;
    * ``sparse`` — images without ground truth, categories without detections.
    """

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.flavor = flavor = KP_FLAVORS[seed % len(KP_FLAVORS)]
        n_other = 0 if flavor == "crowded" else int(rng.integers(0, 3))
        other_ids = sorted(int(c) for c in rng.choice(np.arange(2, 100), n_other, replace=False))
        self.n_kp = {PERSON: 17}
        self.sigmas: dict[int, np.ndarray] = {}
        for c in other_ids:
            self.n_kp[c] = int(rng.choice([1, 2, 4, 5, 9, 17, 21]))
            self.sigmas[c] = rng.uniform(0.02, 0.15, self.n_kp[c])
        self.categories = sorted(self.n_kp)
        self.with_bbox = bool(rng.random() < 0.4)  # results carry a box (pycocotools: area)
        n_img = int(rng.integers(1, 7))
        image_ids = sorted(int(i) for i in rng.choice(10_000, n_img, replace=False))
        round_to = 1 if flavor in ("mixed", "crowded") else 3
        anns: list[dict[str, Any]] = []
        res: list[dict[str, Any]] = []

        def coord(v: float) -> float | int:
            return int(round(v)) if flavor == "integers" else float(v)

        def score() -> float:
            return 0.5 if flavor == "sizes" and rng.random() < 0.5 else float(
                np.round(rng.random(), round_to))

        def result(img: int, cat: int, pts: np.ndarray) -> None:
            flat = np.column_stack([pts, rng.choice([0, 1, 2, 0.5, 7], len(pts))])
            r: dict[str, Any] = {"image_id": img, "category_id": cat,
                                 "keypoints": [float(v) for v in flat.reshape(-1)],
                                 "score": score()}
            if self.with_bbox:
                x0, y0 = pts.min(axis=0) - rng.uniform(0, 20, 2)
                x1, y1 = pts.max(axis=0) + rng.uniform(0, 20, 2)
                r["bbox"] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            res.append(r)

        for img in image_ids:
            empty = flavor == "sparse" and rng.random() < 0.4 or rng.random() < 0.1
            n_obj = 0 if empty else int(rng.integers(1, 12 if flavor != "crowded" else 6))
            for _ in range(n_obj):
                cat = self.categories[int(rng.integers(len(self.categories)))]
                k = self.n_kp[cat]
                if flavor == "sizes":
                    w, h = np.exp(rng.uniform(np.log(0.5), np.log(1e6), 2))
                else:
                    w, h = rng.uniform(8, 260, 2)
                x, y = rng.uniform(-20, 600, 2)
                bbox = [coord(x), coord(y), coord(w), coord(h)]
                area = 0.0 if rng.random() < 0.03 else float(w * h * rng.uniform(0.3, 1.0))
                if flavor == "integers":
                    area = int(round(area))
                crowd = bool(rng.random() < {"mixed": 0.08, "unlabelled": 0.15}.get(flavor, 0.03))
                pts = np.column_stack([x + rng.random(k) * w, y + rng.random(k) * h])
                p_vis = 0.6 if flavor != "unlabelled" else 0.25
                v = np.where(rng.random(k) < p_vis, rng.choice([1, 2], k), 0)
                if flavor == "unlabelled" and rng.random() < 0.4 or crowd and rng.random() < 0.7:
                    v[:] = 0
                kp = np.column_stack([pts, v]).astype(object)
                if rng.random() < 0.3:
                    kp[v == 0, :2] = 0  # COCO zeroes unlabelled points; often, not always
                kp[:, 0] = [coord(c) for c in kp[:, 0]]
                kp[:, 1] = [coord(c) for c in kp[:, 1]]
                kp[:, 2] = [int(c) for c in kp[:, 2]]
                num = int(np.count_nonzero(v > 0))
                if rng.random() < 0.05:
                    num = 0 if num else int(rng.integers(1, 4))  # a stale field
                anns.append({
                    "id": len(anns) + 1, "image_id": img, "category_id": cat, "bbox": bbox,
                    "area": area, "iscrowd": int(crowd), "keypoints": kp.reshape(-1).tolist(),
                    "num_keypoints": num,
                })
                if flavor == "sparse" and rng.random() < 0.5:
                    continue
                n_det = int(rng.integers(21, 45)) if flavor == "crowded" else int(
                    rng.integers(0, 4 if not crowd else 6))
                for _ in range(n_det):
                    d_cat = cat if rng.random() < 0.85 else self.categories[
                        int(rng.integers(len(self.categories)))]
                    scale = float(rng.choice([0.02, 0.06, 0.2])) * np.sqrt(max(area, 1.0))
                    if d_cat == cat:
                        d_pts = pts + rng.normal(0, scale, pts.shape)
                    else:
                        d_pts = np.column_stack([x + rng.random(self.n_kp[d_cat]) * w,
                                                 y + rng.random(self.n_kp[d_cat]) * h])
                    result(img, d_cat, d_pts)
            for _ in range(int(rng.integers(0, 4))):
                cat = self.categories[int(rng.integers(len(self.categories)))]
                result(img, cat, rng.uniform(-20, 640, (self.n_kp[cat], 2)))
            if rng.random() < 0.2:
                # A category the ground truth does not list, with no sigmas anywhere.
                result(img, 999, rng.uniform(0, 640, (4, 2)))
        if not res:
            result(image_ids[0], PERSON, rng.uniform(0, 640, (17, 2)))
        order = rng.permutation(len(res))
        self.results = [res[i] for i in order]
        self.dataset = {
            "images": [{"id": i, "width": 640, "height": 480} for i in image_ids],
            "categories": [{"id": c, "name": f"c{c}"} for c in self.categories],
            "annotations": anns,
        }

    def columns(self) -> tuple[GroundTruth, Detections, list[Any], list[Any], np.ndarray]:
        """``(gt, dt, gt_keypoints, dt_keypoints, num_keypoints)`` as loadRes would see them."""
        anns, res = self.dataset["annotations"], self.results
        n = len(anns)
        gt = GroundTruth(
            np.array([a["image_id"] for a in anns], dtype=np.int64),
            np.array([a["category_id"] for a in anns], dtype=np.int64),
            np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(n, 4),
            area=np.array([a["area"] for a in anns], dtype=np.float64),
            iscrowd=np.array([a["iscrowd"] for a in anns], dtype=bool),
            id=np.array([a["id"] for a in anns], dtype=np.int64),
        )
        dt_kp = [r["keypoints"] for r in res]
        bbox = (np.array([r["bbox"] for r in res], dtype=np.float64) if self.with_bbox
                else keypoint_boxes(dt_kp))
        dt = Detections(
            np.array([r["image_id"] for r in res], dtype=np.int64),
            np.array([r["category_id"] for r in res], dtype=np.int64),
            bbox,
            np.array([r["score"] for r in res], dtype=np.float64),
            id=np.arange(1, len(res) + 1, dtype=np.int64),
        )
        num = np.array([a["num_keypoints"] for a in anns], dtype=np.int64)
        return gt, dt, [a["keypoints"] for a in anns], dt_kp, num


def run_pycocotools_keypoints(case: KeypointCase, cat: int, *, evaluate_only: bool = False
                              ) -> COCOeval:
    """``COCOeval(iouType="keypoints")`` on one category with its sigmas, prints silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(case.dataset)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(case.results))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.catIds = [cat]
        if cat in case.sigmas:  # else pycocotools' own person sigmas
            ev.params.kpt_oks_sigmas = case.sigmas[cat]
        ev.evaluate()
        if not evaluate_only:
            ev.accumulate()
            ev.summarize()
    return ev


def summarize_merged(runs: list[COCOeval]) -> np.ndarray:
    """pycocotools' own ``summarize`` over per-category runs joined on the category axis."""
    ev = runs[0]
    ev.eval = {
        "precision": np.concatenate([r.eval["precision"] for r in runs], axis=2),
        "recall": np.concatenate([r.eval["recall"] for r in runs], axis=1),
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    return ev.stats
