"""``ocula eval GT.json PRED.json``: COCO bbox, segm or keypoints evaluation of a results file.

The CLI's main module registers :func:`eval_command` with ``app.command("eval")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ocula.core.evaluation import CocoEvaluation
from ocula.core.evaluation.coco_files import IOU_TYPES, evaluate_inputs, load_coco
from ocula.errors import OculaError, ValidationError

__all__ = ["eval_command", "parse_sigmas"]

# pycocotools' wording for each of the 12 numbers (10 for keypoints).
_KEYPOINT_DESCRIPTIONS = (
    "IoU=0.50:0.95  area=all     maxDets=20",
    "IoU=0.50       area=all     maxDets=20",
    "IoU=0.75       area=all     maxDets=20",
    "IoU=0.50:0.95  area=medium  maxDets=20",
    "IoU=0.50:0.95  area=large   maxDets=20",
    "IoU=0.50:0.95  area=all     maxDets=20",
    "IoU=0.50       area=all     maxDets=20",
    "IoU=0.75       area=all     maxDets=20",
    "IoU=0.50:0.95  area=medium  maxDets=20",
    "IoU=0.50:0.95  area=large   maxDets=20",
)
_STAT_DESCRIPTIONS = (
    "IoU=0.50:0.95  area=all     maxDets=100",
    "IoU=0.50       area=all     maxDets=100",
    "IoU=0.75       area=all     maxDets=100",
    "IoU=0.50:0.95  area=small   maxDets=100",
    "IoU=0.50:0.95  area=medium  maxDets=100",
    "IoU=0.50:0.95  area=large   maxDets=100",
    "IoU=0.50:0.95  area=all     maxDets=1",
    "IoU=0.50:0.95  area=all     maxDets=10",
    "IoU=0.50:0.95  area=all     maxDets=100",
    "IoU=0.50:0.95  area=small   maxDets=100",
    "IoU=0.50:0.95  area=medium  maxDets=100",
    "IoU=0.50:0.95  area=large   maxDets=100",
)


def parse_sigmas(text: str | None) -> list[float] | None:
    """``"0.26,0.25,..."`` as numbers; None stays None."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise ValidationError(f"--kpt-sigmas must be comma-separated numbers, got {text!r}"
                              ) from exc


def _load_json(path: Path, what: str) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {what} {path}: {exc}") from exc


def _fmt(value: float) -> str:
    return "-1" if value <= -1 else f"{value:.3f}"


def _render(console: Console, ev: CocoEvaluation, names: dict[Any, str], per_class: bool,
            iou_type: str) -> None:
    table = Table(title=f"COCO {iou_type} evaluation")
    table.add_column("metric")
    table.add_column("setting")
    table.add_column("value", justify="right")
    described = _KEYPOINT_DESCRIPTIONS if iou_type == "keypoints" else _STAT_DESCRIPTIONS
    for (name, value), desc in zip(ev.summary().items(), described, strict=True):
        table.add_row(name, desc, _fmt(float(value)))
    console.print(table)
    if not per_class:
        return
    ap = ev.per_class_ap()
    ap50 = ev.per_class_ap(iou=0.5)
    ar = ev.per_class_ar()
    classes = Table(title="Per class (area=all, maxDets=100)")
    for col in ("id", "class", "AP", "AP50", "AR100", "gt", "detections"):
        classes.add_column(col, justify="left" if col == "class" else "right")
    for k, label in enumerate(ev.labels):
        classes.add_row(
            str(label),
            names.get(label, str(label)),
            _fmt(ap[label]),
            _fmt(ap50[label]),
            _fmt(ar[label]),
            str(int(ev.num_ground_truth[k, 0])),
            str(int(ev.num_detections[k])),
        )
    console.print(classes)


def eval_command(
    gt: Annotated[
        Path,
        typer.Argument(help="COCO instances JSON (images, annotations, categories).",
                       exists=True, dir_okay=False, readable=True),
    ],
    pred: Annotated[
        Path,
        typer.Argument(help="COCO results JSON: a list of {image_id, category_id, score, "
                            "bbox | segmentation | keypoints}.",
                       exists=True, dir_okay=False, readable=True),
    ],
    iou_type: Annotated[
        str, typer.Option("--iou-type", help="bbox, segm (masks) or keypoints (OKS).")
    ] = "bbox",
    kpt_sigmas: Annotated[
        str | None,
        typer.Option(help="keypoints: the OKS sigma of each keypoint, comma-separated "
                          "(default: COCO's person sigmas, for 17 keypoints)."),
    ] = None,
    per_class: Annotated[
        bool, typer.Option("--per-class/--no-per-class", help="Also print AP per class.")
    ] = True,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the numbers (and per-class AP/AR) to this file."),
    ] = None,
) -> None:
    """Evaluate COCO results against COCO ground truth (the same numbers as pycocotools)."""
    console = Console()
    if iou_type not in IOU_TYPES:
        raise typer.BadParameter(f"--iou-type must be one of {', '.join(IOU_TYPES)}, "
                                 f"got {iou_type!r}")
    dataset = _load_json(gt, "ground truth")
    results = _load_json(pred, "predictions")
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(dataset, dict) or "annotations" not in dataset:
        raise typer.BadParameter(f"{gt} is not a COCO instances file (no 'annotations')")
    if not isinstance(results, list):
        raise typer.BadParameter(f"{pred} is not a COCO results list")
    try:
        inputs = load_coco(dataset, results, iou_type)
        ev = evaluate_inputs(inputs, sigmas=parse_sigmas(kpt_sigmas))
    except OculaError as exc:
        raise typer.BadParameter(f"malformed COCO data: {exc.message}") from exc
    for warning in inputs.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(
        f"{len(inputs.gt)} ground-truth objects, {len(inputs.dt)} predictions, "
        f"{len(ev.labels)} categories"
    )
    _render(console, ev, inputs.category_names, per_class, iou_type)
    if json_out is not None:
        body = ev.to_dict()
        body["iou_type"] = iou_type
        for row in body["per_class"]:
            row["name"] = inputs.category_names.get(row["label"], str(row["label"]))
        json_out.write_text(json.dumps(body, indent=2, default=_json_default), encoding="utf-8")
        console.print(f"wrote {json_out}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
