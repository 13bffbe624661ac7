"""End-to-end ``ModelRun.commit()`` and ``metrics()`` time on the embedded store.

The synthetic COCO-style set of ``benchmarks/eval.py`` (5,000 images 640×480, ~35k
ground-truth boxes, ~100k predictions, 80 classes by default; issue 14 measures
``--images 100000``: 700k ground truth, 2M predictions) is loaded into a catalog with
real image files and two item slices (half and a tenth of the items). Timed:

- ``commit()``: read both sides, match them, write one match row per box and per item,
  and keep the run page's numbers (metrics, failure summary, TIDE) of the dataset and
  each slice (goal at 100k: <= 15 s);
- a re-commit with nothing changed, and one after a label fix on one item (only the
  items whose match rows change are written again);
- ``metrics()`` of the dataset and of a slice, read back from what the commit kept (the
  run page; goal <= 500 ms);
- ``metrics()`` at a numbered label version, scored from the rows, for the dataset and
  the tenth slice (goal <= 5 s).

It checks that the 12 numbers equal pycocotools' on the same data (the reference tool,
in the same run; ``--no-check`` skips it) and prints pycocotools' own time there, a
yardstick of the machine's speed beside the absolute goals.

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

        ds.create_slice("half", [str(i) for i in range(1, args.images // 2 + 1)])
        ds.create_slice("tenth", [str(i) for i in range(1, args.images // 10 + 1)])

        def timed(fn):  # noqa: ANN001, ANN202
            t0 = time.perf_counter()
            out = fn()
            return out, time.perf_counter() - t0

        summary, t_commit = timed(run.commit)
        recommit, t_recommit = timed(run.commit)
        assert recommit == summary
        metrics, t_kept = timed(run.metrics)
        _, t_kept_slice = timed(lambda: run.metrics(slice="half"))
        original = max(v["version"] for v in ds.versions())
        # A missing box added on one image, as a user fixing a label would.
        ds.annotate([BoxAnnotation(names[gt["categories"][0]["id"]], 5, 5, 40, 40,
                                   reference_id="1", annotation_id="fixed-1")])
        fixed, t_fixed = timed(run.commit)
        # The run scored on the labels before the fix (the tutorial's "original labels").
        version = original
        _, t_version = timed(lambda: run.metrics(annotation_version=version))
        _, t_version_slice = timed(lambda: run.metrics(slice="tenth",
                                                       annotation_version=version))

        def verdict(t: float, goal: float) -> str:
            return "PASS" if t <= goal else "MISS"
        print(f"backend: {client._backend.db.dialect}; {args.images} images, "
              f"{len(gt['annotations']):,} ground truth, {len(results):,} predictions, "
              f"2 item slices (loaded in {load:.1f} s)")
        print(f"commit():                 {t_commit:7.2f} s  goal <= 15 s at 100k images "
              f"[{verdict(t_commit, 15)}]  tp={summary['tp']:,} fp={summary['fp']:,} "
              f"fn={summary['fn']:,}")
        print(f"re-commit, unchanged:     {t_recommit:7.2f} s  (same result)")
        print(f"re-commit, one label fix: {t_fixed:7.2f} s  (fn {summary['fn']:,} -> "
              f"{fixed['fn']:,})")
        print(f"metrics() kept, dataset:  {t_kept * 1000:7.0f} ms goal <= 500 ms "
              f"[{verdict(t_kept, 0.5)}]")
        print(f"metrics() kept, slice:    {t_kept_slice * 1000:7.0f} ms goal <= 500 ms "
              f"[{verdict(t_kept_slice, 0.5)}]")
        print(f"metrics() at label version {version}, dataset: {t_version:7.2f} s  "
              f"goal <= 5 s [{verdict(t_version, 5)}]")
        print(f"metrics() at label version {version}, tenth slice: {t_version_slice:7.2f} s"
              f"  goal <= 5 s [{verdict(t_version_slice, 5)}]")
        if not args.no_check:
            ours = np.array(list(metrics["stats"].values()))
            ref, t_ref = timed(lambda: pycocotools_stats(gt, results))
            diff = float(np.max(np.abs(ours - ref)))
            print(f"AP={ours[0]:.4f} AP50={ours[1]:.4f}; max |ocula - pycocotools| over the "
                  f"12 numbers = {diff:.1e}")
            # The reference tool on the same data and machine: a yardstick for this
            # machine's speed (it only scores the dataset once; a commit also stores every
            # match row and keeps the run page's numbers of every slice).
            print(f"pycocotools evaluate + accumulate + summarize, same data: {t_ref:7.2f} s "
                  f"(commit() / pycocotools = {t_commit / t_ref:.2f})")
            assert diff == 0
        client.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
