"""Index masks without a store: reading PNGs (grey, palette, 16-bit), the size check and
the nearest-neighbour resize, segment checks, and rebuilding segmentations and their
index arrays from the masks they were split into."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ocula.core import segmentations as sg
from ocula.core.types import Segment, SegmentationAnnotation, payload_to_annotation
from ocula.errors import ImageError, ValidationError


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_index_pngs_of_every_kind_decode_to_their_values() -> None:
    idx = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(sg.decode_index_png(_png(Image.fromarray(idx)), "m"), idx)
    pal = Image.fromarray(idx, "L").convert("P")
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    assert np.array_equal(sg.decode_index_png(_png(pal), "m"), idx)
    wide = (idx.astype(np.uint16) * 1000)
    assert np.array_equal(sg.decode_index_png(_png(Image.fromarray(wide)), "m"), wide)


@pytest.mark.parametrize(("data", "reason"), [
    (b"GIF89a...", "is not a PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "cannot read"),
    (_png(Image.new("RGB", (4, 3))), "has RGB pixels"),
    (_png(Image.new("LA", (4, 3))), "has LA pixels"),
])
def test_what_is_no_index_png_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason) as caught:
        sg.decode_index_png(data, "the mask", "r0")
    assert caught.value.reference_id == "r0" and caught.value.http_status == 422


@pytest.mark.parametrize(("src", "dst"), [((4, 3), (8, 6)), ((586, 640), (1170, 530)),
                                          ((7, 5), (3, 11)), ((10, 10), (10, 10))])
def test_resize_is_pils_nearest_neighbour(src: tuple[int, int], dst: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 4, size=(src[1], src[0])).astype(np.uint8)
    want = np.asarray(Image.fromarray(idx).resize(dst, Image.NEAREST))
    got = sg.fit_index_mask(idx, dst[0], dst[1], resize=True, what="m")
    assert np.array_equal(got, want)


def test_a_size_mismatch_is_refused_unless_resized() -> None:
    idx = np.zeros((3, 4), np.uint8)
    assert sg.fit_index_mask(idx, 4, 3, resize=False, what="m") is idx
    assert sg.fit_index_mask(idx, None, None, resize=False, what="m") is idx
    with pytest.raises(ValidationError, match="is 4x3 pixels but its image is 8x6"):
        sg.fit_index_mask(idx, 8, 6, resize=False, what="the mask")


def test_segment_checks() -> None:
    seg = SegmentationAnnotation("m.png", [Segment("a", 1), Segment("b", 1), Segment("", 2),
                                           Segment("c", -1), Segment("d", True)],
                                 reference_id="r")
    messages = [e.message for e in sg.segment_errors(seg, "s")]
    assert any("given twice" in m for m in messages)
    assert any("segment 2 has no label" in m for m in messages)
    assert sum("must be an integer" in m for m in messages) == 2
    idx = np.array([[0, 1]], np.uint8)
    missing = sg.missing_segments(SegmentationAnnotation("m", [Segment("a", 1), Segment(
        "z", 4)]), idx, "s")
    assert [e.message for e in missing] == [
        "s: segment index 4 ('z') is not in the mask, whose pixels hold 0, 1"]


def test_split_and_rebuild_round_trip() -> None:
    idx = np.array([[0, 1, 1], [2, 2, 0], [7, 0, 1]], np.uint8)
    seg = SegmentationAnnotation("http://x/m.png", [Segment("b", 2), Segment("a", 1, {"k": 1}),
                                                    Segment("z", 7)],
                                 reference_id="r", annotation_id="s1", metadata={"m": 2})
    parts = [{**p.to_payload(), "type": "mask"} for p in seg.to_instances(idx)]
    others, (back,) = sg.rebuild_segmentations([*parts, {"type": "box", "reference_id": "r"}])
    assert others == [{"type": "box", "reference_id": "r"}]
    assert back["mask_url"] == "http://x/m.png" and back["annotation_id"] == "s1"
    assert [s["index"] for s in back["annotations"]] == [1, 2, 7]
    rebuilt = payload_to_annotation(back)
    assert rebuilt.annotations == sorted(seg.annotations, key=lambda s: s.index)
    rebuilt.annotations = seg.annotations
    assert rebuilt == seg
    assert np.array_equal(sg.index_mask(parts), idx)
    png = sg.encode_index_png(sg.index_mask(parts))
    assert np.array_equal(sg.decode_index_png(png, "m"), idx)


def test_nucleus_sends_segmentations_as_type_mask() -> None:
    body = {"type": "mask", "mask_url": "m.png", "reference_id": "r",
            "annotations": [{"label": "a", "index": 1}]}
    seg = payload_to_annotation(body, prediction=True)
    assert type(seg).__name__ == "SegmentationPrediction" and seg.mask_url == "m.png"
    with pytest.raises(ValidationError, match="base64"):
        payload_to_annotation({**body, "mask_png_base64": "***"})


def test_index_rles_and_boxes_equal_per_mask_encoding() -> None:
    """index_rles (one pass for every segment) gives what rle_encode gives each mask, and
    rle_bbox (read from the runs) the mask's pixel box."""
    from ocula.core.masks import index_rles, rle_bbox, rle_encode

    rng = np.random.default_rng(1)
    for case in range(300):
        h, w = rng.integers(1, 9, 2)
        idx = rng.integers(0, 3, (h, w)).astype(np.uint8)
        if case % 3 == 0:
            idx[:] = rng.integers(0, 3)
        rles = index_rles(idx, [0, 1, 2, 5])
        for v in (0, 1, 2, 5):
            mask = idx == v
            assert rles[v] == rle_encode(mask)
            ys, xs = np.nonzero(mask)
            box = None if xs.size == 0 else (float(xs.min()), float(ys.min()),
                                             float(np.ptp(xs) + 1), float(np.ptp(ys) + 1))
            assert rle_bbox(rles[v]) == box
