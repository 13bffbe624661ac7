"""``ocula eval GT.json PRED.json``: COCO bbox evaluation of a results file.

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

from ocula.core.evaluation import (
    STAT_NAMES,
    CocoEvaluation,
    detections_from_coco,
    evaluate_coco,
    ground_truth_from_coco,
)
from ocula.errors import ValidationError

__all__ = ["eval_command"]

# pycocotools' wording for each of the 12 numbers.
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


def _load_json(path: Path, what: str) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {what} {path}: {exc}") from exc


def _fmt(value: float) -> str:
    return "-1" if value <= -1 else f"{value:.3f}"


def _render(console: Console, ev: CocoEvaluation, names: dict[int, str], per_class: bool) -> None:
    table = Table(title="COCO bbox evaluation")
    table.add_column("metric")
    table.add_column("setting")
    table.add_column("value", justify="right")
    for name, desc, value in zip(STAT_NAMES, _STAT_DESCRIPTIONS, ev.stats, strict=True):
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
        typer.Argument(help="COCO results JSON: a list of {image_id, category_id, bbox, score}.",
                       exists=True, dir_okay=False, readable=True),
    ],
    per_class: Annotated[
        bool, typer.Option("--per-class/--no-per-class", help="Also print AP per class.")
    ] = True,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the numbers (and per-class AP/AR) to this file."),
    ] = None,
) -> None:
    """Evaluate COCO bbox detections against COCO ground truth (same numbers as pycocotools)."""
    console = Console()
    dataset = _load_json(gt, "ground truth")
    results = _load_json(pred, "predictions")
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]
    if not isinstance(dataset, dict) or "annotations" not in dataset:
        raise typer.BadParameter(f"{gt} is not a COCO instances file (no 'annotations')")
    if not isinstance(results, list):
        raise typer.BadParameter(f"{pred} is not a COCO results list")
    try:
        ground_truth, categories = ground_truth_from_coco(dataset)
        image_ids = {img["id"] for img in dataset.get("images") or []}
        unknown = [r for r in results if r.get("image_id") not in image_ids]
        if unknown and image_ids:
            # pycocotools refuses such files outright; evaluating the rest is more useful.
            console.print(
                f"[yellow]warning:[/] {len(unknown)} predictions refer to images not in "
                f"{gt.name}; they are ignored"
            )
            results = [r for r in results if r.get("image_id") in image_ids]
        detections = detections_from_coco(results)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise typer.BadParameter(f"malformed COCO data: {exc}") from exc

    ev = evaluate_coco(ground_truth, detections, categories=categories or None)
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in dataset.get("categories") or []}
    console.print(
        f"{len(ground_truth)} ground-truth boxes, {len(detections)} predictions, "
        f"{len(ev.labels)} categories"
    )
    _render(console, ev, names, per_class)
    if json_out is not None:
        body = ev.to_dict()
        for row in body["per_class"]:
            row["name"] = names.get(row["label"], str(row["label"]))
        json_out.write_text(json.dumps(body, indent=2, default=_json_default), encoding="utf-8")
        console.print(f"wrote {json_out}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
