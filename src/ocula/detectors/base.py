"""The detector interface shared by Ocula's demo detectors, and a registry by name.

A detector takes one RGB image (``numpy`` array, ``uint8``, shape ``H×W×3``) and returns a
list of :class:`Detection` in pixel coordinates of that image (``x, y`` top-left corner,
``width, height``), each with a label and a confidence in ``[0, 1]``.

Detectors are registered by name with :func:`register_detector` and built with
:func:`get_detector`; the factories import their heavy dependencies (OpenCV,
onnxruntime) only when called, and the detectors load their models only on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detected object: an axis-aligned box in pixels, a label and a confidence."""

    x: float
    y: float
    width: float
    height: float
    label: str
    confidence: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """The box as ``(x0, y0, x1, y1)``."""
        return (self.x, self.y, self.x + self.width, self.y + self.height)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict with the six fields."""
        return {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "label": self.label,
            "confidence": self.confidence,
        }


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and a ``detect`` method."""

    name: str

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Detect objects in an RGB ``uint8`` image of shape ``H×W×3``."""
        ...


DetectorFactory = Callable[..., Detector]

_REGISTRY: dict[str, DetectorFactory] = {}


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Register ``factory`` (called with keyword options) under ``name``."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"a detector named {name!r} is already registered")
    _REGISTRY[name] = factory


def get_detector(name: str, **options: Any) -> Detector:
    """Build the detector registered as ``name``; ``options`` go to its constructor."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"no detector named {name!r} (known: {known})") from None
    return factory(**options)


def available_detectors() -> list[str]:
    """Names of the registered detectors, sorted."""
    return sorted(_REGISTRY)


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """Validate an ``H×W×3`` image and return it as a contiguous ``uint8`` array."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("empty image")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def clip_box(
    x0: float, y0: float, x1: float, y1: float, width: int, height: int
) -> tuple[float, float, float, float] | None:
    """Clip ``(x0, y0, x1, y1)`` to the image; return ``(x, y, w, h)`` or None if empty.

    The result holds plain Python floats (numpy scalars are converted).
    """
    x0, y0, x1, y1 = float(x0), float(y0), float(x1), float(y1)
    x0 = min(max(x0, 0.0), float(width))
    x1 = min(max(x1, 0.0), float(width))
    y0 = min(max(y0, 0.0), float(height))
    y1 = min(max(y1, 0.0), float(height))
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax1, ay1 = a[0] + a[2], a[1] + a[3]
    bx1, by1 = b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def nms(detections: Sequence[Detection], iou_threshold: float = 0.5) -> list[Detection]:
    """Greedy non-maximum suppression, highest confidence first."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d.confidence, reverse=True):
        box = (det.x, det.y, det.width, det.height)
        if all(box_iou(box, (k.x, k.y, k.width, k.height)) < iou_threshold for k in kept):
            kept.append(det)
    return kept
