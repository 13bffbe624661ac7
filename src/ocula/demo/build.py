"""Build Ocula's demo: 60 real frames with person labels, and two real detector runs.

:func:`build_demo` uses only Ocula's public Python client (Nucleus-style)::

    import ocula
    from ocula.demo.build import build_demo

    summary = build_demo(ocula.Client())
    # {'dataset_id': 'ds_…', 'items': 60, 'annotations': 375, 'runs': {...}, ...}

It (re)creates the dataset ``ocula-demo``: the frames of OpenCV's ``vtest.avi`` shipped
in ``ocula/demo/data`` (see ``LICENSE-vtest.txt``) with queryable metadata, the reviewed
ground truth from ``annotations.json`` (see ``LABELS.md``), a ``train`` slice (frames
0–525) and a ``test`` slice (frames 538–794), then runs the HOG and SSDLite person
detectors over every frame for real and stores each as a model run. The detectors need
the ``demo`` extra (``pip install 'ocula[demo]'``: OpenCV and onnxruntime).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.demo.paths import image_paths, images_dir, load_annotations

DEFAULT_DATASET_NAME = "ocula-demo"
DEFAULT_DETECTORS = ("hog-people", "ssdlite-people")
VIDEO_FPS = 10.0
# Frames before this number form the ``train`` slice, the rest ``test``. A split in time
# keeps near-identical neighbouring frames on the same side.
TEST_FROM_FRAME = 530
# A person box shorter than this (pixels) counts as "small" in the item metadata.
SMALL_PERSON_PX = 50
_OCCLUSION_WORDS = ("occlu", "behind", "hidden", "only head", "only legs")


@dataclass
class DemoFrame:
    """One demo image with its ground truth, as read from ``annotations.json``."""

    reference_id: str
    path: Path
    frame_index: int
    width: int
    height: int
    boxes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def split(self) -> str:
        """``"train"`` or ``"test"`` (split in time at :data:`TEST_FROM_FRAME`)."""
        return "train" if self.frame_index < TEST_FROM_FRAME else "test"


def crowding_bucket(num_people: int) -> str:
    """Bucket a person count: ``"sparse"`` (0–4), ``"moderate"`` (5–7), ``"crowded"`` (8+)."""
    if num_people <= 4:
        return "sparse"
    if num_people <= 7:
        return "moderate"
    return "crowded"


def load_frames() -> list[DemoFrame]:
    """The demo frames with their ground-truth boxes, sorted by frame number."""
    coco = load_annotations()
    folder = images_dir()
    frames: dict[int, DemoFrame] = {}
    for image in coco["images"]:
        name = image["file_name"]
        frame_index = int(image.get("frame_index", Path(name).stem.rsplit("_", 1)[-1]))
        frames[image["id"]] = DemoFrame(
            reference_id=Path(name).stem,
            path=folder / name,
            frame_index=frame_index,
            width=int(image["width"]),
            height=int(image["height"]),
        )
    for ann in coco["annotations"]:
        frames[ann["image_id"]].boxes.append(ann)
    missing = [f.path.name for f in frames.values() if not f.path.is_file()]
    if missing:
        raise FileNotFoundError(f"demo images missing: {', '.join(missing[:5])}")
    return sorted(frames.values(), key=lambda f: f.frame_index)


def item_metadata(frame: DemoFrame) -> dict[str, Any]:
    """Queryable metadata of one frame (counts exclude crowd boxes unless named so)."""
    people = [b for b in frame.boxes if not b.get("iscrowd")]
    notes = [str(b.get("note", "")) for b in people]
    return {
        "source": "vtest.avi",
        "frame_index": frame.frame_index,
        "time_s": round(frame.frame_index / VIDEO_FPS, 1),
        "num_people": len(people),
        "num_crowd_boxes": len(frame.boxes) - len(people),
        "crowding": crowding_bucket(len(people)),
        "num_occluded": sum(any(w in n for w in _OCCLUSION_WORDS) for n in notes),
        "num_small": sum(b["bbox"][3] < SMALL_PERSON_PX for b in people),
        "num_doubtful": sum(bool(b.get("doubtful")) for b in frame.boxes),
        "split": frame.split,
    }


def ground_truth(frame: DemoFrame) -> list[BoxAnnotation]:
    """The frame's labels as Ocula box annotations (ids ``gt-NNNN`` = COCO ids)."""
    out = []
    for b in frame.boxes:
        x, y, w, h = (float(v) for v in b["bbox"])
        meta: dict[str, Any] = {"coco_id": b["id"]}
        if b.get("note"):
            meta["note"] = b["note"]
        if b.get("doubtful"):
            meta["doubtful"] = True
        out.append(BoxAnnotation(
            "person", x, y, w, h,
            reference_id=frame.reference_id,
            annotation_id=f"gt-{b['id']:04d}",
            metadata=meta,
            iscrowd=bool(b.get("iscrowd")),
            area=float(b.get("area", w * h)),
        ))
    return out


def _progress(enabled: bool) -> Any:
    if not enabled:
        return nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())


def run_detector(detector: Any, frames: Sequence[DemoFrame], *, bar: Any = None,
                 ) -> tuple[list[BoxPrediction], float]:
    """Run ``detector`` on every frame; return its predictions and mean ms per frame.

    The first frame (which also loads the model) is excluded from the timing when there
    is more than one.
    """
    task = bar.add_task(f"Running {detector.name}", total=len(frames)) if bar else None
    predictions: list[BoxPrediction] = []
    times: list[float] = []
    for frame in frames:
        with Image.open(frame.path) as im:
            image = np.asarray(im.convert("RGB"))
        start = time.perf_counter()
        detections = detector.detect(image)
        times.append(time.perf_counter() - start)
        for k, d in enumerate(detections):
            predictions.append(BoxPrediction(
                d.label, d.x, d.y, d.width, d.height,
                reference_id=frame.reference_id,
                annotation_id=f"{frame.reference_id}-{k:03d}",
                confidence=float(d.confidence),
            ))
        if bar is not None:
            bar.advance(task)
    timed = times[1:] if len(times) > 1 else times
    return predictions, 1000.0 * float(np.mean(timed)) if timed else 0.0


def _delete_existing(client: Any, name: str) -> None:
    try:
        datasets = client.datasets
    except Exception:  # a client without listing: look the name up
        datasets = []
        try:
            datasets = [client.get_dataset(name)]
        except Exception:  # not found
            return
    for ds in datasets:
        if getattr(ds, "name", None) == name:
            client.delete_dataset(ds.id)


def build_demo(client: Any, *, dataset_name: str = DEFAULT_DATASET_NAME,
               progress: bool = True, detectors: Sequence[str] = DEFAULT_DETECTORS,
               ) -> dict[str, Any]:
    """(Re)create the demo dataset in ``client`` and run the demo detectors on it.

    Args:
        client: an ``ocula.Client`` (embedded or remote); any Nucleus-style client with
            ``create_dataset``, ``datasets``, ``delete_dataset`` and ``add_model`` works.
        dataset_name: name of the dataset; an existing dataset of that name is deleted.
        progress: draw rich progress bars while the detectors run.
        detectors: registered detector names to run (see :mod:`ocula.detectors`); each
            becomes a model (reference id = name) and a model run of the same name.

    Returns:
        A summary: ``dataset_id``, ``dataset_name``, ``items``, ``annotations``,
        ``crowd_annotations``, ``slices`` (name → item count), ``label_version`` and
        ``runs`` (name → ``run_id``, ``predictions``, ``ms_per_frame``, ``committed``).
    """
    from ocula.detectors import get_detector

    frames = load_frames()
    _delete_existing(client, dataset_name)
    dataset = client.create_dataset(dataset_name)

    items = [
        DatasetItem(image_location=str(f.path), reference_id=f.reference_id,
                    metadata=item_metadata(f), width=f.width, height=f.height)
        for f in frames
    ]
    try:
        dataset.append(items, copy_media=True)
    except TypeError:  # a client without copy_media (e.g. Nucleus-style only)
        dataset.append(items)

    annotations = [a for f in frames for a in ground_truth(f)]
    result = dataset.annotate(annotations)
    version = result.get("version") if isinstance(result, dict) else None
    if version is not None and hasattr(dataset, "tag_version"):
        dataset.tag_version("reviewed-v1", version)

    slices = {}
    for name in ("train", "test"):
        refs = [f.reference_id for f in frames if f.split == name]
        dataset.create_slice(name, reference_ids=refs)
        slices[name] = len(refs)

    runs: dict[str, dict[str, Any]] = {}
    with _progress(progress) as bar:
        for det_name in detectors:
            detector = get_detector(det_name)
            predictions, ms = run_detector(detector, frames, bar=bar)
            model = client.add_model(det_name, reference_id=det_name)
            run = model.create_run(
                det_name, dataset, predictions=predictions,
                metadata={"ms_per_frame": round(ms, 1), "frames": len(frames),
                          "detector": type(detector).__name__},
            )
            committed = False
            if hasattr(run, "commit"):
                run.commit()
                committed = True
            runs[det_name] = {"run_id": run.id, "predictions": len(predictions),
                              "ms_per_frame": round(ms, 1), "committed": committed}

    return {
        "dataset_id": dataset.id,
        "dataset_name": dataset_name,
        "items": len(items),
        "annotations": len(annotations),
        "crowd_annotations": sum(a.iscrowd for a in annotations),
        "slices": slices,
        "label_version": version,
        "runs": runs,
    }


__all__ = [
    "DEFAULT_DATASET_NAME",
    "DEFAULT_DETECTORS",
    "DemoFrame",
    "build_demo",
    "crowding_bucket",
    "ground_truth",
    "image_paths",
    "item_metadata",
    "load_frames",
    "run_detector",
]
