"""Ocula: find where your detector fails, and fix your dataset.

Quick start::

    import ocula
    client = ocula.Client()                      # embedded: SQLite + ~/.ocula
    ds = client.create_dataset("street")
    ds.append([ocula.DatasetItem(image_location="img/0001.jpg", reference_id="0001")])
    ds.annotate([ocula.BoxAnnotation("person", 10, 20, 30, 60, reference_id="0001")])

The public names are imported on first use (PEP 562), so ``import ocula`` and the
``ocula`` command line start without loading the catalog's database stack or numpy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ocula import errors

if TYPE_CHECKING:
    from ocula.client.client import Client
    from ocula.client.dataset import Dataset, Slice
    from ocula.client.model import Model, ModelRun, compare, compare_items
    from ocula.client.scenario import ScenarioTest
    from ocula.core.types import (
        BoxAnnotation,
        BoxPrediction,
        CategoryAnnotation,
        CategoryPrediction,
        DatasetItem,
        Keypoint,
        KeypointsAnnotation,
        KeypointsPrediction,
        LineAnnotation,
        LinePrediction,
        MaskAnnotation,
        MaskPrediction,
        MultiCategoryAnnotation,
        MultiCategoryPrediction,
        Point,
        PolygonAnnotation,
        PolygonPrediction,
        Scene,
        Segment,
        SegmentationAnnotation,
        SegmentationPrediction,
    )
    from ocula.server.launch import launch_app

__version__ = "0.1.0"

# Each lazy public name and the module it lives in.
_LAZY = {
    "Client": "ocula.client.client",
    "Dataset": "ocula.client.dataset",
    "Slice": "ocula.client.dataset",
    "Model": "ocula.client.model",
    "ModelRun": "ocula.client.model",
    "compare": "ocula.client.model",
    "compare_items": "ocula.client.model",
    "ScenarioTest": "ocula.client.scenario",
    "launch_app": "ocula.server.launch",
    **dict.fromkeys((
        "BoxAnnotation", "BoxPrediction", "CategoryAnnotation", "CategoryPrediction",
        "DatasetItem", "Keypoint", "KeypointsAnnotation", "KeypointsPrediction",
        "LineAnnotation", "LinePrediction", "MaskAnnotation", "MaskPrediction",
        "MultiCategoryAnnotation", "MultiCategoryPrediction", "Point", "PolygonAnnotation",
        "PolygonPrediction", "Scene", "Segment", "SegmentationAnnotation",
        "SegmentationPrediction",
    ), "ocula.core.types"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used, and keep the name."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocula' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BoxAnnotation",
    "BoxPrediction",
    "CategoryAnnotation",
    "CategoryPrediction",
    "Client",
    "Dataset",
    "DatasetItem",
    "Keypoint",
    "KeypointsAnnotation",
    "KeypointsPrediction",
    "LineAnnotation",
    "LinePrediction",
    "MaskAnnotation",
    "MaskPrediction",
    "Model",
    "ModelRun",
    "MultiCategoryAnnotation",
    "MultiCategoryPrediction",
    "Point",
    "PolygonAnnotation",
    "PolygonPrediction",
    "ScenarioTest",
    "Scene",
    "Segment",
    "SegmentationAnnotation",
    "SegmentationPrediction",
    "Slice",
    "compare",
    "compare_items",
    "errors",
    "launch_app",
]
