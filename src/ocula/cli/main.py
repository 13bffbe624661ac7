"""The ``ocula`` command line: thin wrappers over the Python client."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ocula.cli.eval_cmd import parse_sigmas
from ocula.errors import AmbiguousNameError, OculaError, ValidationError

if TYPE_CHECKING:
    from ocula.client.client import Client

app = typer.Typer(help="Ocula: find where your detector fails, and fix your dataset.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()

HomeOpt = Annotated[Path | None, typer.Option(
    "--home", envvar="OCULA_HOME", help="Catalog folder (default ~/.ocula).")]
DbOpt = Annotated[str | None, typer.Option(
    "--database-url", envvar="OCULA_DATABASE_URL",
    help="SQLAlchemy URL of the catalog, e.g. postgresql+psycopg://user@host/db.")]
FORMATS = ("coco", "voc", "yolo", "pennfudan", "cvat")


def open_client(home: Path | None, database_url: str | None) -> Client:
    from ocula.client.client import Client  # the catalog's stack loads only when one opens

    return Client(home=home, database_url=database_url)


def fail(exc: OculaError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc.message}")
    for sub in getattr(exc, "errors", [])[:20]:
        console.print(f"  - {sub.message}")
    return typer.Exit(code=2)


@app.command("datasets")
def datasets_command(home: HomeOpt = None, database_url: DbOpt = None) -> None:
    """List datasets with their item and annotation counts."""
    with open_client(home, database_url) as client:
        table = Table("id", "name", "items", "annotations", "slices", "runs")
        for ds in client.datasets:
            info = ds.info()
            table.add_row(ds.id, ds.name, str(info["length"]), str(info["annotation_count"]),
                          ", ".join(s["name"] for s in info["slices"]),
                          ", ".join(r["name"] for r in info["model_runs"]))
        console.print(table)


@app.command("import")
def import_command(
    fmt: Annotated[str, typer.Argument(help=f"One of: {', '.join(FORMATS)}.")],
    path: Annotated[Path, typer.Argument(help="Labels file (COCO JSON) or dataset folder.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (created "
                                         "if missing).")],
    images: Annotated[Path | None, typer.Option(help="COCO, CVAT: the images folder.")] = None,
    predictions: Annotated[Path | None, typer.Option(
        help="COCO results JSON to import as a model run.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for --predictions.")] = None,
    copy_media: Annotated[bool, typer.Option(help="Copy images into the catalog.")] = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Import a dataset (and optionally a model's COCO results) into the catalog.

    A failed import leaves no trace: a dataset (or model) this command created is
    deleted again; one that existed before keeps what it had, since each write to it
    is one transaction.
    """
    from ocula import io

    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; expected one of {FORMATS}")
    try:
        # COCO and CVAT labels name images that may live in another folder.
        args = (path, images) if fmt in ("coco", "cvat") else (path,)
        data = io.REGISTRY[fmt](*args)
        # Read the results before anything is written, so a bad file writes nothing.
        preds = None
        if predictions is not None:
            preds = io.import_coco_results(predictions, data, warnings=data.warnings)
            if not preds:
                raise ValidationError(
                    f"none of the {_count_results(predictions)} results in {predictions} "
                    "refer to an image and category of the ground truth; nothing written: "
                    + "; ".join(data.warnings[-2:]))
        run_name = model or (predictions.stem if predictions is not None else "")
        with open_client(home, database_url) as client:
            created: list[_Created] = []
            try:
                _write_import(client, dataset, data, preds, run_name, copy_media, created)
            except BaseException:  # Ctrl-C too: half an import is worse than none
                _undo(created)
                raise
    except OculaError as exc:
        raise fail(exc) from exc
    for warning in data.warnings[:20]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _count_results(path: Path) -> int:
    body = json.loads(path.read_text(encoding="utf-8"))
    return len(body.get("annotations", []) if isinstance(body, dict) else body)


# What an import created, to delete if it fails: (delete function, id, description).
_Created = tuple[Callable[[str], Any], str, str]


def _write_import(client: Client, dataset: str, data: Any, preds: list[Any] | None,
                  model: str, copy_media: bool, created: list[_Created]) -> None:
    """Write what ``ocula import`` read, noting in ``created`` each dataset or model it
    creates, so that a failure can remove them."""
    same = [d for d in client.datasets if d.name == dataset]
    if len(same) > 1:  # names are labels: the import must not guess which one
        raise AmbiguousNameError("dataset", dataset, [d.id for d in same])
    ds = same[0] if same else None
    if ds is None:
        # A COCO file's categories (ids, supercategories, skeletons, unused ones), info
        # and licenses, and a CVAT file's label specs stay with the dataset: `ocula
        # export` writes them back as they were, and metrics average classes in COCO's
        # category id order, as pycocotools does.
        kept = {fmt: data.info[fmt] for fmt in ("coco", "cvat") if data.info.get(fmt)}
        ds = client.create_dataset(dataset, metadata=kept or None)
        created.append((client.delete_dataset, ds.id, f"dataset {ds.name!r}"))
    appended = ds.append(data.items, copy_media=copy_media, progress=True)
    annotated = ds.annotate(data.annotations, progress=True)
    console.print(f"dataset [bold]{ds.name}[/bold] ({ds.id}): "
                  f"{appended['new_items']} new items, "
                  f"{appended['ignored_items']} already present; "
                  f"{annotated['annotations_processed']} annotations written")
    if preds is None:
        return
    known = {m.reference_id for m in client.models}
    mdl = client.add_model(model, model)
    if mdl.reference_id not in known:
        created.insert(0, (client.delete_model, mdl.id, f"model {mdl.name!r}"))
    run = mdl.create_run(model, ds, preds, progress=True)
    console.print(f"model run [bold]{run.name}[/bold] ({run.id}): {len(preds)} predictions")


def _undo(created: list[_Created]) -> None:
    """Delete what a failed import created; a failing delete is reported, not raised,
    so the import's own error stays the one shown."""
    for delete, ident, what in created:
        try:
            delete(ident)
        except Exception as exc:  # the import's own error matters more than this one
            console.print(f"[red]error:[/red] could not remove {what} ({ident}) after the "
                          f"failed import: {exc}")
        else:
            console.print(f"removed {what} ({ident}), created by this failed import")


@app.command("export")
def export_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    out: Annotated[Path, typer.Argument(help="Output file (COCO JSON or CVAT XML).")],
    slice_name: Annotated[str | None, typer.Option("--slice", help="Export only this "
                                                   "slice.")] = None,
    version: Annotated[str | None, typer.Option(help="Label version (number or name); "
                                                "default: current.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="coco, or cvat (CVAT for images "
                                     "1.1 XML).")] = "coco",
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Export a dataset or slice with its ground truth as COCO JSON or CVAT XML."""
    if fmt not in ("coco", "cvat"):
        raise typer.BadParameter(f"unknown export format {fmt!r}; expected coco or cvat")
    try:
        with open_client(home, database_url) as client:
            ds = client.get_dataset(dataset)
            v: int | str | None = int(version) if version and version.isdecimal() else version
            export = ds.export_cvat if fmt == "cvat" else ds.export_coco
            summary = export(out, slice=slice_name, version=v)
    except OculaError as exc:
        raise fail(exc) from exc
    console.print(f"wrote {out}: {summary['images']} images, {summary['annotations']} "
                  f"annotations, {summary['categories']} categories")


@app.command("info")
def info_command(dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
                 home: HomeOpt = None, database_url: DbOpt = None) -> None:
    """Print a dataset's info as JSON."""
    try:
        with open_client(home, database_url) as client:
            console.print_json(json.dumps(client.get_dataset(dataset).info()))
    except OculaError as exc:
        raise fail(exc) from exc


slices_app = typer.Typer(help="Named subsets of a dataset.", no_args_is_help=True)
runs_app = typer.Typer(help="Model runs: commit, metrics, failures.", no_args_is_help=True)
app.add_typer(slices_app, name="slices")
app.add_typer(runs_app, name="runs")
DatasetArg = Annotated[str, typer.Argument(help="Dataset name or id.")]


@slices_app.command("create")
def slice_create_command(
    dataset: DatasetArg,
    name: Annotated[str, typer.Argument(help="Slice name.")],
    reference_ids: Annotated[list[str] | None, typer.Argument(help="Item reference ids.")] = None,
    from_file: Annotated[Path | None, typer.Option(help="File with one reference id a "
                                                   "line.")] = None,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Create a slice from reference ids (arguments and/or a file)."""
    refs = list(reference_ids or [])
    if from_file is not None:
        refs += [line.strip() for line in from_file.read_text().splitlines() if line.strip()]
    try:
        with open_client(home, database_url) as client:
            sl = client.get_dataset(dataset).create_slice(name, refs)
            console.print(f"slice [bold]{sl.name}[/bold] ({sl.id}): {sl.info()['length']} items")
    except OculaError as exc:
        raise fail(exc) from exc


@slices_app.command("list")
def slice_list_command(dataset: DatasetArg, home: HomeOpt = None,
                       database_url: DbOpt = None) -> None:
    """List a dataset's slices."""
    try:
        with open_client(home, database_url) as client:
            table = Table("id", "name", "items")
            for sl in client.get_dataset(dataset).slices:
                table.add_row(sl.id, sl.name, str(sl.info()["length"]))
            console.print(table)
    except OculaError as exc:
        raise fail(exc) from exc


@runs_app.command("commit")
def run_commit_command(
    dataset: DatasetArg,
    run: Annotated[str, typer.Argument(help="Run name or id.")],
    class_agnostic: Annotated[bool, typer.Option(help="Match across labels.")] = False,
    iou: Annotated[float, typer.Option(help="IoU threshold of a match.")] = 0.5,
    iou_type: Annotated[str, typer.Option(
        help="bbox, segm for masks/polygons, or keypoints (OKS).")] = "bbox",
    kpt_sigmas: Annotated[str | None, typer.Option(
        help="keypoints: the OKS sigma of each keypoint, comma-separated (default: "
             "COCO's person sigmas for 17 keypoints).")] = None,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Match a run's predictions to the ground truth and store TP/FP/FN."""
    try:
        sigmas = parse_sigmas(kpt_sigmas)
        with open_client(home, database_url) as client:
            res = client.get_dataset(dataset).get_run(run).commit(
                class_agnostic=class_agnostic, iou_threshold=iou, iou_type=iou_type,
                kpt_sigmas=sigmas)
    except OculaError as exc:
        raise fail(exc) from exc
    console.print(f"committed: {res['tp']} TP, {res['fp']} FP, {res['fn']} FN at IoU {iou}")


@runs_app.command("metrics")
def run_metrics_command(
    dataset: DatasetArg,
    run: Annotated[str, typer.Argument(help="Run name or id.")],
    slice_name: Annotated[str | None, typer.Option("--slice", help="Only this slice.")] = None,
    version: Annotated[str | None, typer.Option(help="Label version (number or "
                                                "name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
    iou_type: Annotated[str, typer.Option(
        help="bbox, segm for masks/polygons, or keypoints (OKS).")] = "bbox",
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """COCO metrics of a run (optionally on a slice, against a label version)."""
    v: int | str | None = int(version) if version and version.isdecimal() else version
    try:
        with open_client(home, database_url) as client:
            m = client.get_dataset(dataset).get_run(run).metrics(
                slice=slice_name, annotation_version=v, iou_type=iou_type)
    except OculaError as exc:
        raise fail(exc) from exc
    if as_json:
        console.print_json(json.dumps(m))
        return
    table = Table("metric", "value")
    for key, value in m["stats"].items():
        table.add_row(key, f"{value:.4f}")
    op = m["operating_point"]
    table.add_row("P / R / F1 @ conf 0.5", f"{op['precision']:.3f} / {op['recall']:.3f} / "
                  f"{op['f1']:.3f}")
    table.add_row("best F1 (threshold)", f"{m['best_f1']['f1']:.3f} "
                  f"({m['best_f1']['score_threshold']:.3f})")
    console.print(table)
    per_class = Table("label", "AP", "AP50", "AR", "GT", "predictions")
    for row in m["per_class"]:
        per_class.add_row(str(row["label"]), f"{row['ap']:.4f}", f"{row['ap50']:.4f}",
                          f"{row['ar']:.4f}", str(row["num_ground_truth"]),
                          str(row["num_detections"]))
    console.print(per_class)


def _register_optional() -> None:
    """Commands whose modules live beside the CLI; each registers itself here.

    Their modules import what a command needs inside the command, so registering them
    (and ``ocula --help``) loads no server, database or numpy stack.
    """
    from ocula.cli.ci_cmd import testrun_command
    from ocula.cli.dedup_cmd import dedup_command
    from ocula.cli.demo_cmd import demo_command
    from ocula.cli.eval_cmd import eval_command

    app.command("demo")(demo_command)
    app.command("eval")(eval_command)
    app.command("test-run")(testrun_command)
    app.command("dedup")(dedup_command)
    if find_spec("fastapi") is None or find_spec("uvicorn") is None:
        return  # the server extra is not installed
    from ocula.server.cli import jobs_command, keys_app, serve_command

    app.command("serve")(serve_command)
    app.command("jobs")(jobs_command)
    app.add_typer(keys_app, name="keys")


_register_optional()


if __name__ == "__main__":  # python -m ocula.cli.main, as the `ocula` script
    app(prog_name="ocula")
