"""``ocula eval GT.json PRED.json``: COCO bbox, segm or keypoints evaluation of a results file.

The CLI's main module registers :func:`eval_command` with ``app.command("eval")``. This
module imports the engine (numpy) inside the command, so registering it costs nothing,
and reads the files with orjson.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ocula.errors import OculaError, ValidationError

if TYPE_CHECKING:
    from ocula.core.evaluation.coco_files import CocoInputs
    from ocula.core.evaluation.results import CocoEvaluation

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


# Each digit as "0", any other byte as " ": a run of 19 digits may be an integer orjson
# would read as a float (beyond 64 bits), where Python's json keeps an int.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_NUMBER = b"0" * 19


def _load_json(path: Path, what: str) -> Any:
    """The file's JSON as Python's ``json`` reads it, read with orjson where that gives
    the same values; what orjson refuses (``NaN``, ``1e400``, lone surrogates) or reads
    differently (integers beyond 64 bits, so any 19-digit run) is read by ``json``."""
    import orjson

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {what} {path}: {exc}") from exc
    if _LONG_NUMBER not in data.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {what} {path}: {exc}") from exc


@contextmanager
def _no_gc() -> Iterator[None]:
    """The garbage collector off: the files' millions of JSON objects hold no cycles,
    and each collection would scan them all again (a third of the command's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_and_evaluate(gt: Path, pred: Path, iou_type: str, kpt_sigmas: str | None
                       ) -> tuple[CocoInputs, CocoEvaluation]:
    from ocula.core.evaluation.coco_files import evaluate_inputs, load_coco

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
        return inputs, evaluate_inputs(inputs, sigmas=parse_sigmas(kpt_sigmas))
    except OculaError as exc:
        raise typer.BadParameter(f"malformed COCO data: {exc.message}") from exc


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
    from ocula.core.evaluation.coco_files import IOU_TYPES

    console = Console()
    if iou_type not in IOU_TYPES:
        raise typer.BadParameter(f"--iou-type must be one of {', '.join(IOU_TYPES)}, "
                                 f"got {iou_type!r}")
    with _no_gc():
        inputs, ev = _read_and_evaluate(gt, pred, iou_type, kpt_sigmas)
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
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
