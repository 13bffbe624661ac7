"""End-to-end ``ModelRun.commit()`` and ``metrics()`` time on the embedded store.

The synthetic COCO-style set of ``benchmarks/eval.py`` (5,000 images 640×480, ~35k
ground-truth boxes, ~100k predictions, 80 classes) is loaded into a catalog with real
image files. The script then times ``commit()``, which reads both sides from the store,
matches them and writes one match row per box and per item. It also times
``metrics()`` and checks that its 12 numbers equal pycocotools' on the same data.
Goal: ``commit()`` ≤ 10 s on SQLite on a 2-core machine.

    python benchmarks/commit.py [--images 5000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from eval import HEIGHT, WIDTH, synthetic_coco  # noqa: E402

import ocula  # noqa: E402
from ocula import BoxAnnotation, BoxPrediction, DatasetItem  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "ocula-bench-640x480"


def image_files(n: int) -> list[Path]:
    CACHE.mkdir(exist_ok=True)
    template = CACHE / "template.jpg"
    if not template.exists():
        Image.new("RGB", (WIDTH, HEIGHT), (90, 120, 150)).save(template, quality=60)
    paths = [CACHE / f"{i}.jpg" for i in range(1, n + 1)]
    for p in paths:
        if not p.exists():
            shutil.copyfile(template, p)
    return paths


def clip(bbox: list[float]) -> list[float]:
    """Keep a jittered box inside the image, as a detector's output would be."""
    x, y, w, h = bbox
    x0, y0 = min(max(x, 0.0), WIDTH), min(max(y, 0.0), HEIGHT)
    x1, y1 = min(max(x + w, 0.0), WIDTH), min(max(y + h, 0.0), HEIGHT)
    return [x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)]


def pycocotools_stats(gt: dict, results: list[dict]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--no-check", action="store_true", help="skip the pycocotools check")
    args = ap.parse_args()

    gt, results = synthetic_coco(args.images)
    for r in results:
        r["bbox"] = clip(r["bbox"])
    names = {c["id"]: c["name"] for c in gt["categories"]}
    paths = image_files(args.images)
    home = Path(tempfile.mkdtemp(prefix="ocula-bench-commit-"))
    try:
        client = ocula.Client(home=home, database_url=args.database_url)
        for old in client.datasets:
            if old.name == "bench-commit":
                client.delete_dataset(old.id)
        # The categories kept as `ocula import coco` keeps them: classes are averaged in
        # category id order, as pycocotools averages them (bit-identical means).
        ds = client.create_dataset("bench-commit", metadata={"coco": {
            "categories": gt["categories"]}})
        t0 = time.perf_counter()
        ds.append([DatasetItem(str(paths[i - 1]), str(i)) for i in range(1, args.images + 1)])
        ds.annotate([BoxAnnotation(names[a["category_id"]], *a["bbox"],
                                   reference_id=str(a["image_id"]), annotation_id=str(a["id"]),
                                   iscrowd=bool(a["iscrowd"]), area=a["area"])
                     for a in gt["annotations"]])
        run = client.add_model("synthetic", "synthetic").create_run(
            "synthetic", ds, [BoxPrediction(names[r["category_id"]], *r["bbox"],
                                            reference_id=str(r["image_id"]),
                                            confidence=r["score"]) for r in results])
        load = time.perf_counter() - t0

        t0 = time.perf_counter()
        summary = run.commit()
        t_commit = time.perf_counter() - t0
        t0 = time.perf_counter()
        recommit = run.commit()
        t_recommit = time.perf_counter() - t0
        assert recommit == summary
        t0 = time.perf_counter()
        metrics = run.metrics()
        t_metrics = time.perf_counter() - t0

        print(f"backend: {client._backend.db.dialect}; {args.images} images, "
              f"{len(gt['annotations']):,} ground truth, {len(results):,} predictions "
              f"(loaded in {load:.1f} s)")
        print(f"commit():   {t_commit:6.2f} s  (goal <= 10 s)  tp={summary['tp']:,} "
              f"fp={summary['fp']:,} fn={summary['fn']:,}")
        print(f"re-commit:  {t_recommit:6.2f} s  (same result)")
        print(f"metrics():  {t_metrics:6.2f} s  (12 COCO numbers, per-class AP/AR, PR curves, "
              "F1, confusion matrix)")
        if not args.no_check:
            ours = np.array(list(metrics["stats"].values()))
            ref = pycocotools_stats(gt, results)
            diff = float(np.max(np.abs(ours - ref)))
            print(f"AP={ours[0]:.4f} AP50={ours[1]:.4f}; max |ocula - pycocotools| over the "
                  f"12 numbers = {diff:.1e}")
            assert diff == 0
        client.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
