"""Box IoU must be bit-identical to pycocotools; masks exact; polygons close."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ocula.core.evaluation.iou import (
    BoxPairIoU,
    box_iou,
    box_iou_pairs,
    decode_mask,
    mask_iou,
    polygon_iou,
    polygon_to_mask,
    rle_counts_from_string,
)
from ocula.core.types import rle_encode
from ocula.errors import ValidationError


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(-50, 500, (n, 2))
    wh = np.exp(rng.uniform(np.log(0.3), np.log(600), (n, 2)))
    boxes = np.c_[xy, wh]
    boxes[rng.random(n) < 0.05, 2] = 0.0  # degenerate boxes
    return boxes


@pytest.mark.parametrize("seed", range(20))
def test_box_iou_is_bit_identical_to_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = _random_boxes(rng, int(rng.integers(1, 60)))
    g = _random_boxes(rng, int(rng.integers(1, 60)))
    # Near-copies of detections give many large IoUs, not just disjoint pairs.
    k = min(len(d), len(g)) // 2
    g[:k] = d[:k] + rng.normal(0, 0.5, (k, 4))
    g[:, 2:] = np.abs(g[:, 2:])
    crowd = rng.random(len(g)) < 0.3
    ref = mask_utils.iou(d.tolist(), g.tolist(), crowd.astype(np.uint8).tolist())
    ours = box_iou(d, g, crowd)
    assert ours.shape == (len(d), len(g))
    np.testing.assert_array_equal(ours, np.asarray(ref))


def test_box_iou_known_values() -> None:
    assert box_iou_pairs([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0] == pytest.approx(50 / 150)
    assert box_iou_pairs([[0, 0, 10, 10]], [[10, 0, 10, 10]])[0] == 0.0  # touching
    # Crowd: intersection over the detection's area.
    assert box_iou_pairs([[0, 0, 10, 10]], [[5, 0, 100, 100]], [True])[0] == 0.5
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    with pytest.raises(ValidationError):
        box_iou([[0, 0, 1]], [[0, 0, 1, 1]])


def _random_masks(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    masks = np.zeros((n, h, w), dtype=bool)
    for m in masks:
        for _ in range(int(rng.integers(1, 4))):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0 : y0 + rng.integers(1, h), x0 : x0 + rng.integers(1, w)] = True
    masks[rng.random(n) < 0.1] = False  # some empty masks
    return masks


@pytest.mark.parametrize("seed", range(8))
def test_mask_iou_matches_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 60)), int(rng.integers(5, 60))
    d = _random_masks(rng, int(rng.integers(1, 8)), h, w)
    g = _random_masks(rng, int(rng.integers(1, 8)), h, w)
    crowd = rng.random(len(g)) < 0.3
    enc = lambda ms: [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in ms]  # noqa: E731
    ref = np.asarray(mask_utils.iou(enc(d), enc(g), crowd.astype(np.uint8).tolist()))
    # Three input forms: arrays, Ocula's uncompressed RLE, COCO's compressed RLE.
    np.testing.assert_allclose(mask_iou(d, g, crowd), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        mask_iou([rle_encode(m) for m in d], [rle_encode(m) for m in g], crowd), ref,
        rtol=0, atol=1e-12,
    )
    compressed = [{"size": r["size"], "counts": r["counts"].decode()} for r in enc(d)]
    np.testing.assert_allclose(mask_iou(compressed, g, crowd), ref, rtol=0, atol=1e-12)


def test_compressed_rle_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.random()
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert rle_counts_from_string(r["counts"]) == rle_encode(m)["counts"]
        np.testing.assert_array_equal(decode_mask(r), m)


def test_mask_size_mismatch_is_rejected() -> None:
    with pytest.raises(ValidationError):
        mask_iou([np.ones((4, 4), bool)], [np.ones((4, 5), bool)])


def test_polygon_rasterisation_of_simple_shapes() -> None:
    square = [[2, 2, 8, 2, 8, 6, 2, 6]]
    m = polygon_to_mask(square, 10, 10)
    assert m.sum() == 24 and m[2:6, 2:8].all()
    # Dict vertices (Ocula's Point payloads) and an (n, 2) array give the same mask.
    as_dicts = [{"x": 2, "y": 2}, {"x": 8, "y": 2}, {"x": 8, "y": 6}, {"x": 2, "y": 6}]
    np.testing.assert_array_equal(polygon_to_mask(as_dicts, 10, 10), m)
    as_array = np.array([[2, 2], [8, 2], [8, 6], [2, 6]])
    np.testing.assert_array_equal(polygon_to_mask(as_array, 10, 10), m)
    # Two parts are unioned; a part outside the image is clipped away.
    two = [[0, 0, 2, 0, 2, 2, 0, 2], [5, 5, 7, 5, 7, 7, 5, 7], [50, 50, 60, 50, 60, 60]]
    assert polygon_to_mask(two, 10, 10).sum() == 8


@pytest.mark.parametrize("seed", range(6))
def test_polygon_iou_close_to_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 120, 160

    def star() -> list[list[float]]:
        cx, cy = rng.uniform(30, 130), rng.uniform(30, 90)
        n = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(10, 30, n)
        pts = np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)]
        return [pts.reshape(-1).tolist()]

    d = [star() for _ in range(4)]
    g = [star() for _ in range(4)]
    ref = np.asarray(mask_utils.iou(
        [mask_utils.merge(mask_utils.frPyObjects(p, h, w)) for p in d],
        [mask_utils.merge(mask_utils.frPyObjects(p, h, w)) for p in g],
        [0] * len(g),
    ))
    ours = polygon_iou(d, g, h, w)
    # Rasterisers differ on boundary pixels only.
    np.testing.assert_allclose(ours, ref, atol=0.02)
    for p in d:
        ref_area = mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(p, h, w)))
        assert abs(int(polygon_to_mask(p, h, w).sum()) - int(ref_area)) <= 0.03 * ref_area + 5


@pytest.mark.parametrize("seed", range(8))
def test_indexed_box_iou_is_bit_identical_to_gathered_pairs(seed: int) -> None:
    """The evaluation's pair IoU gathers edges per pair; it must equal pycocotools'
    expression on whole boxes to the last bit (zero-size boxes and crowds included)."""
    rng = np.random.default_rng(seed)
    nd, ng, p = 300, 120, 5000
    db = np.c_[rng.uniform(0, 60, (nd, 2)), rng.uniform(0, 30, (nd, 2))]
    gb = np.c_[rng.uniform(0, 60, (ng, 2)), rng.uniform(0, 30, (ng, 2))]
    db[::17, 2] = 0.0  # zero-width detections
    gb[::13, 3] = 0.0
    crowd = rng.random(ng) < 0.2
    d, g = rng.integers(0, nd, p), rng.integers(0, ng, p)
    ours = BoxPairIoU(db, gb, crowd)(d, g)
    np.testing.assert_array_equal(ours, box_iou_pairs(db[d], gb[g], crowd[g]))
    assert (ours > 0).sum() > p // 20  # the cases overlap often enough to mean something
