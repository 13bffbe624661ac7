"""Segmentations (index masks) through Ocula's own client, embedded and over HTTP, on
SQLite and PostgreSQL: split into one mask per segment whose pixels are the PNG's, read
back (``Dataset.segmentation_mask``), one per item, for ground truth and predictions;
masks of another size, unknown indexes and files that are no index PNG refused clearly,
with nothing written."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ocula import (
    DatasetItem,
    Segment,
    SegmentationAnnotation,
    SegmentationPrediction,
)
from ocula.client.client import Client
from ocula.core.masks import rle_decode
from ocula.errors import BatchError, NotFoundError
from tests.conftest import make_images

# make_images' default size.
W, H = 64, 48


def _index(w: int = W, h: int = H) -> np.ndarray:
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 3, size=(h, w)).astype(np.uint8)
    idx[0, 0] = 5
    return idx


def _png(arr: np.ndarray, path: Path, mode: str | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
    return str(path)


def _segments() -> list[Segment]:
    return [Segment("road", 1), Segment("car", 2, {"colour": "red"}), Segment("cone", 5)]


def _dataset(client: Client, tmp_path: Path):  # noqa: ANN202
    ds = client.create_dataset("seg")
    paths = make_images(tmp_path / "imgs", 2)
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    return ds


def test_split_masks_are_the_pngs_pixels(any_client: Client, tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    idx = _index()
    mask = _png(idx, tmp_path / "m" / "idx.png")
    seg = SegmentationAnnotation(mask, _segments(), reference_id="r0", annotation_id="s",
                                 metadata={"source": "tool"})
    out = ds.annotate([seg])
    assert (out["annotations_processed"], out["annotations_ignored"]) == (1, 0)
    stored = {a.annotation_id: a for a in ds.annotations()}
    assert set(stored) == {"segmentation/1", "segmentation/2", "segmentation/5"}
    for s in _segments():
        part = stored[f"segmentation/{s.index}"]
        assert part.type == "mask" and part.label == s.label
        assert np.array_equal(rle_decode(part.mask), idx == s.index)
        assert part.area == float((idx == s.index).sum())
        assert part.metadata == {"source": "tool", **(s.metadata or {})}
    got = ds.segmentation_mask("r0")
    assert np.array_equal(got.index, np.where(np.isin(idx, [1, 2, 5]), idx, 0))
    assert got.segmentation == seg
    with pytest.raises(NotFoundError, match="has no segmentation"):
        ds.segmentation_mask("r1")

    # One per item: ignored, or replaced whole (a segment it no longer has goes).
    assert ds.annotate([seg])["annotations_ignored"] == 1
    fewer = SegmentationAnnotation(mask, [Segment("road", 1)], reference_id="r0")
    out = ds.annotate([fewer], update=True)
    assert (out["annotations_processed"], out["annotations_ignored"]) == (1, 0)
    assert [a.annotation_id for a in ds.annotations()] == ["segmentation/1"]
    assert ds.segmentation_mask("r0").segmentation == fewer
    # Earlier versions keep the first segmentation.
    assert len(ds.annotations(version=1)) == 3


def test_mask_bytes_and_16_bit_masks(any_client: Client, tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    idx = np.zeros((H, W), np.uint16)
    idx[5:9, 3:7] = 300
    buf = io.BytesIO()
    Image.fromarray(idx).save(buf, format="PNG")
    seg = SegmentationAnnotation("mem://mask", [Segment("thing", 300)], reference_id="r1",
                                 mask_bytes=buf.getvalue())
    assert ds.annotate([seg])["annotations_processed"] == 1
    got = ds.segmentation_mask("r1")
    assert got.index.dtype == np.uint16 and np.array_equal(got.index, idx)
    assert got.segmentation.mask_url == "mem://mask"


def test_predictions(any_client: Client, tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    idx = _index()
    mask = _png(idx, tmp_path / "p.png")
    model = any_client.add_model("segmenter", "seg-ref")
    pred = SegmentationPrediction(mask, _segments(), reference_id="r0", annotation_id="p")
    run = model.create_run("run", ds, [pred])
    again = any_client._backend.predict(run.id, [pred])
    assert (again["predictions_processed"], again["predictions_ignored"]) == (0, 1)
    other = SegmentationPrediction(mask, [Segment("car", 2)], reference_id="r0")
    again = any_client._backend.predict(run.id, [other], update=True)
    assert (again["predictions_processed"], again["predictions_ignored"]) == (1, 0)
    got = ds.segmentation_mask("r0", run="run")
    assert isinstance(got.segmentation, SegmentationPrediction)
    assert np.array_equal(got.index, np.where(idx == 2, 2, 0))
    assert [p["annotation_id"] for p in any_client._backend.list_predictions(run.id)] == [
        "segmentation/2"]


@pytest.mark.parametrize("case", ["size", "unknown_index", "not_png", "rgb", "twice",
                                  "no_segments"])
def test_bad_segmentations_are_refused(any_client: Client, tmp_path: Path,
                                       case: str) -> None:
    ds = _dataset(any_client, tmp_path)
    good = _png(_index(), tmp_path / "good.png")
    segments = _segments()
    if case == "size":
        mask, reason = _png(_index(32, 24), tmp_path / "small.png"), \
            "is 32x24 pixels but its image is 64x48"
    elif case == "unknown_index":
        mask, segments, reason = good, [Segment("cat", 9)], "index 9 .* not in the mask"
    elif case == "not_png":
        mask = str(make_images(tmp_path / "jpg", 1)[0])
        reason = "is not a PNG"
    elif case == "rgb":
        mask = _png(np.zeros((H, W, 3), np.uint8), tmp_path / "rgb.png")
        reason = "has RGB pixels"
    elif case == "twice":
        mask, segments, reason = good, [Segment("a", 1), Segment("b", 1)], "given twice"
    else:
        mask, segments, reason = good, [], "at least one segment"
    box_ok = SegmentationAnnotation(good, _segments(), reference_id="r1")
    with pytest.raises(BatchError, match=reason) as caught:
        ds.annotate([box_ok, SegmentationAnnotation(mask, segments, reference_id="r0")])
    assert caught.value.http_status == 422
    assert ds.annotations() == []  # nothing half-written


def test_rest_route_serves_the_index_png(tmp_path: Path, database_url: str) -> None:
    from ocula.core.services import Service
    from ocula.fetch import fetch_url
    from ocula.server import create_app
    from ocula.server.background import serve_in_background

    service = Service.open(tmp_path / "server-home", database_url, local_roots=[],
                           fetcher=fetch_url)
    key = service.create_key("tests")["key"]
    try:
        with serve_in_background(create_app(service)) as url:
            client = Client(url, api_key=key)
            ds = _dataset(client, tmp_path)
            idx = np.where(np.isin(_index(), [1, 2, 5]), _index(), 0).astype(np.uint8)
            ds.annotate([SegmentationAnnotation(_png(idx, tmp_path / "i.png"), _segments(),
                                                reference_id="r0")])
            item_id = service.get_item(ds.id, reference_id="r0")["item"]["id"]
            auth = {"Authorization": f"Bearer {key}"}
            answer = httpx.get(f"{url}/api/v1/items/{item_id}/segmentation", headers=auth)
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(answer.content))), idx)
            assert httpx.get(f"{url}/api/v1/items/{item_id}/segmentation").status_code == 401
            missing = httpx.get(f"{url}/api/v1/items/{item_id}/segmentation",
                                params={"run": "run_nope"}, headers=auth)
            assert missing.status_code == 404 and "run_nope" in missing.json()["detail"]
            client.close()
    finally:
        service.close()


def test_segments_are_scored_as_instance_masks(any_client: Client, tmp_path: Path) -> None:
    """Ocula scores masks (iou_type "segm", and their boxes in "bbox"): each segment is
    one object."""
    ds = _dataset(any_client, tmp_path)
    truth = np.zeros((H, W), np.uint8)
    truth[:20] = 1
    truth[30:40, 10:20] = 2
    moved = truth.copy()
    moved[30:40, 10:20] = 0
    moved[30:40, 40:50] = 2  # the "car" segment misses entirely
    segments = [Segment("road", 1), Segment("car", 2)]
    ds.annotate([SegmentationAnnotation(_png(truth, tmp_path / "t.png"), segments,
                                        reference_id="r0")])
    model = any_client.add_model("segmenter", "seg-ref")
    run = model.create_run("run", ds, [SegmentationPrediction(
        _png(moved, tmp_path / "p.png"), segments, reference_id="r0")])
    run.commit(iou_type="segm")
    per_class = {c["label"]: c["ap"] for c in run.metrics(iou_type="segm")["per_class"]}
    assert per_class["road"] == pytest.approx(1.0) and per_class["car"] == 0.0


def test_mask_urls_are_fetched_as_image_urls_are(tmp_path: Path, database_url: str) -> None:
    """Through the service's fetcher: a private address only where allowed, and a server
    reads no path of its own outside its media roots."""
    from ocula.core.services import Service
    from ocula.fetch import fetch_url

    service = Service.open(tmp_path / "home", database_url, local_roots=[],
                           fetcher=fetch_url, allow_private_urls=False)
    try:
        ds = service.create_dataset("seg")["id"]
        image = make_images(tmp_path / "imgs", 1)[0]
        service.append(ds, [DatasetItem("img.jpg", "r0")], uploads={"r0": image.read_bytes()})
        mask = _png(_index(), tmp_path / "m.png")
        cases = {"http://127.0.0.1:9/m.png": "not a public address",
                 mask: "the mask of item 'r0' is outside the configured media roots"}
        for url, reason in cases.items():
            with pytest.raises(BatchError, match=reason):
                service.annotate(ds, [SegmentationAnnotation(url, _segments(),
                                                             reference_id="r0")])
        assert service.list_annotations(ds) == []
    finally:
        service.close()


def test_copied_masks_stay_one_segmentation(any_client: Client, tmp_path: Path) -> None:
    """The masks read back carry their segmentation: written to another dataset they are
    still one segmentation per item, counted once."""
    ds = _dataset(any_client, tmp_path)
    seg = SegmentationAnnotation(_png(_index(), tmp_path / "m.png"), _segments(),
                                 reference_id="r0", annotation_id="s")
    ds.annotate([seg])
    copy = any_client.create_dataset("copy")
    copy.append([DatasetItem(str(p), f"r{i}") for i, p in
                 enumerate(make_images(tmp_path / "imgs2", 2))])
    out = copy.annotate(ds.annotations())
    assert (out["annotations_processed"], out["annotations_ignored"]) == (1, 0)
    assert copy.annotate(ds.annotations())["annotations_ignored"] == 1
    assert copy.segmentation_mask("r0").segmentation == seg
