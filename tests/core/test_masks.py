"""The pure-Python RLE codec and polygon rasteriser agree with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest

from ocula.core.masks import (
    canonical_counts,
    decode_counts_string,
    encode_counts_string,
    polygons_to_rle,
    rle_area,
    rle_decode,
    rle_encode,
    rle_union,
    to_uncompressed,
)
from ocula.errors import GeometryError

mask_utils = pytest.importorskip("pycocotools.mask")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _random_masks(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shapes = [(1, 1), (1, 7), (5, 1), (0, 0)]
    for i in range(n):
        h, w = shapes[i] if i < len(shapes) else rng.integers(1, 80, size=2)
        kind = i % 4
        if kind == 0:
            mask = rng.random((h, w)) < rng.random()
        elif kind == 1:  # blobs: long runs, large deltas between counts
            mask = np.zeros((h, w), bool)
            for _ in range(rng.integers(0, 4)):
                y, x = rng.integers(0, h), rng.integers(0, w)
                mask[y:y + rng.integers(1, 40), x:x + rng.integers(1, 40)] = True
        elif kind == 2:
            mask = np.ones((h, w), bool)
        else:
            mask = np.zeros((h, w), bool)
        yield mask


def test_decode_compressed_matches_pycocotools_encoder():
    for mask in _random_masks(400):
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        counts = decode_counts_string(encoded["counts"])
        assert counts == rle_encode(mask)["counts"] or mask.size == 0
        rle = to_uncompressed(encoded)
        assert np.array_equal(rle_decode(rle), mask)


def test_encode_compressed_matches_pycocotools():
    for mask in _random_masks(400, seed=1):
        if mask.size == 0:
            continue
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert encode_counts_string(rle_encode(mask)["counts"]) == encoded["counts"].decode()


def test_large_mask_round_trip():
    mask = np.zeros((480, 640), bool)
    mask[100:300, 50:600] = True
    mask[::7, ::3] = True
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert np.array_equal(rle_decode(to_uncompressed(encoded)), mask)
    assert rle_area(to_uncompressed(encoded)) == int(mask.sum())


def test_polygons_rasterise_like_pycocotools():
    rng = np.random.default_rng(2)
    for trial in range(300):
        h, w = (int(v) for v in rng.integers(1, 60, size=2))
        polygons = []
        for _ in range(rng.integers(1, 4)):
            k = int(rng.integers(3, 9))
            pts = rng.uniform(-5, max(h, w) + 5, size=2 * k)
            if trial % 3 == 0:
                pts = np.round(pts)
            if trial % 5 == 0:  # repeated vertex: a zero-length edge
                pts = np.concatenate((pts[:2], pts))
            polygons.append(pts.tolist())
        expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w)))
        rle = polygons_to_rle(polygons, h, w)
        assert np.array_equal(rle_decode(rle), expected.astype(bool)), trial
        assert rle["counts"] == rle_encode(expected.astype(bool))["counts"]


def test_union_and_canonical_counts():
    a = np.zeros((6, 5), bool)
    b = np.zeros((6, 5), bool)
    a[1:3, 1:4] = True
    b[2:5, 0:2] = True
    union = rle_union([rle_encode(a), rle_encode(b)])
    assert np.array_equal(rle_decode(union), a | b)
    assert canonical_counts([0, 0, 3, 0, 2, 5]) == [5, 5]
    assert canonical_counts([0, 4, 0, 2]) == [0, 6]
    assert canonical_counts([]) == [0]


@pytest.mark.parametrize(
    "rle, message",
    [
        ({"size": [2, 2], "counts": [1, 2]}, "sum to 3"),
        ({"size": [2, 2], "counts": "!!"}, "invalid character"),
        ({"counts": [4]}, "no 'size'"),
        ({"size": [2], "counts": [4]}, "'size'"),
        ({"size": [2, 2], "counts": [1.5, 2.5]}, "non-negative ints"),
        ({"size": [2, 2], "counts": "1"}, "sum to"),  # "1" decodes to [1]
        ({"size": [2, 2]}, "'counts'"),
    ],
)
def test_bad_rle_raises_geometry_error(rle, message):
    with pytest.raises(GeometryError, match=message):
        to_uncompressed(rle)


def test_truncated_string_raises():
    with pytest.raises(GeometryError, match="truncated"):
        decode_counts_string("P")  # 0x20 bit set: more groups announced, none follow


@pytest.mark.parametrize("polygon", [[0, 0, 1, 1], [0, 0, 1, 1, 2], [0, 0, 1, float("nan"), 2, 2]])
def test_bad_polygon_raises(polygon):
    with pytest.raises(GeometryError):
        polygons_to_rle([polygon], 4, 4)
