"""Ocula: find where your detector fails, and fix your dataset.

Quick start::

    import ocula
    client = ocula.Client()                      # embedded: SQLite + ~/.ocula
    ds = client.create_dataset("street")
    ds.append([ocula.DatasetItem(image_location="img/0001.jpg", reference_id="0001")])
    ds.annotate([ocula.BoxAnnotation("person", 10, 20, 30, 60, reference_id="0001")])
"""

from ocula import errors
from ocula.client.client import Client
from ocula.client.dataset import Dataset, Slice
from ocula.client.model import Model, ModelRun, compare
from ocula.core.types import (
    BoxAnnotation,
    BoxPrediction,
    CategoryAnnotation,
    CategoryPrediction,
    DatasetItem,
    Keypoint,
    KeypointsAnnotation,
    KeypointsPrediction,
    MaskAnnotation,
    MaskPrediction,
    Point,
    PolygonAnnotation,
    PolygonPrediction,
    Segment,
    SegmentationAnnotation,
    SegmentationPrediction,
)

__version__ = "0.1.0"

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
    "MaskAnnotation",
    "MaskPrediction",
    "Model",
    "ModelRun",
    "Point",
    "PolygonAnnotation",
    "PolygonPrediction",
    "Segment",
    "SegmentationAnnotation",
    "SegmentationPrediction",
    "Slice",
    "compare",
    "errors",
]
