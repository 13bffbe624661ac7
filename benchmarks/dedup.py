"""Deduplication speed: pHash throughput on JPEG files; a dataset's deduplication through
the embedded client, cold (every image hashed) and warm (hashes kept); and the
near-duplicate search on N 64-bit hashes by multi-index hashing against a brute-force
numpy scan of every pair, in the same run (both must find the same pairs; the script
says if they agree).

Hashes are synthetic: a fifth of them are copies of others with 1 to 6 bits flipped
(duplicates to find), the rest uniform (as distinct pictures' hashes are, roughly).

    python benchmarks/dedup.py                          # 100k hashes, t = 4, 8, 10, 12
    python benchmarks/dedup.py --hashes 20000 --thresholds 10 --images 50 --catalog 200
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import ocula
from ocula import DatasetItem
from ocula.core.dedup import DedupConfig, deduplicate, near_pairs, phash_file


def synthetic_hashes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    copies = rng.choice(n, n // 5, replace=False)
    sources = rng.integers(0, n, len(copies))
    h[copies] = h[sources]
    for k in range(6):
        bit = rng.integers(0, 64, len(copies)).astype(np.uint64)
        flip = rng.random(len(copies)) < (0.9 if k == 0 else 0.5)
        h[copies] = np.where(flip, h[copies] ^ (np.uint64(1) << bit), h[copies])
    return h


def jpeg_files(n: int, seed: int) -> list[bytes]:
    """``n`` distinct 640×480 JPEGs in memory."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(8):
            x, y = int(rng.integers(0, 600)), int(rng.integers(0, 440))
            draw.ellipse((x, y, x + int(rng.integers(20, 300)), y + int(rng.integers(20, 300))),
                         fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--thresholds", default="4,8,10,12")
    parser.add_argument("--images", type=int, default=200, help="JPEGs to hash")
    parser.add_argument("--catalog", type=int, default=1000,
                        help="JPEGs in the dataset deduplicated through the client")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-brute", action="store_true", help="skip the brute-force scan")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    files = jpeg_files(args.images, args.seed)
    secs, _ = timed(lambda: [phash_file(io.BytesIO(b), "bench") for b in files], args.repeat)
    print(f"pHash of {len(files)} 640x480 JPEGs (one thread): {secs:.2f} s, "
          f"{len(files) / secs:.0f} images/s")

    with tempfile.TemporaryDirectory() as tmp:
        folder = f"{tmp}/imgs"
        os.makedirs(folder)
        paths = []
        for i, data in enumerate(jpeg_files(args.catalog, args.seed + 1)):
            paths.append(f"{folder}/{i:06d}.jpg")
            with open(paths[-1], "wb") as out:
                out.write(data)
        with ocula.Client(home=f"{tmp}/home") as client:
            ds = client.create_dataset("bench")
            ds.append([DatasetItem(p, f"r{i:06d}") for i, p in enumerate(paths)])
            cold, first = timed(lambda: ds.deduplicate(10), 1)
            warm, again = timed(lambda: ds.deduplicate(10), max(1, args.repeat))
        print(f"Dataset.deduplicate() of {args.catalog} JPEGs: cold {cold:.2f} s "
              f"({first['stats']['hashed']} hashed), warm {warm:.3f} s "
              f"({again['stats']['hashed']} hashed)")

    h = synthetic_hashes(args.hashes, args.seed)
    keys = [f"r{i:07d}" for i in range(len(h))]
    print(f"\n{len(h):,} hashes ({len(h) // 5:,} near copies)")
    print(f"{'t':>3} {'pairs':>10} {'index':>9} {'brute force':>12} {'speed-up':>9}  "
          f"{'deduplicate()':>14} {'kept':>8}")
    for t in (int(x) for x in args.thresholds.split(",")):
        idx_s, idx = timed(lambda t=t: near_pairs(h, t, method="index"), args.repeat)
        if args.no_brute:
            brute, agree = "-", ""
            ratio = "-"
        else:
            scan_s, scan = timed(lambda t=t: near_pairs(h, t, method="scan"), 1)
            same = all(np.array_equal(a, b) for a, b in zip(idx, scan, strict=True))
            brute, ratio = f"{scan_s:.2f} s", f"{scan_s / idx_s:.1f}x"
            agree = " (agree)" if same else " (DIFFER)"
        dd_s, result = timed(lambda t=t: deduplicate(h, keys, DedupConfig(threshold=t)),
                             args.repeat)
        kept = int(result.kept.sum())
        print(f"{t:>3} {len(idx[0]):>10,} {idx_s:>7.2f} s {brute:>12} {ratio:>9}  "
              f"{dd_s:>12.2f} s {kept:>8,}{agree}")


if __name__ == "__main__":
    main()
