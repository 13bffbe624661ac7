"""Benchmark Ocula's COCO evaluation against pycocotools and faster-coco-eval.

Builds a seeded synthetic COCO-style detection set, evaluates it with all three
engines, checks that the 12 summary numbers agree, and prints times and ratios. Then does
the same at a larger scale to show how the cost grows.

    python benchmarks/eval.py                 # 1x (5,000 images) then 4x
    python benchmarks/eval.py --quick         # 1x only
    python benchmarks/eval.py --scale 2 --scale 8 --no-pycocotools

The synthetic set at scale 1: 5,000 images of 640×480, ~35k ground-truth boxes of
8–300 px over 80 classes (1% crowd), ~100k predictions: 85% of objects are detected with
jittered boxes (10% of those with a wrong class), the rest are random boxes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ocula.core.evaluation import (  # noqa: E402
    STAT_NAMES,
    detections_from_coco,
    evaluate_coco,
    ground_truth_from_coco,
)

WIDTH, HEIGHT = 640, 480
N_CLASSES = 80


def synthetic_coco(
    n_images: int, seed: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO instances dict and a COCO results list (see the module docstring)."""
    rng = np.random.default_rng(seed)
    per_image = rng.poisson(7, n_images)
    n_gt = int(per_image.sum())
    image_of = np.repeat(np.arange(1, n_images + 1), per_image)
    size = np.exp(rng.uniform(np.log(8), np.log(300), (n_gt, 2)))
    w = np.minimum(size[:, 0], WIDTH - 1)
    h = np.minimum(size[:, 1], HEIGHT - 1)
    x = rng.uniform(0, WIDTH - w)
    y = rng.uniform(0, HEIGHT - h)
    cls = rng.integers(1, N_CLASSES + 1, n_gt)
    crowd = rng.random(n_gt) < 0.01
    gt_box = np.stack([x, y, w, h], axis=1).round(2)

    # Detections of real objects: jitter proportional to size, 10% with a wrong class.
    found = rng.random(n_gt) < 0.85
    fb = gt_box[found]
    jitter = rng.normal(0, 0.08, (len(fb), 4)) * np.concatenate([fb[:, 2:], fb[:, 2:]], axis=1)
    det_box = fb + jitter
    det_box[:, 2:] = np.maximum(det_box[:, 2:], 1.0)
    det_cls = cls[found].copy()
    wrong = rng.random(len(det_cls)) < 0.10
    det_cls[wrong] = rng.integers(1, N_CLASSES + 1, int(wrong.sum()))
    det_img = image_of[found]
    det_score = np.clip(rng.beta(5, 2, len(det_box)), 0.001, 1)

    # Random boxes fill up to ~100k predictions per 5,000 images.
    n_rand = max(int(100_000 * n_images / 5000) - len(det_box), 0)
    rs = np.exp(rng.uniform(np.log(8), np.log(300), (n_rand, 2)))
    rw, rh = np.minimum(rs[:, 0], WIDTH - 1), np.minimum(rs[:, 1], HEIGHT - 1)
    rand_box = np.stack(
        [rng.uniform(0, WIDTH - rw), rng.uniform(0, HEIGHT - rh), rw, rh], axis=1
    )
    det_box = np.concatenate([det_box, rand_box]).round(2)
    det_cls = np.concatenate([det_cls, rng.integers(1, N_CLASSES + 1, n_rand)])
    det_img = np.concatenate([det_img, rng.integers(1, n_images + 1, n_rand)])
    # Rounded scores create ties, which the engines must break the same way.
    det_score = np.concatenate([det_score, np.clip(rng.beta(2, 5, n_rand), 0.001, 1)]).round(3)
    shuffle = rng.permutation(len(det_box))

    dataset = {
        "images": [
            {"id": i, "width": WIDTH, "height": HEIGHT, "file_name": f"{i}.jpg"}
            for i in range(1, n_images + 1)
        ],
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, N_CLASSES + 1)],
        "annotations": [
            {
                "id": i + 1,
                "image_id": int(image_of[i]),
                "category_id": int(cls[i]),
                "bbox": gt_box[i].tolist(),
                "area": float(gt_box[i, 2] * gt_box[i, 3]),
                "iscrowd": int(crowd[i]),
            }
            for i in range(n_gt)
        ],
    }
    results = [
        {
            "image_id": int(det_img[i]),
            "category_id": int(det_cls[i]),
            "bbox": det_box[i].tolist(),
            "score": float(det_score[i]),
        }
        for i in shuffle
    ]
    return dataset, results


@dataclass(frozen=True)
class Timing:
    """Wall-clock and process CPU seconds (CPU includes every thread of the process)."""

    wall: float
    cpu: float


def _timed(fn: Callable[[], Any]) -> tuple[Any, Timing]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def _best(timings: list[Timing]) -> Timing:
    return Timing(min(t.wall for t in timings), min(t.cpu for t in timings))


def run_pycocotools(
    dataset: dict[str, Any], results: list[dict[str, Any]]
) -> tuple[np.ndarray, Timing]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))

        def go() -> np.ndarray:
            ev = COCOeval(gt, dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            return np.asarray(ev.stats)

        return _timed(go)


def run_faster(
    dataset: dict[str, Any], results: list[dict[str, Any]]
) -> tuple[np.ndarray, Timing]:
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*_: Any, **__: Any) -> None:
        return None

    gt = COCO(copy.deepcopy(dataset), print_function=quiet)
    dt = gt.loadRes(copy.deepcopy(results))

    def go() -> np.ndarray:
        ev = COCOeval_faster(gt, dt, "bbox", print_function=quiet)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return np.asarray(ev.stats[:12])

    return _timed(go)


def run_ocula(
    dataset: dict[str, Any], results: list[dict[str, Any]]
) -> tuple[np.ndarray, Timing, Timing]:
    loaded, load_t = _timed(
        lambda: (ground_truth_from_coco(dataset), detections_from_coco(results))
    )
    (gt, categories), dt = loaded
    ev, eval_t = _timed(lambda: evaluate_coco(gt, dt, categories=categories))
    return ev.stats, eval_t, load_t


def bench(scale: float, *, pycocotools: bool, repeat: int) -> dict[str, Timing]:
    n_images = int(round(5000 * scale))
    dataset, results = synthetic_coco(n_images, seed=0)
    print(
        f"\n== scale {scale:g}: {n_images} images, {len(dataset['annotations'])} gt boxes, "
        f"{len(results)} predictions, {N_CLASSES} classes"
    )
    times: dict[str, Timing] = {}
    stats: dict[str, np.ndarray] = {}
    if pycocotools:
        stats["pycocotools"], times["pycocotools"] = run_pycocotools(dataset, results)
    # Interleave the fast engines so that background load hits both alike.
    fast, ours = [], []
    for _ in range(repeat):
        fast.append(run_faster(dataset, results))
        ours.append(run_ocula(dataset, results))
    stats["faster-coco-eval"], times["faster-coco-eval"] = fast[0][0], _best([t for _, t in fast])
    stats["ocula"] = ours[0][0]
    times["ocula"] = _best([r[1] for r in ours])
    times["ocula load (json->columns)"] = _best([r[2] for r in ours])

    print(f"{'stat':<6}" + "".join(f"{name:>18}" for name in stats))
    for i, name in enumerate(STAT_NAMES):
        print(f"{name:<6}" + "".join(f"{s[i]:>18.12f}" for s in stats.values()))
    for name, s in stats.items():
        if name != "ocula":
            print(f"max |ocula - {name}| = {float(np.max(np.abs(s - stats['ocula']))):.3g}")
    if "pycocotools" in stats:
        assert np.allclose(stats["ocula"], stats["pycocotools"], rtol=0, atol=1e-12)
    # faster-coco-eval is not bit-exact with pycocotools in general; allow a small drift.
    assert np.allclose(stats["ocula"], stats["faster-coco-eval"], rtol=0, atol=1e-6)

    print(f"\nevaluate + accumulate + summarize (fast engines: best of {repeat}):")
    print(f"  {'':<28}{'wall s':>9}{'cpu s':>9}")
    for name, t in times.items():
        print(f"  {name:<28}{t.wall:9.3f}{t.cpu:9.3f}")
    fe, oc = times["faster-coco-eval"], times["ocula"]
    load = times["ocula load (json->columns)"]
    print(f"  {'ocula / faster-coco-eval':<28}{oc.wall / fe.wall:9.3f}{oc.cpu / fe.cpu:9.3f}")
    print(f"  {'(ocula + load) / faster':<28}{(oc.wall + load.wall) / fe.wall:9.3f}"
          f"{(oc.cpu + load.cpu) / fe.cpu:9.3f}")
    if "pycocotools" in times:
        pc = times["pycocotools"]
        print(f"  {'ocula / pycocotools':<28}{oc.wall / pc.wall:9.4f}{oc.cpu / pc.cpu:9.4f}")
        print(f"  {'faster / pycocotools':<28}{fe.wall / pc.wall:9.4f}{fe.cpu / pc.cpu:9.4f}")
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append",
                        help="dataset scale(s), 1 = 5,000 images (default: 1 and 4)")
    parser.add_argument("--quick", action="store_true", help="scale 1 only")
    parser.add_argument("--no-pycocotools", action="store_true", help="skip the slow reference")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast engines")
    args = parser.parse_args(argv)
    scales = args.scale or ([1.0] if args.quick else [1.0, 4.0])
    all_times = {s: bench(s, pycocotools=not args.no_pycocotools, repeat=args.repeat)
                 for s in scales}
    if len(scales) > 1:
        base = scales[0]
        print("\ngrowth of the time relative to the first scale (linear = the size ratio):")
        for s in scales[1:]:
            print(f"  scale {s:g} / {base:g} (size x{s / base:g}):")
            for name, t in all_times[s].items():
                b = all_times[base][name]
                print(f"    {name:<28}wall x{t.wall / b.wall:5.2f}   cpu x{t.cpu / b.cpu:5.2f}")


if __name__ == "__main__":
    main()
