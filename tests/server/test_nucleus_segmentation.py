"""Nucleus segmentations with the pinned client, on both databases: index masks by URL
(served by a loopback web server) and as local files (multipart), for ground truth and
predictions; read back as one segmentation (refloc, loc, exports, run reads) with the
mask_url as sent and an index_mask_url Ocula serves; resized to the image as Nucleus
does; one per item (ignored, or replaced with update); bad masks refused clearly."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.core.test_remote_media import http_root  # noqa: F401  (fixture)
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")

# The images of http_root are 40 x 30.
W, H = 40, 30


def _index(w: int = W, h: int = H) -> np.ndarray:
    idx = np.zeros((h, w), np.uint8)
    idx[: h // 2, :] = 1
    idx[h // 3: h // 2 + 5, w // 4: w // 2] = 2
    return idx


def _png(arr: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return str(path)


def _dataset(nc: Any, base: str) -> Any:
    ds = nc.create_dataset("seg", is_scene=False)
    ds.append([nucleus.DatasetItem(image_location=f"{base}/img_000{i}.jpg",
                                   reference_id=f"r{i}") for i in range(2)]
              ).sleep_until_complete(verbose_std_out=False)
    return ds


def _seg(cls: Any, mask_url: str, ref: str = "r0", ann_id: str = "seg-1") -> Any:
    return cls(mask_url=mask_url, reference_id=ref, annotation_id=ann_id,
               annotations=[nucleus.Segment("grass", 1), nucleus.Segment("bear", 2)])


def _served_png(url: str) -> np.ndarray:
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_ground_truth_by_url_round_trip(nc: Any, live_db: Live, http_root: Any  # noqa: F811
                                        ) -> None:
    base, root = http_root
    _png(_index(), root / "mask.png")
    ds = _dataset(nc, base)
    seg = _seg(nucleus.SegmentationAnnotation, f"{base}/mask.png")
    answer = ds.annotate([seg])
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (1, 0)

    got = ds.refloc("r0")["annotations"]["segmentation"]
    assert got == [seg]  # mask_url as sent, the segments, the annotation id
    # Ocula stored one mask per segment, whose pixels are the PNG's.
    masks = {a["label"]: a for a in live_db.service.list_annotations(ds.id)}
    assert set(masks) == {"grass", "bear"}
    from ocula.core.masks import rle_decode
    assert np.array_equal(rle_decode(masks["bear"]["geometry"]["rle"]), _index() == 2)
    assert np.array_equal(rle_decode(masks["grass"]["geometry"]["rle"]), _index() == 1)
    # The index PNG Ocula rebuilds (a signed URL) has the sent pixels.
    raw = httpx.get(f"{live_db.url}/v1/nucleus/dataset/{ds.id}/refloc/r0",
                    auth=(live_db.key, "")).json()
    (body,) = raw["annotations"]["segmentation"]
    assert np.array_equal(_served_png(body["index_mask_url"]), _index())

    # The exports give it as one object too.
    (row,) = [r for r in ds.items_and_annotations() if r["item"].reference_id == "r0"]
    assert row["annotations"]["segmentation"] == seg
    item_id = live_db.service.get_item(ds.id, reference_id="r0")["item"]["id"]
    assert ds.loc(item_id)["annotations"]["segmentation"] == [seg]

    # One segmentation per item: a second is ignored, or replaces it whole with update.
    again = ds.annotate([_seg(nucleus.SegmentationAnnotation, f"{base}/mask.png",
                              ann_id="other")])
    assert (again["annotations_processed"], again["annotations_ignored"]) == (0, 1)
    _png(np.where(_index() == 2, 0, _index()).astype(np.uint8), root / "mask2.png")
    only_grass = nucleus.SegmentationAnnotation(
        mask_url=f"{base}/mask2.png", reference_id="r0", annotation_id="seg-2",
        annotations=[nucleus.Segment("grass", 1)])
    replaced = ds.annotate([only_grass], update=True)
    assert (replaced["annotations_processed"], replaced["annotations_ignored"]) == (1, 0)
    assert ds.refloc("r0")["annotations"]["segmentation"] == [only_grass]
    assert [a["label"] for a in live_db.service.list_annotations(ds.id)] == ["grass"]


def test_local_masks_go_as_multipart(nc: Any, live_db: Live, http_root: Any,  # noqa: F811
                                     tmp_path: Path) -> None:
    base, _ = http_root
    ds = _dataset(nc, base)
    local = _png(_index(), tmp_path / "masks" / "m.png")
    segs = [_seg(nucleus.SegmentationAnnotation, local, ref) for ref in ("r0", "r1", "nope")]
    answer = ds.annotate(segs)
    # The unknown item is reported, the others written (Nucleus' partial batches).
    assert (answer["annotations_processed"], answer["annotations_ignored"]) == (2, 0)
    assert "nope" in answer["errors"][0]
    for seg in segs[:2]:
        assert ds.refloc(seg.reference_id)["annotations"]["segmentation"] == [seg]

    model = nc.create_model("m", "model-ref")
    pred = _seg(nucleus.SegmentationPrediction, local)
    out = ds.upload_predictions(model, [pred])
    assert out["predictions_processed"] == 1
    got = ds.predictions_refloc(model, "r0")["segmentation"]
    assert got == [pred] and isinstance(got[0], nucleus.SegmentationPrediction)
    again = ds.upload_predictions(model, [pred])
    assert (again["predictions_processed"], again["predictions_ignored"]) == (0, 1)
    again = ds.upload_predictions(model, [pred], update=True)
    assert (again["predictions_processed"], again["predictions_ignored"]) == (1, 0)

    # The run's segmentation, rebuilt and served.
    run = live_db.service.model_run_on(ds.id, model.id)
    raw = httpx.get(f"{live_db.url}/v1/nucleus/modelRun/{run['id']}/refloc/r0",
                    auth=(live_db.key, "")).json()
    (body,) = raw["annotations"]["segmentation"]
    assert np.array_equal(_served_png(body["index_mask_url"]), _index())
    exported = ds.export_predictions(model)["segmentation"]
    assert [s.reference_id for s in exported] == ["r0"] and exported[0] == pred


def test_runs_and_async_uploads(nc: Any, live_db: Live, http_root: Any,  # noqa: F811
                                tmp_path: Path) -> None:
    base, root = http_root
    _png(_index(), root / "mask.png")
    ds = _dataset(nc, base)
    run = nc.create_model("m2", "model-2").create_run("run", ds, [
        _seg(nucleus.SegmentationPrediction, f"{base}/mask.png")])
    got = run.refloc("r0")
    assert [s.mask_url for s in got["segmentation"]] == [f"{base}/mask.png"]
    item_id = live_db.service.get_item(ds.id, reference_id="r0")["item"]["id"]
    assert run.loc(item_id)["segmentation"][0].annotation_id == "seg-1"
    # modelRun/{id}/predict takes a local mask as multipart too.
    local = _seg(nucleus.SegmentationPrediction, _png(_index(), tmp_path / "p.png"), "r1")
    assert run.predict([local])["predictions_processed"] == 1
    assert run.refloc("r1")["segmentation"] == [local]

    # An asynchronous upload (NDJSON through the signed URL) reads the mask by URL.
    seg = _seg(nucleus.SegmentationAnnotation, f"{base}/mask.png", "r1")
    job = ds.annotate([seg], asynchronous=True)
    job.sleep_until_complete(verbose_std_out=False)
    assert job.status()["status"] == "Completed"
    assert ds.refloc("r1")["annotations"]["segmentation"] == [seg]


def test_masks_of_another_size_are_resized(nc: Any, live_db: Live, http_root: Any,  # noqa: F811
                                           tmp_path: Path) -> None:
    base, _ = http_root
    ds = _dataset(nc, base)
    small = _index(20, 15)  # half the image's size each way
    local = _png(small, tmp_path / "small.png")
    ds.annotate([_seg(nucleus.SegmentationAnnotation, local)])
    item_id = live_db.service.get_item(ds.id, reference_id="r0")["item"]["id"]
    png = live_db.service.item_segmentation_png(item_id)
    got = np.asarray(Image.open(io.BytesIO(png)))
    # Nearest neighbour: each mask pixel becomes a 2 x 2 block.
    assert got.shape == (H, W) and np.array_equal(got, small.repeat(2, 0).repeat(2, 1))


def test_bad_masks_are_refused_clearly(nc: Any, live_db: Live, http_root: Any,  # noqa: F811
                                       tmp_path: Path) -> None:
    base, root = http_root
    ds = _dataset(nc, base)
    _png(_index(), root / "mask.png")
    cases = {
        f"{base}/notes.txt": "is not a PNG",
        f"{base}/missing.png": "404",
        _png(np.zeros((H, W, 3), np.uint8), tmp_path / "rgb.png"): "has RGB pixels",
    }
    for url, reason in cases.items():
        with pytest.raises(nucleus.errors.NucleusAPIError, match=reason):
            ds.annotate([_seg(nucleus.SegmentationAnnotation, url)])
    unknown = nucleus.SegmentationAnnotation(
        mask_url=f"{base}/mask.png", reference_id="r0",
        annotations=[nucleus.Segment("cat", 7)])
    with pytest.raises(nucleus.errors.NucleusAPIError, match="index 7 .* not in the mask"):
        ds.annotate([unknown])
    assert live_db.service.list_annotations(ds.id) == []
    # Ocula's own route: no segmentation, a 404 naming it.
    item_id = live_db.service.get_item(ds.id, reference_id="r0")["item"]["id"]
    answer = httpx.get(f"{live_db.url}/api/v1/items/{item_id}/segmentation",
                       headers={"Authorization": f"Bearer {live_db.key}"})
    assert answer.status_code == 404 and "no segmentation" in answer.json()["detail"]
