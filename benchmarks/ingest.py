"""Ingest throughput of the embedded client: items/s and boxes/s.

Synthetic data: N real small image files on disk (JPEG, generated once and cached),
then 10 boxes per item with metadata. Prints the figures; the goal on a 2-core machine
is >= 5,000 items/s and >= 150,000 boxes/s on embedded SQLite (FiftyOne publishes
~1,700 samples/s for its ingest).

    python benchmarks/ingest.py                 # 100k items, 1M boxes, SQLite
    python benchmarks/ingest.py --items 10000   # quicker
    python benchmarks/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

import ocula
from ocula import BoxAnnotation, DatasetItem

CACHE = Path(tempfile.gettempdir()) / "ocula-bench-images"


def make_images(n: int) -> list[Path]:
    CACHE.mkdir(exist_ok=True)
    paths = [CACHE / f"{i // 1000:03d}" / f"img_{i:06d}.jpg" for i in range(n)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"writing {len(missing)} image files to {CACHE} (cached for next runs)")
        base = Image.new("RGB", (96, 64))
        for p in missing:
            p.parent.mkdir(exist_ok=True)
            i = int(p.stem[4:])
            base.paste((i % 251, (i * 7) % 253, (i * 13) % 255), (0, 0, 96, 64))
            base.save(p, "JPEG", quality=70)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--boxes-per-item", type=int, default=10)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()

    paths = make_images(args.items)
    rng = random.Random(0)
    weather = ["sun", "rain", "snow", "fog"]
    items = [DatasetItem(str(p), f"img_{i:06d}", {"weather": weather[i % 4], "seq": i // 50,
                                                  "night": i % 3 == 0})
             for i, p in enumerate(paths)]
    boxes = []
    for i in range(args.items):
        ref = f"img_{i:06d}"
        for j in range(args.boxes_per_item):
            x, y = rng.uniform(0, 60), rng.uniform(0, 40)
            boxes.append(BoxAnnotation(
                "pedestrian" if j % 3 else "car", x, y, rng.uniform(1, 30), rng.uniform(1, 20),
                reference_id=ref, annotation_id=f"{ref}-{j}",
                metadata={"occluded": j % 4 == 0, "track": j}))

    home = Path(tempfile.mkdtemp(prefix="ocula-bench-"))
    try:
        client = ocula.Client(home=home, database_url=args.database_url)
        backend = client._backend.db.dialect
        for ds in client.datasets:
            if ds.name == "bench-ingest":
                client.delete_dataset(ds.id)
        ds = client.create_dataset("bench-ingest")

        t0 = time.perf_counter()
        res = ds.append(items, progress=False)
        t_items = time.perf_counter() - t0
        assert res["new_items"] == args.items, res

        t0 = time.perf_counter()
        res = ds.annotate(boxes, progress=False)
        t_boxes = time.perf_counter() - t0
        assert res["annotations_processed"] == len(boxes), res
        assert ds.info()["annotation_count"] == len(boxes)

        print(f"backend: {backend}")
        print(f"items:  {args.items:>9,} in {t_items:6.2f} s = {args.items / t_items:>9,.0f} "
              f"items/s  (goal >= 5,000; FiftyOne ~1,700 samples/s)")
        print(f"boxes:  {len(boxes):>9,} in {t_boxes:6.2f} s = {len(boxes) / t_boxes:>9,.0f} "
              f"boxes/s  (goal >= 150,000)")
        client.delete_dataset(ds.id)
        client.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
