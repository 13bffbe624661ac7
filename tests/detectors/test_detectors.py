"""The demo detectors on a real demo frame: people found, boxes valid, scores in [0, 1]."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocula.detectors import Detection, Detector, available_detectors, get_detector, nms
from ocula.detectors.base import box_iou, check_image, clip_box

DATA = Path(__file__).resolve().parents[2] / "src" / "ocula" / "demo" / "data"
FRAME = "vtest_0296.jpg"  # six upright people, none badly occluded
SSD_SHA256 = "1f97c4690c886d53253006a556d3329e3437f7f23ed278d2db360994e0945fcf"


def _frame() -> tuple[np.ndarray, list[list[float]]]:
    image = np.asarray(Image.open(DATA / "images" / FRAME).convert("RGB"))
    coco = json.loads((DATA / "annotations.json").read_text())
    image_id = next(i["id"] for i in coco["images"] if i["file_name"] == FRAME)
    truth = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image_id]
    return image, truth


def _check(detections: list[Detection], image: np.ndarray, truth: list[list[float]],
           min_found: int) -> None:
    height, width = image.shape[:2]
    assert detections, "no detections at all"
    for d in detections:
        assert d.label == "person"
        assert 0.0 <= d.confidence <= 1.0
        assert d.width > 0 and d.height > 0
        assert d.x >= 0.0 and d.x + d.width <= width
        assert d.y >= 0.0 and d.y + d.height <= height
        assert all(isinstance(v, float) for v in (d.x, d.y, d.width, d.height, d.confidence))
    confident = [d for d in detections if d.confidence >= 0.3]
    found = sum(
        any(box_iou((d.x, d.y, d.width, d.height), t) >= 0.5 for d in confident) for t in truth
    )
    assert found >= min_found, f"only {found} of {len(truth)} people found"
    assert [d.confidence for d in detections] == sorted(
        (d.confidence for d in detections), reverse=True)


def test_registry() -> None:
    assert {"hog-people", "ssdlite-people"} <= set(available_detectors())
    with pytest.raises(KeyError, match="no detector named"):
        get_detector("nope")


def test_import_is_lazy() -> None:
    """Importing the package or building a detector loads neither OpenCV nor onnxruntime."""
    code = (
        "import sys; from ocula.detectors import get_detector; "
        "get_detector('hog-people'); get_detector('ssdlite-people'); "
        "print(sorted(m for m in ('cv2', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_hog_finds_people_on_a_demo_frame() -> None:
    image, truth = _frame()
    detector = get_detector("hog-people")
    assert isinstance(detector, Detector)
    assert detector._hog is None  # lazy: built on first detect
    _check(detector.detect(image), image, truth, min_found=3)


def test_ssdlite_finds_people_on_a_demo_frame() -> None:
    image, truth = _frame()
    detector = get_detector("ssdlite-people")
    assert isinstance(detector, Detector)
    assert detector._session is None  # lazy: loaded on first detect
    detections = detector.detect(image)
    _check(detections, image, truth, min_found=3)
    assert min(d.confidence for d in detections) >= 0.05  # the default low threshold


def test_ssdlite_threshold_and_large_images() -> None:
    image, _ = _frame()
    strict = get_detector("ssdlite-people", score_threshold=0.5).detect(image)
    assert strict and all(d.confidence >= 0.5 for d in strict)
    # An image larger than max_side is shrunk first; boxes come back in its own pixels.
    big = np.asarray(Image.fromarray(image).resize((1536, 1152)))
    dets = get_detector("ssdlite-people", score_threshold=0.5).detect(big)
    assert dets and all(d.x + d.width <= 1536 and d.y + d.height <= 1152 for d in dets)


def test_shipped_model_is_the_expected_file() -> None:
    from ocula.detectors.ssdlite import default_model_path

    path = default_model_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SSD_SHA256
    assert (path.parent / "ped_ssdlite.LICENSE").read_text().startswith("MIT License")


def test_hog_confidence_mapping() -> None:
    from ocula.detectors.hog import svm_weight_to_confidence

    weights = [-5.0, -0.3, 0.0, 0.7, 1.25, 2.0, 50.0]
    conf = [svm_weight_to_confidence(w) for w in weights]
    assert conf == sorted(conf)
    assert all(0.0 <= c <= 1.0 for c in conf)
    assert svm_weight_to_confidence(0.7) == pytest.approx(0.5)


def test_helpers() -> None:
    assert clip_box(-5, -5, 10, 10, 8, 8) == (0.0, 0.0, 8.0, 8.0)
    assert clip_box(20, 20, 30, 30, 8, 8) is None
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    a = Detection(0, 0, 10, 10, "person", 0.9)
    b = Detection(1, 1, 10, 10, "person", 0.5)
    c = Detection(50, 50, 10, 10, "person", 0.4)
    assert nms([b, a, c]) == [a, c]
    with pytest.raises(ValueError):
        check_image(np.zeros((10, 10), dtype=np.uint8))
    assert check_image(np.full((2, 2, 3), 300.0)).dtype == np.uint8
