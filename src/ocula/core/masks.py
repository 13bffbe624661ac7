"""Masks: COCO run-length encoding, the one home of every mask helper in Ocula.

Ocula stores masks as COCO *uncompressed* RLE (``{"size": [h, w], "counts": [...]}``,
column-major, starting with a run of zeros; see :func:`rle_encode`).
COCO files and detector outputs also use the *compressed* form, where ``counts`` is a
string. This module converts between the two and rasterises COCO polygons exactly like
pycocotools (a port of ``rleFrPoly`` from the COCO API's ``maskApi.c``), so a
multi-part polygon imported here has the same pixels and area as ``annToMask`` gives.

pycocotools is only a test dependency; everything here is pure Python + numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ocula.errors import GeometryError, ValidationError

__all__ = [
    "canonical_counts",
    "decode_counts_string",
    "encode_counts_string",
    "index_rles",
    "polygons_to_rle",
    "rle_area",
    "rle_bbox",
    "rle_decode",
    "rle_encode",
    "rle_union",
    "to_uncompressed",
]


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Encode a boolean H×W mask as COCO uncompressed RLE (column-major, zeros first)."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    flat = mask.reshape(-1, order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(h), int(w)], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode COCO uncompressed RLE back to a boolean H×W mask."""
    h, w = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValidationError(f"RLE counts sum to {flat.size}, expected {h}×{w}={h * w}")
    return flat.reshape((h, w), order="F")


def rle_bbox(rle: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The tight pixel box ``x, y, w, h`` of an uncompressed RLE (pycocotools'
    ``toBbox``), None for an empty mask. Read from the runs, without decoding: a run
    that crosses into the next column covers every row."""
    h = int(rle["size"][0])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    ends = np.cumsum(counts)
    starts = ends - counts
    fg = (np.arange(counts.size) % 2 == 1) & (counts > 0)
    first, last = starts[fg], ends[fg] - 1
    if first.size == 0 or h == 0:
        return None
    crosses = bool(np.any(first // h != last // h))
    x0, x1 = int(first.min()) // h, int(last.max()) // h
    y0 = 0 if crosses else int((first % h).min())
    y1 = h - 1 if crosses else int((last % h).max())
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def index_rles(index: np.ndarray, values: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The uncompressed RLE of ``index == v`` for each of ``values``, from one pass over
    the array (what :func:`rle_encode` gives each, without a full pass per value)."""
    h, w = index.shape
    flat = np.ascontiguousarray(index.T).reshape(-1)
    n = flat.size
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    run_values = flat[starts] if n else flat[:0]
    out: dict[int, dict[str, Any]] = {}
    for v in values:
        pick = run_values == v
        # Runs are maximal, so two runs of one value never touch: the bounds alternate.
        bounds = np.empty(2 * int(pick.sum()) + 2, dtype=np.int64)
        bounds[0], bounds[-1] = 0, n
        bounds[1:-1:2], bounds[2:-1:2] = starts[pick], ends[pick]
        counts = np.diff(bounds).tolist()
        if len(counts) > 1 and counts[-1] == 0:
            counts.pop()
        out[v] = {"size": [int(h), int(w)], "counts": [int(c) for c in counts]}
    return out


def decode_counts_string(counts: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string into uncompressed run lengths.

    The format (``rleFrString`` in the COCO API) stores each count as a little-endian
    sequence of 5-bit groups, each written as ``chr(48 + group)`` with bit 6 (0x20)
    meaning "more groups follow" and bit 5 (0x10) of the last group being the sign.
    From the fourth count on, the stored value is the difference to the count two
    places before.
    """
    text = counts.decode("ascii") if isinstance(counts, bytes) else counts
    out: list[int] = []
    pos, n = 0, len(text)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise GeometryError("truncated compressed RLE string")
            c = ord(text[pos]) - 48
            if c < 0 or c > 63:
                raise GeometryError(f"invalid character {text[pos]!r} in compressed RLE")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    if any(c < 0 for c in out):
        raise GeometryError("compressed RLE string decodes to a negative run length")
    return out


def encode_counts_string(counts: Sequence[int]) -> str:
    """Encode uncompressed run lengths as COCO's compressed RLE string (``rleToString``)."""
    chars: list[str] = []
    for i, count in enumerate(counts):
        x = int(count)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def to_uncompressed(rle: Any, *, height: int | None = None, width: int | None = None
                    ) -> dict[str, Any]:
    """Return ``rle`` (compressed or not) as an uncompressed RLE dict, validated.

    ``height``/``width`` default to ``rle["size"]``; when ``size`` is missing they must
    be given. Raises :class:`GeometryError` when the counts do not cover the image.
    """
    if not isinstance(rle, dict) or "counts" not in rle:
        raise GeometryError("RLE must be an object with 'counts' (and 'size')")
    size = rle.get("size")
    if size is None:
        if height is None or width is None:
            raise GeometryError("RLE has no 'size' and the image size is unknown")
        size = [height, width]
    if (not isinstance(size, list | tuple) or len(size) != 2
            or not all(isinstance(v, int) and v >= 0 for v in size)):
        raise GeometryError(f"RLE 'size' must be [height, width], got {size!r}")
    raw = rle["counts"]
    if isinstance(raw, str | bytes):
        counts = decode_counts_string(raw)
    elif isinstance(raw, list) and all(isinstance(c, int) and c >= 0 for c in raw):
        counts = [int(c) for c in raw]
    else:
        raise GeometryError("RLE 'counts' must be a string or a list of non-negative ints")
    h, w = int(size[0]), int(size[1])
    if sum(counts) != h * w:
        raise GeometryError(f"RLE counts sum to {sum(counts)}, expected {h}x{w}={h * w}")
    return {"size": [h, w], "counts": canonical_counts(counts)}


def canonical_counts(counts: Sequence[int]) -> list[int]:
    """Normalise run lengths: drop empty runs so equal masks have equal counts.

    The result matches :func:`ocula.core.types.rle_encode`: it starts with a run of
    zeros (``0`` if the first pixel is set) and contains no other zero.
    """
    arr = np.asarray(counts, dtype=np.int64)
    values = np.arange(arr.size) % 2
    keep = arr > 0
    arr, values = arr[keep], values[keep]
    if arr.size == 0:
        return [0]
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    merged = np.add.reduceat(arr, starts).tolist()
    return [0, *merged] if values[0] == 1 else merged


def rle_area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of an uncompressed RLE."""
    return int(sum(rle["counts"][1::2]))


def _runs_to_rle(starts_ends: list[tuple[int, int]], h: int, w: int) -> dict[str, Any]:
    """Build RLE from sorted, non-overlapping ``[start, end)`` foreground intervals."""
    counts: list[int] = []
    pos = 0
    for start, end in starts_ends:
        if start < pos:  # merge touching/overlapping (caller sorts)
            start = pos
        if end <= start:
            continue
        if counts and start == pos:
            counts[-1] += end - start
        else:
            counts.extend([start - pos, end - start])
        pos = end
    counts.append(h * w - pos)
    return {"size": [h, w], "counts": canonical_counts(counts)}


def _intervals(rle: dict[str, Any]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for i, c in enumerate(rle["counts"]):
        if i % 2 and c:
            out.append((pos, pos + c))
        pos += c
    return out


def rle_union(rles: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Union of uncompressed RLEs of one size, without decoding to a bitmap."""
    if not rles:
        raise GeometryError("cannot merge an empty list of masks")
    h, w = rles[0]["size"]
    intervals = sorted(iv for r in rles for iv in _intervals(r))
    merged: list[tuple[int, int]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return _runs_to_rle(merged, h, w)


def _polygon_to_rle(xy: Sequence[float], h: int, w: int) -> dict[str, Any]:
    """Port of the COCO API's ``rleFrPoly``: one polygon ``[x0, y0, x1, y1, ...]``.

    The boundary is traced at 5x resolution, its crossings of pixel columns are
    downsampled, and the sorted crossings become run boundaries. Vectorised over all
    edges; the arithmetic follows the C code (``(int)(v + .5)`` truncates toward 0).
    """
    scale = 5.0
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    x = np.trunc(scale * pts[:, 0] + 0.5).astype(np.int64)
    y = np.trunc(scale * pts[:, 1] + 0.5).astype(np.int64)
    xs, xe = x, np.roll(x, -1)
    ys, ye = y, np.roll(y, -1)
    dx, dy = np.abs(xe - xs), np.abs(ys - ye)
    along_x = dx >= dy
    flip = (along_x & (xs > xe)) | (~along_x & (ys > ye))
    xs, xe = np.where(flip, xe, xs), np.where(flip, xs, xe)
    ys, ye = np.where(flip, ye, ys), np.where(flip, ys, ye)
    steps = np.where(along_x, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(along_x, (ye - ys) / np.maximum(dx, 1), (xe - xs) / np.maximum(dy, 1))
    n = steps + 1
    edge = np.repeat(np.arange(len(n)), n)
    d = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    t = np.where(flip[edge], steps[edge] - d, d)
    ax = along_x[edge]
    interp_y = np.trunc(ys[edge] + slope[edge] * t + 0.5).astype(np.int64)
    interp_x = np.trunc(xs[edge] + slope[edge] * t + 0.5).astype(np.int64)
    u = np.where(ax, t + xs[edge], interp_x)
    v = np.where(ax, interp_y, t + ys[edge])
    # Points where the boundary crosses a pixel column, downsampled.
    change = np.flatnonzero(u[1:] != u[:-1]) + 1
    uj, uprev = u[change], u[change - 1]
    vj, vprev = v[change], v[change - 1]
    xd = (np.where(uj < uprev, uj, uj - 1) + 0.5) / scale - 0.5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    yd = (np.where(vj < vprev, vj, vprev) + 0.5) / scale - 0.5
    yd = np.ceil(np.clip(yd, 0, h))
    a = np.sort(np.concatenate((xd[keep].astype(np.int64) * h + yd[keep].astype(np.int64),
                                [h * w])))
    # Each boundary toggles the pixel value; coinciding boundaries cancel out, which is
    # what the C code's folding of zero-length runs does.
    return {"size": [h, w], "counts": canonical_counts(np.diff(a, prepend=0).tolist())}


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int
                    ) -> dict[str, Any]:
    """Rasterise COCO polygons (``[[x0, y0, x1, y1, ...], ...]``) to one uncompressed RLE.

    Parts are merged by union, matching ``pycocotools.mask.frPyObjects`` + ``merge``.
    """
    for poly in polygons:
        if len(poly) < 6 or len(poly) % 2:
            raise GeometryError(
                f"a polygon needs an even number (>= 6) of coordinates, got {len(poly)}")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in poly):
            raise GeometryError("polygon coordinates must be finite numbers")
    parts = [_polygon_to_rle(p, int(height), int(width)) for p in polygons]
    return parts[0] if len(parts) == 1 else rle_union(parts)
