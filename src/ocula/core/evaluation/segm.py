"""Mask IoU for COCO's ``segm`` protocol, computed on run-length encoding without bitmaps.

pycocotools' ``COCOeval(iouType="segm")`` scores a (detection, ground truth) pair by
``intersection / union`` of their pixels; against a crowd region the union is the
detection's own pixel count. :class:`MaskPairIoU` returns exactly those numbers (the
same integer counts divided once in float64) for many aligned pairs at once, as the
``pair_iou`` callback of :func:`~ocula.core.evaluation.evaluate_coco`,
:func:`~ocula.core.evaluation.match_detections` and
:func:`~ocula.core.evaluation.confusion_matrix`.

How it stays vectorised:

* every mask is kept as its foreground runs ``[start, end)`` in COCO's column-major
  pixel order (what RLE counts already are), and the masks of one :class:`MaskSet` sit
  one after another on a single line (mask ``k`` starts where mask ``k-1``'s ``h·w``
  pixels end);
* the number of foreground pixels of mask ``o`` before a pixel position is then one
  ``searchsorted`` over all run starts plus a cumulative sum, so the intersection of
  masks ``p`` and ``o`` is ``Σ count_o(end) - count_o(start)`` over the runs of ``p``:
  one numpy pass over all pairs (chunked to bound memory), never an ``H×W`` bitmap;
* only pairs whose tight pixel boxes overlap are intersected (others score 0, as in
  pycocotools, which also checks boxes first), and each pair is walked from the side
  with fewer runs.

Polygons are rasterised at their image's size with Ocula's port of pycocotools'
``rleFrPoly`` (:func:`ocula.core.masks.polygons_to_rle`), so polygon ground truth gives the
same pixels — and the same AP — as ``annToRLE`` in pycocotools.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from ocula.core.masks import decode_counts_string, polygons_to_rle
from ocula.errors import ValidationError

__all__ = ["MaskPairIoU", "MaskSet", "counts_from_geometry"]

# Probe runs handled per numpy pass when intersecting pairs (bounds temporary memory to
# a few tens of MB whatever the number of pairs).
_RUNS_PER_PASS = 1 << 21


def counts_from_geometry(kind: str, geometry: Any, height: int, width: int) -> list[int]:
    """Uncompressed RLE counts of a stored ``mask`` or ``polygon`` geometry.

    ``mask``: ``{"rle": {"size": [h, w], "counts": [...]}}`` (a compressed counts string is
    accepted too). ``polygon``: ``{"vertices": [{"x", "y"}, ...]}``, rasterised on a
    ``height × width`` grid exactly as pycocotools rasterises a COCO polygon.
    """
    if kind == "mask":
        rle = geometry.get("rle") if isinstance(geometry, dict) else None
        if not isinstance(rle, dict) or "counts" not in rle:
            raise ValidationError("a mask geometry must be {'rle': {'size', 'counts'}}")
        counts = rle["counts"]
        if isinstance(counts, str | bytes):
            return decode_counts_string(counts)
        return counts
    if kind == "polygon":
        verts = geometry.get("vertices") if isinstance(geometry, dict) else None
        flat = [float(c) for v in verts or () for c in (v["x"], v["y"])]
        if len(flat) < 6:
            # Fewer than three vertices enclose no pixel.
            return [int(height) * int(width)]
        return polygons_to_rle([flat], int(height), int(width))["counts"]
    raise ValidationError(f"no mask for geometry type {kind!r}; expected 'mask' or 'polygon'")


class MaskSet:
    """``N`` instance masks as foreground runs on one line (see the module docstring).

    Attributes (per mask): ``height``, ``width``, ``area`` (foreground pixels), ``offset``
    (where the mask starts on the line), ``first_run`` / ``n_runs`` (its runs), and the
    tight pixel box ``x0, x1, y0, y1`` (inclusive; meaningless when ``area == 0``).
    Per run: ``start`` / ``end`` on the line and ``before`` (foreground pixels of all
    earlier runs).
    """

    __slots__ = ("height", "width", "area", "offset", "first_run", "n_runs",
                 "x0", "x1", "y0", "y1", "start", "end", "before")

    def __init__(self, counts: Sequence[Sequence[int]], heights: npt.ArrayLike,
                 widths: npt.ArrayLike) -> None:
        n = len(counts)
        self.height = np.asarray(heights, dtype=np.int64).reshape(-1)
        self.width = np.asarray(widths, dtype=np.int64).reshape(-1)
        if len(self.height) != n or len(self.width) != n:
            raise ValidationError(f"{n} masks but {len(self.height)} heights and "
                                  f"{len(self.width)} widths")
        size = self.height * self.width
        lens = np.fromiter(map(len, counts), np.int64, n)
        flat = np.fromiter(chain.from_iterable(counts), np.int64, int(lens.sum()))
        if (flat < 0).any():
            raise ValidationError("RLE counts must not be negative")
        owner = np.repeat(np.arange(n, dtype=np.int64), lens)
        sums = np.bincount(owner, weights=flat, minlength=n) if n else np.zeros(0)
        bad = np.flatnonzero(sums != size)
        if len(bad):
            i = int(bad[0])
            raise ValidationError(f"mask {i}: RLE counts sum to {int(sums[i])}, expected "
                                  f"{self.height[i]}×{self.width[i]}={size[i]}")
        # Counts sum to h·w per mask, so one running sum places every run on the line.
        end = np.cumsum(flat)
        start = end - flat
        local = np.arange(len(flat), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
        ones = (local % 2 == 1) & (flat > 0)
        run_owner = owner[ones]
        self.start, self.end = start[ones], end[ones]
        length = self.end - self.start
        self.before = np.concatenate(([0], np.cumsum(length)))
        self.offset = np.cumsum(size) - size
        self.n_runs = np.bincount(run_owner, minlength=n).astype(np.int64)
        self.first_run = np.cumsum(self.n_runs) - self.n_runs
        self.area = np.bincount(run_owner, weights=length, minlength=n).astype(np.int64)
        # Tight pixel box from the runs (pycocotools' rleToBbox): a run crossing a column
        # boundary covers the last row of one column and the first row of the next.
        self.x0 = np.zeros(n, dtype=np.int64)
        self.x1 = np.full(n, -1, dtype=np.int64)
        self.y0 = np.zeros(n, dtype=np.int64)
        self.y1 = np.full(n, -1, dtype=np.int64)
        has = np.flatnonzero(self.n_runs > 0)
        if len(has):
            h = self.height[run_owner]
            s = self.start - self.offset[run_owner]
            last = self.end - 1 - self.offset[run_owner]
            c0, c1 = s // h, last // h
            one_col = c0 == c1
            r0 = np.where(one_col, s % h, 0)
            r1 = np.where(one_col, last % h, h - 1)
            first = self.first_run[has]
            self.x0[has] = c0[first]
            self.x1[has] = c1[first + self.n_runs[has] - 1]
            self.y0[has] = np.minimum.reduceat(r0, first)
            self.y1[has] = np.maximum.reduceat(r1, first)

    @classmethod
    def from_geometry(cls, kinds: Iterable[str], geometries: Iterable[Any],
                      heights: npt.ArrayLike, widths: npt.ArrayLike) -> MaskSet:
        """Masks from stored ``mask`` / ``polygon`` geometries; polygons are rasterised at
        the given (image) sizes, masks keep their own RLE size."""
        hs = np.asarray(heights, dtype=np.int64).reshape(-1)
        ws = np.asarray(widths, dtype=np.int64).reshape(-1)
        counts: list[Sequence[int]] = []
        mh, mw = hs.copy(), ws.copy()
        for i, (kind, geom) in enumerate(zip(kinds, geometries, strict=True)):
            counts.append(counts_from_geometry(kind, geom, int(hs[i]), int(ws[i])))
            if kind == "mask":
                mh[i], mw[i] = geom["rle"]["size"]
        return cls(counts, mh, mw)

    def __len__(self) -> int:
        return len(self.area)

    def _count_before(self, pos: np.ndarray) -> np.ndarray:
        """Foreground pixels on the line strictly before each position."""
        j = np.searchsorted(self.start, pos, side="right") - 1
        jj = np.maximum(j, 0)
        if len(self.start) == 0:
            return np.zeros(len(pos), dtype=np.int64)
        inside = np.clip(pos - self.start[jj], 0, self.end[jj] - self.start[jj])
        return np.where(j >= 0, self.before[jj] + inside, 0)


def _intersections(probe: MaskSet, p: np.ndarray, other: MaskSet, o: np.ndarray
                   ) -> np.ndarray:
    """Pixels shared by masks ``probe[p[i]]`` and ``other[o[i]]`` (same size), walking
    the runs of the probe masks."""
    out = np.zeros(len(p), dtype=np.int64)
    n = probe.n_runs[p]
    csum = np.cumsum(n)
    a = 0
    while a < len(p):
        base = int(csum[a - 1]) if a else 0
        b = max(a + 1, int(np.searchsorted(csum, base + _RUNS_PER_PASS, side="right")))
        nn = n[a:b]
        total = int(nn.sum())
        pair = np.repeat(np.arange(b - a, dtype=np.int64), nn)
        run = (np.repeat(probe.first_run[p[a:b]], nn) + np.arange(total, dtype=np.int64)
               - np.repeat(np.cumsum(nn) - nn, nn))
        shift = (other.offset[o[a:b]] - probe.offset[p[a:b]])[pair]
        hit = (other._count_before(probe.end[run] + shift)
               - other._count_before(probe.start[run] + shift))
        out[a:b] = np.bincount(pair, weights=hit, minlength=b - a).astype(np.int64)
        a = b
    return out


class MaskPairIoU:
    """``pair_iou(dt_rows, gt_rows)`` on masks, equal to pycocotools' ``maskUtils.iou``.

    Args:
        dt: detection masks, aligned with the detection rows.
        gt: ground-truth masks, aligned with the ground-truth rows.
        iscrowd: ``(len(gt),)`` crowd flags; against a crowd region IoU is intersection
            over the detection's pixel count.

    Pairs already computed are remembered, so metrics that match the same pairs several
    times (COCO AP, the operating point, the confusion matrix) intersect each pair once.
    Masks of different sizes, and empty masks, score 0.
    """

    def __init__(self, dt: MaskSet, gt: MaskSet, iscrowd: npt.ArrayLike | None = None) -> None:
        self.dt, self.gt = dt, gt
        self.iscrowd = (np.zeros(len(gt), dtype=bool) if iscrowd is None
                        else np.asarray(iscrowd, dtype=bool).reshape(-1))
        if len(self.iscrowd) != len(gt):
            raise ValidationError(f"{len(gt)} ground-truth masks but {len(self.iscrowd)} "
                                  "crowd flags")
        # Sorted pair keys and their IoUs, replaced as one tuple: a commit asks from two
        # threads at once, and each must see keys and values of the same state.
        self._cache = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    def compute(self, d: np.ndarray, g: np.ndarray) -> np.ndarray:
        """IoU of aligned pairs, without the cache."""
        dt, gt = self.dt, self.gt
        d = np.asarray(d, dtype=np.int64)
        g = np.asarray(g, dtype=np.int64)
        out = np.zeros(len(d), dtype=np.float64)
        cand = np.flatnonzero(
            (dt.area[d] > 0) & (gt.area[g] > 0)
            & (dt.height[d] == gt.height[g]) & (dt.width[d] == gt.width[g])
            & (dt.x0[d] <= gt.x1[g]) & (gt.x0[g] <= dt.x1[d])
            & (dt.y0[d] <= gt.y1[g]) & (gt.y0[g] <= dt.y1[d]))
        if len(cand) == 0:
            return out
        cd, cg = d[cand], g[cand]
        inter = np.zeros(len(cand), dtype=np.int64)
        from_dt = dt.n_runs[cd] <= gt.n_runs[cg]
        if from_dt.any():
            inter[from_dt] = _intersections(dt, cd[from_dt], gt, cg[from_dt])
        if (~from_dt).any():
            inter[~from_dt] = _intersections(gt, cg[~from_dt], dt, cd[~from_dt])
        d_area = dt.area[cd]
        union = np.where(self.iscrowd[cg], d_area, d_area + gt.area[cg] - inter)
        iou = np.zeros(len(cand), dtype=np.float64)
        np.divide(inter.astype(np.float64), union.astype(np.float64), out=iou,
                  where=inter > 0)
        out[cand] = iou
        return out

    def __call__(self, d_rows: np.ndarray, g_rows: np.ndarray) -> np.ndarray:
        d = np.asarray(d_rows, dtype=np.int64).reshape(-1)
        g = np.asarray(g_rows, dtype=np.int64).reshape(-1)
        key = d * max(len(self.gt), 1) + g
        out = np.empty(len(key), dtype=np.float64)
        hit = np.zeros(len(key), dtype=bool)
        known, known_values = self._cache
        if len(known):
            pos = np.minimum(np.searchsorted(known, key), len(known) - 1)
            hit = known[pos] == key
            out[hit] = known_values[pos[hit]]
        if not hit.all():
            new, inverse = np.unique(key[~hit], return_inverse=True)
            n_gt = max(len(self.gt), 1)
            values = self.compute(new // n_gt, new % n_gt)
            out[~hit] = values[inverse]
            # Merged with whatever another thread added meanwhile (a pair computed by
            # both is kept once: the same IoU).
            known, known_values = self._cache
            keys, at = np.unique(np.concatenate([known, new]), return_index=True)
            self._cache = (keys, np.concatenate([known_values, values])[at])
        return out
