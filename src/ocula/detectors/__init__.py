"""Object detectors used by Ocula's demo: a common interface and a registry by name.

Two person detectors are registered, both offline and CPU-only:

* ``"hog-people"``: OpenCV's HOG + linear SVM people detector (:mod:`.hog`);
* ``"ssdlite-people"``: SSDLite-MobileNetV2 pedestrian model run with onnxruntime
  (:mod:`.ssdlite`).

>>> from ocula.detectors import get_detector
>>> detector = get_detector("ssdlite-people", score_threshold=0.3)   # doctest: +SKIP
>>> detector.detect(image_rgb)                                       # doctest: +SKIP
[Detection(x=..., y=..., width=..., height=..., label='person', confidence=0.97), ...]

OpenCV and onnxruntime (the ``demo`` extra) are imported only when a detector is built,
and models are loaded on the first call to ``detect``.
"""

from __future__ import annotations

from typing import Any

from ocula.detectors.base import (
    Detection,
    Detector,
    available_detectors,
    get_detector,
    nms,
    register_detector,
)


def _hog(**options: Any) -> Detector:
    from ocula.detectors.hog import HogPeopleDetector

    return HogPeopleDetector(**options)


def _ssdlite(**options: Any) -> Detector:
    from ocula.detectors.ssdlite import SsdLitePeopleDetector

    return SsdLitePeopleDetector(**options)


register_detector("hog-people", _hog)
register_detector("ssdlite-people", _ssdlite)

__all__ = [
    "Detection",
    "Detector",
    "available_detectors",
    "get_detector",
    "nms",
    "register_detector",
]
