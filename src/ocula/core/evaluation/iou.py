"""Vectorised intersection-over-union for boxes, instance masks and polygons.

Box IoU reproduces pycocotools' ``bbIou`` operation for operation, so results are
bit-identical to ``pycocotools.mask.iou`` on ``xywh`` boxes. That matters because the COCO
matcher compares IoUs against thresholds with ``>=`` and breaks ties on equality: a
one-ulp difference could change a match.

Crowd ground truth follows COCO: for a crowd region the "union" is the detection's own
area, so IoU becomes ``intersection / detection area`` (a detection lying fully inside a
crowd region scores 1 however large the region is).

Masks may be boolean ``H×W`` arrays or COCO RLE dicts ``{"size": [h, w], "counts": ...}``
with counts either as the uncompressed list of run lengths (Ocula's stored form, see
:func:`ocula.core.masks.rle_encode`) or as COCO's compressed string. Polygons are
rasterised exactly as pycocotools rasterises them (:mod:`ocula.core.masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ocula.core.masks import decode_counts_string, polygons_to_rle, rle_decode
from ocula.errors import ValidationError

__all__ = [
    "BoxPairIoU",
    "box_edges",
    "box_iou",
    "box_iou_pairs",
    "decode_mask",
    "mask_iou",
    "polygon_iou",
    "polygon_to_mask",
    "rle_counts_from_string",
]

# Pixels per block when intersecting masks with a float32 matrix product: each block's
# partial sums stay below 2**24, where float32 still represents every integer exactly.
_MASK_BLOCK = 1 << 22


def _as_boxes(boxes: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValidationError(f"{name} must have shape (N, 4) in xywh, got {arr.shape}")
    return arr


def box_iou_pairs(
    dt: npt.ArrayLike, gt: npt.ArrayLike, iscrowd: npt.ArrayLike | None = None
) -> np.ndarray:
    """IoU of aligned pairs: row ``i`` of ``dt`` against row ``i`` of ``gt``.

    Args:
        dt: ``(P, 4)`` detection boxes, ``x, y, width, height``.
        gt: ``(P, 4)`` ground-truth boxes, same layout.
        iscrowd: optional ``(P,)`` flags; where true the union is the detection's area.

    Returns:
        ``(P,)`` float64 IoUs, bit-identical to pycocotools.
    """
    d = _as_boxes(dt, "dt")
    g = _as_boxes(gt, "gt")
    if d.shape != g.shape:
        raise ValidationError(f"dt and gt must be aligned, got {d.shape} and {g.shape}")
    dx, dy, dw, dh = d[:, 0], d[:, 1], d[:, 2], d[:, 3]
    gx, gy, gw, gh = g[:, 0], g[:, 1], g[:, 2], g[:, 3]
    # Same operand order as maskApi.c bbIou so every rounding step matches.
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    da = dw * dh
    union = da + (gw * gh) - inter
    if iscrowd is not None:
        crowd = np.asarray(iscrowd, dtype=bool)
        union = np.where(crowd, da, union)
    out = np.zeros(len(d), dtype=np.float64)
    ok = (w > 0) & (h > 0)
    np.divide(inter, union, out=out, where=ok)
    return out


def box_edges(boxes: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """``(x, y, x + w, y + h, w·h)`` columns of ``xywh`` boxes: the sums and product
    maskApi.c's bbIou forms per pair, formed once per box."""
    b = _as_boxes(boxes, "boxes")
    x, y, w, h = (np.ascontiguousarray(b[:, k]) for k in range(4))
    return x, y, w + x, h + y, w * h


class BoxPairIoU:
    """``pair_iou(d, g)``: box IoU of detection rows ``d`` against ground-truth rows
    ``g`` (aligned index arrays), bit-identical to :func:`box_iou_pairs` on the gathered
    boxes. Each box's edges and area are computed once; a pair then gathers single
    values from those short columns instead of whole box rows (14M pairs of 2M
    detections and 700k boxes: 0.4 s against 4.6 s)."""

    def __init__(self, dt_boxes: npt.ArrayLike, gt_boxes: npt.ArrayLike,
                 gt_crowd: npt.ArrayLike | None = None) -> None:
        self.dt = box_edges(_as_boxes(dt_boxes, "dt"))
        self.gt = box_edges(_as_boxes(gt_boxes, "gt"))
        n = len(self.gt[0])
        self.crowd = (np.zeros(n, dtype=bool) if gt_crowd is None
                      else np.asarray(gt_crowd, dtype=bool))

    def __call__(self, d: np.ndarray, g: np.ndarray) -> np.ndarray:
        dx, dy, dx2, dy2, da = self.dt
        gx, gy, gx2, gy2, ga = self.gt
        w = np.minimum(dx2[d], gx2[g])
        w -= np.maximum(dx[d], gx[g])
        h = np.minimum(dy2[d], gy2[g])
        h -= np.maximum(dy[d], gy[g])
        inter = w * h
        d_area = da[d]
        union = d_area + ga[g]
        union -= inter
        union = np.where(self.crowd[g], d_area, union)
        out = np.zeros(len(inter), dtype=np.float64)
        np.divide(inter, union, out=out, where=(w > 0) & (h > 0))
        return out


def box_iou(
    dt: npt.ArrayLike, gt: npt.ArrayLike, iscrowd: npt.ArrayLike | None = None
) -> np.ndarray:
    """All-pairs IoU between ``N`` detections and ``M`` ground-truth boxes (xywh).

    Args:
        dt: ``(N, 4)`` detection boxes.
        gt: ``(M, 4)`` ground-truth boxes.
        iscrowd: optional ``(M,)`` crowd flags of the ground truth.

    Returns:
        ``(N, M)`` float64 matrix, equal to ``pycocotools.mask.iou(dt, gt, iscrowd)``.
    """
    d = _as_boxes(dt, "dt")
    g = _as_boxes(gt, "gt")
    n, m = len(d), len(g)
    di = np.repeat(np.arange(n), m)
    gi = np.tile(np.arange(m), n)
    crowd = None
    if iscrowd is not None:
        crowd = np.asarray(iscrowd, dtype=bool).reshape(-1)[gi] if m else np.zeros(0, bool)
    return box_iou_pairs(d[di], g[gi], crowd).reshape(n, m)


# --- masks ----------------------------------------------------------------------------


#: Decode COCO's compressed RLE counts string (kept under its old name).
rle_counts_from_string = decode_counts_string


def decode_mask(mask: Any) -> np.ndarray:
    """Return a boolean ``H×W`` array for a mask given as an array or a COCO RLE dict."""
    if isinstance(mask, dict):
        counts = mask.get("counts")
        if isinstance(counts, str | bytes):
            mask = {"size": mask["size"], "counts": rle_counts_from_string(counts)}
        return rle_decode(mask)
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValidationError(f"a mask must be 2-D (H×W), got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def _stack_masks(masks: Any, name: str) -> np.ndarray:
    if isinstance(masks, np.ndarray) and masks.ndim == 3:
        return masks.astype(bool, copy=False)
    decoded = [decode_mask(m) for m in masks]
    if not decoded:
        return np.zeros((0, 0, 0), dtype=bool)
    shapes = {m.shape for m in decoded}
    if len(shapes) != 1:
        raise ValidationError(f"{name} masks must share one image size, got {sorted(shapes)}")
    return np.stack(decoded)


def mask_iou(
    dt_masks: Sequence[Any] | np.ndarray,
    gt_masks: Sequence[Any] | np.ndarray,
    iscrowd: npt.ArrayLike | None = None,
) -> np.ndarray:
    """All-pairs IoU between instance masks.

    Args:
        dt_masks: ``N`` detection masks (boolean arrays, RLE dicts, or an ``(N, H, W)``
            array).
        gt_masks: ``M`` ground-truth masks, same forms and the same ``H×W``.
        iscrowd: optional ``(M,)`` crowd flags; crowd IoU = intersection / detection area.

    Returns:
        ``(N, M)`` float64 matrix; pairs with an empty union score 0.
    """
    d = _stack_masks(dt_masks, "dt")
    g = _stack_masks(gt_masks, "gt")
    n, m = len(d), len(g)
    if n == 0 or m == 0:
        return np.zeros((n, m), dtype=np.float64)
    if d.shape[1:] != g.shape[1:]:
        raise ValidationError(f"dt masks are {d.shape[1:]} but gt masks are {g.shape[1:]}")
    df = d.reshape(n, -1)
    gf = g.reshape(m, -1)
    inter = np.zeros((n, m), dtype=np.float64)
    for lo in range(0, df.shape[1], _MASK_BLOCK):
        a = df[:, lo : lo + _MASK_BLOCK].astype(np.float32)
        b = gf[:, lo : lo + _MASK_BLOCK].astype(np.float32)
        inter += a @ b.T
    da = df.sum(axis=1, dtype=np.int64).astype(np.float64)
    ga = gf.sum(axis=1, dtype=np.int64).astype(np.float64)
    union = da[:, None] + ga[None, :] - inter
    if iscrowd is not None:
        crowd = np.asarray(iscrowd, dtype=bool).reshape(-1)
        union = np.where(crowd[None, :], da[:, None], union)
    out = np.zeros((n, m), dtype=np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


# --- polygons -------------------------------------------------------------------------


def _polygon_parts(polygon: Any) -> list[np.ndarray]:
    """Normalise the accepted polygon spellings to a list of ``(n, 2)`` vertex arrays.

    Accepted: COCO's ``[[x1, y1, x2, y2, ...], ...]`` (several parts, unioned), one flat
    list ``[x1, y1, ...]``, an ``(n, 2)`` array, or a list of ``{"x", "y"}`` dicts or
    objects with ``x``/``y`` attributes (Ocula's :class:`~ocula.core.types.Point`).
    """
    if isinstance(polygon, np.ndarray):
        parts: list[Any] = [polygon] if polygon.ndim == 2 else [polygon.reshape(-1, 2)]
    elif len(polygon) == 0:
        return []
    elif isinstance(polygon[0], dict):
        parts = [[(float(p["x"]), float(p["y"])) for p in polygon]]
    elif hasattr(polygon[0], "x"):
        parts = [[(float(p.x), float(p.y)) for p in polygon]]
    elif isinstance(polygon[0], int | float | np.number):
        parts = [polygon]
    else:
        parts = list(polygon)
    out = []
    for part in parts:
        arr = np.asarray(part, dtype=np.float64).reshape(-1, 2)
        if len(arr) >= 3:
            out.append(arr)
    return out


def polygon_to_mask(polygon: Any, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon (possibly multi-part) into a boolean ``height×width`` mask,
    exactly as pycocotools does (:func:`ocula.core.masks.polygons_to_rle`); parts are
    unioned as in COCO. Vertices are in pixel coordinates, origin at the top-left."""
    parts = [part.reshape(-1).tolist() for part in _polygon_parts(polygon)]
    if not parts:
        return np.zeros((height, width), dtype=bool)
    return rle_decode(polygons_to_rle(parts, height, width))


def polygon_iou(
    dt_polygons: Sequence[Any],
    gt_polygons: Sequence[Any],
    height: int,
    width: int,
    iscrowd: npt.ArrayLike | None = None,
) -> np.ndarray:
    """All-pairs IoU between polygons, by rasterising them on a ``height×width`` grid.

    Returns an ``(N, M)`` matrix; see :func:`mask_iou` for crowd semantics.
    """
    d = [polygon_to_mask(p, height, width) for p in dt_polygons]
    g = [polygon_to_mask(p, height, width) for p in gt_polygons]
    if not d or not g:
        return np.zeros((len(d), len(g)), dtype=np.float64)
    return mask_iou(np.stack(d), np.stack(g), iscrowd)
