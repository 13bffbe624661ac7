"""The shipped demo data (frames, COCO labels, docs) and the demo builder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from ocula.client.client import Client
from ocula.demo.build import build_demo, crowding_bucket, item_metadata, load_frames
from ocula.demo.paths import (
    LABELS_DOC_FILENAME,
    annotations_path,
    data_dir,
    image_paths,
    load_annotations,
)


def test_data_folder_is_complete() -> None:
    folder = data_dir()
    assert (folder / "LICENSE-vtest.txt").is_file()
    assert (data_dir() / LABELS_DOC_FILENAME).is_file() and annotations_path().is_file()
    paths = image_paths()
    assert len(paths) == 60
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 10_000_000  # the ONNX model (12 MB) lives elsewhere


def test_annotations_are_valid_coco() -> None:
    coco = load_annotations()
    assert coco["categories"] == [{"id": 1, "name": "person", "supercategory": "person"}]
    images = {im["id"]: im for im in coco["images"]}
    assert len(images) == 60
    for im in images.values():
        with Image.open(data_dir() / "images" / im["file_name"]) as pic:
            assert pic.size == (im["width"], im["height"]) == (768, 576)
        assert im["file_name"] == f"vtest_{im['frame_index']:04d}.jpg"
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids)) >= 300
    per_image = {i: 0 for i in images}
    for a in coco["annotations"]:
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert a["category_id"] == 1 and a["iscrowd"] in (0, 1)
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= im["width"] + 1e-6 and y + h <= im["height"] + 1e-6
        assert a["area"] == pytest.approx(w * h, abs=0.5)
        per_image[a["image_id"]] += 1
    assert min(per_image.values()) >= 1


def test_pycocotools_reads_the_labels() -> None:
    coco_mod = pytest.importorskip("pycocotools.coco")
    coco = coco_mod.COCO(str(annotations_path()))
    assert len(coco.getImgIds()) == 60
    assert coco.getCatIds(catNms=["person"]) == [1]


def test_labels_doc_lists_every_doubtful_box() -> None:
    coco = load_annotations()
    names = {im["id"]: im["file_name"][:-4] for im in coco["images"]}
    doc = (data_dir() / LABELS_DOC_FILENAME).read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| (vtest_\d{4}) \| (\d+) \|", doc, flags=re.M))
    doubtful = {(names[a["image_id"]], str(a["id"]))
                for a in coco["annotations"] if a.get("doubtful")}
    assert doubtful and rows == doubtful
    assert f"{len(coco['annotations'])} boxes" in doc


def test_item_metadata() -> None:
    frames = load_frames()
    assert [f.frame_index for f in frames] == sorted(f.frame_index for f in frames)
    meta = item_metadata(frames[0])
    assert meta["frame_index"] == 0 and meta["time_s"] == 0.0 and meta["split"] == "train"
    assert meta["num_people"] == len(frames[0].boxes)
    assert meta["crowding"] == crowding_bucket(meta["num_people"])
    assert [crowding_bucket(n) for n in (0, 4, 5, 7, 8, 20)] == [
        "sparse", "sparse", "moderate", "moderate", "crowded", "crowded"]
    assert {f.split for f in frames} == {"train", "test"}


def _build(tmp_path: Path, detectors: tuple[str, ...]) -> tuple[Client, dict]:
    client = Client(home=tmp_path / "home")
    summary = build_demo(client, progress=False, detectors=detectors)
    return client, summary


@pytest.mark.slow
def test_build_demo_with_ssdlite(tmp_path: Path) -> None:
    client, summary = _build(tmp_path, ("ssdlite-people",))
    try:
        coco = load_annotations()
        assert summary["items"] == 60
        assert summary["annotations"] == len(coco["annotations"])
        assert summary["slices"] == {"train": 40, "test": 20}
        run = summary["runs"]["ssdlite-people"]
        assert run["predictions"] > 100 and run["committed"]
        ds = client.get_dataset("ocula-demo")
        assert len(ds) == 60
        assert {s.name for s in ds.slices} == {"train", "test"}
        item = ds.refloc("vtest_0296")["item"]
        assert item.metadata["num_people"] == 6 and item.metadata["crowding"] == "moderate"
        m = ds.get_run("ssdlite-people").metrics(slice="test")
        assert 0.3 < m["stats"]["AP50"] <= 1.0
        # Building again replaces the dataset instead of adding a second one.
        build_demo(client, progress=False, detectors=("ssdlite-people",))
        assert [d.name for d in client.datasets].count("ocula-demo") == 1
    finally:
        client.close()


@pytest.mark.slow
def test_build_demo_full(tmp_path: Path) -> None:
    client, summary = _build(tmp_path, ("hog-people", "ssdlite-people"))
    try:
        assert set(summary["runs"]) == {"hog-people", "ssdlite-people"}
        ds = client.get_dataset(summary["dataset_id"])
        ap50 = {r.name: r.metrics()["stats"]["AP50"] for r in ds.model_runs}
        assert ap50["hog-people"] > 0.5 and ap50["ssdlite-people"] > 0.4
    finally:
        client.close()
