"""Segmentations (index masks) on the embedded store: split on ``annotate``, rebuilt on
read.

Each item gets an index PNG with ``--segments`` segments (blobs of random rectangles);
the script times ``Dataset.annotate`` of all segmentations (read the PNGs, split each
into one mask per segment, encode RLE, write) and ``Dataset.segmentation_mask`` of
every item (read the masks, paint the index array back), and checks the round trip.

    python benchmarks/segmentations.py [--items 200] [--size 1024x768] [--segments 6]
                                       [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import ocula
from ocula import DatasetItem, Segment, SegmentationAnnotation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        items, segs, truth = [], [], []
        for i in range(args.items):
            Image.new("RGB", (w, h), (i % 255, 0, 0)).save(root / f"{i}.jpg")
            idx = np.zeros((h, w), np.uint8)
            for s in range(1, args.segments + 1):
                x, y = rng.integers(0, w - w // 4), rng.integers(0, h - h // 4)
                idx[y:y + h // 4, x:x + w // 4] = s
            Image.fromarray(idx).save(root / f"{i}.png")
            items.append(DatasetItem(str(root / f"{i}.jpg"), f"r{i}"))
            present = sorted(set(np.unique(idx).tolist()) - {0})
            segs.append(SegmentationAnnotation(str(root / f"{i}.png"),
                                               [Segment(f"class{s}", s) for s in present],
                                               reference_id=f"r{i}"))
            truth.append(np.where(np.isin(idx, present), idx, 0))
        client = ocula.Client(home=root / "home", database_url=args.database_url)
        ds = client.create_dataset("segmentations")
        ds.append(items, progress=False)
        start = time.perf_counter()
        ds.annotate(segs, progress=False)
        split = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(args.items):
            got = ds.segmentation_mask(f"r{i}")
            assert np.array_equal(got.index, truth[i]), i
        read = time.perf_counter() - start
        client.close()
    masks = sum(len(s.annotations) for s in segs)
    print(f"{args.items} segmentations of {w}x{h} ({masks} masks): annotate {split:.2f} s "
          f"({1000 * split / args.items:.1f} ms each), segmentation_mask "
          f"{read:.2f} s ({1000 * read / args.items:.1f} ms each)")


if __name__ == "__main__":
    main()
