"""The ``ocula`` command line: thin wrappers over the Python client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ocula.client.client import Client
from ocula.errors import OculaError

app = typer.Typer(help="Ocula: find where your detector fails, and fix your dataset.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()

HomeOpt = Annotated[Path | None, typer.Option(
    "--home", envvar="OCULA_HOME", help="Catalog folder (default ~/.ocula).")]
DbOpt = Annotated[str | None, typer.Option(
    "--database-url", envvar="OCULA_DATABASE_URL",
    help="SQLAlchemy URL of the catalog, e.g. postgresql+psycopg://user@host/db.")]
FORMATS = ("coco", "voc", "yolo", "pennfudan")


def open_client(home: Path | None, database_url: str | None) -> Client:
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
    images: Annotated[Path | None, typer.Option(help="COCO: the images folder.")] = None,
    predictions: Annotated[Path | None, typer.Option(
        help="COCO results JSON to import as a model run.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for --predictions.")] = None,
    copy_media: Annotated[bool, typer.Option(help="Copy images into the catalog.")] = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Import a dataset (and optionally a model's COCO results) into the catalog."""
    from ocula import io

    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; expected one of {FORMATS}")
    try:
        data = io.import_coco(path, images) if fmt == "coco" else io.REGISTRY[fmt](path)
        with open_client(home, database_url) as client:
            names = {d.name: d for d in client.datasets}
            ds = names.get(dataset) or client.create_dataset(dataset)
            appended = ds.append(data.items, copy_media=copy_media, progress=True)
            annotated = ds.annotate(data.annotations, progress=True)
            console.print(f"dataset [bold]{ds.name}[/bold] ({ds.id}): "
                          f"{appended['new_items']} new items, "
                          f"{appended['ignored_items']} already present; "
                          f"{annotated['annotations_processed']} annotations written")
            if predictions is not None:
                preds = io.import_coco_results(predictions, data)
                name = model or predictions.stem
                run = client.add_model(name, name).create_run(name, ds, preds, progress=True)
                console.print(f"model run [bold]{run.name}[/bold] ({run.id}): "
                              f"{len(preds)} predictions")
    except OculaError as exc:
        raise fail(exc) from exc
    for warning in data.warnings[:20]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@app.command("export")
def export_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    out: Annotated[Path, typer.Argument(help="Output file (COCO JSON).")],
    slice_name: Annotated[str | None, typer.Option("--slice", help="Export only this "
                                                   "slice.")] = None,
    version: Annotated[str | None, typer.Option(help="Label version (number or name); "
                                                "default: current.")] = None,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Export a dataset or slice with its ground truth as COCO JSON."""
    try:
        with open_client(home, database_url) as client:
            ds = client.get_dataset(dataset)
            v: int | str | None = int(version) if version and version.isdigit() else version
            summary = ds.export_coco(out, slice=slice_name, version=v)
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


def _register_optional() -> None:
    """Commands whose modules live beside the CLI; each registers itself here."""
    from ocula.cli.demo_cmd import demo_command
    from ocula.cli.eval_cmd import eval_command

    app.command("demo")(demo_command)
    app.command("eval")(eval_command)
    try:
        from ocula.server.cli import jobs_command, keys_app, serve_command
    except ImportError:  # the server extra (fastapi, uvicorn) is not installed
        return
    app.command("serve")(serve_command)
    app.command("jobs")(jobs_command)
    app.add_typer(keys_app, name="keys")


_register_optional()
