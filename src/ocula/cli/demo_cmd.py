"""``ocula demo``: build the bundled demo dataset, run two detectors, show where they fail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ocula.client.model import ModelRun

console = Console()


def _fmt(v: float) -> str:
    return "  -  " if v < 0 else f"{v:.3f}"


def _report(runs: list[ModelRun], test_slice: str | None) -> None:
    table = Table(title=f"Model runs on the {'test slice' if test_slice else 'dataset'}"
                  " (precision/recall/F1 at confidence 0.5)")
    for col in ("run", "AP", "AP50", "AR100", "P", "R", "F1", "best F1 @ conf"):
        table.add_column(col, justify="right" if col != "run" else "left", no_wrap=True)
    for run in runs:
        m = run.metrics(slice=test_slice)
        s, op, best = m["stats"], m["operating_point"], m["best_f1"]
        table.add_row(run.name, _fmt(s["AP"]), _fmt(s["AP50"]), _fmt(s["AR100"]),
                      f"{op['precision']:.2f}", f"{op['recall']:.2f}", f"{op['f1']:.2f}",
                      f"{best['f1']:.2f} @ {best['score_threshold']:.2f}")
    console.print(table)
    for run in runs:
        console.print(f"\n[bold]Where {run.name} fails[/bold]")
        info = run.commit()  # idempotent: shows the counts of the stored match
        console.print(f"  {info['tp']} true positives, {info['fp']} false positives, "
                      f"{info['fn']} missed people (IoU ≥ {info['iou_threshold']})")
        why = run.failure_summary()
        fp, fn = why["false_positives"], why["false_negatives"]
        console.print(f"  false positives: {fp['localisation']} boxes off a real person, "
                      f"{fp['duplicate']} duplicates, {fp['background']} on background")
        console.print(f"  missed people: {fn['small']} small, {fn['medium']} medium, "
                      f"{fn['large']} large")
        for miss in run.failures("fn", limit=3):
            g = miss["geometry"]
            console.print(f"  missed   {miss['reference_id']}: box {g['width']:.0f}×"
                          f"{g['height']:.0f} px at ({g['x']:.0f}, {g['y']:.0f})")
        for fp in run.failures("fp", limit=3):
            g = fp["geometry"]
            console.print(f"  false +  {fp['reference_id']}: conf {fp['confidence']:.2f}, "
                          f"IoU {fp['iou']:.2f} with the nearest person, "
                          f"{g['width']:.0f}×{g['height']:.0f} px")
        for tp in run.failures("low_iou", limit=2):
            console.print(f"  sloppy   {tp['reference_id']}: matched with IoU {tp['iou']:.2f}")


def demo_command(
    home: Annotated[Path | None, typer.Option(
        "--home", envvar="OCULA_HOME", help="Catalog folder (default ~/.ocula).")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="OCULA_DATABASE_URL")] = None,
    serve: Annotated[bool, typer.Option(
        "--serve/--no-serve",
        help="Serve the web app on 127.0.0.1 afterwards, without API keys (until Ctrl-C); "
             "--no-serve for scripts.")] = True,
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8000,
) -> None:
    """Build the demo dataset (real frames, labels made here), run the HOG and SSDLite
    person detectors over it, commit both runs, show where each one fails, then serve
    the web app on loopback to look at it."""
    from ocula.client.client import Client
    from ocula.demo.build import build_demo

    with Client(home=home, database_url=database_url) as client:
        summary = build_demo(client)
        ds = client.get_dataset(summary["dataset_id"])
        runs = ds.model_runs
        for run in runs:
            run.commit()
        names = {s.name for s in ds.slices}
        _report(runs, "test" if "test" in names else None)
    console.print(
        "\n[bold]Next[/bold]\n"
        f"  ocula runs metrics {ds.name} ssdlite-people --slice test   # per-class AP, F1\n"
        f"  ocula export {ds.name} demo.json                 # the labels as COCO JSON\n"
        "  ocula serve --no-auth                   # web app and REST API (/docs), port 8000\n"
        "  python: ocula.Client().get_dataset('ocula-demo').query_objects(\n"
        "              'type = prediction and status = fp and confidence > 0.8')\n"
        "  how the labels were made: src/ocula/demo/data/LABELS.md")
    if serve:
        from ocula.server.cli import serve_command

        # Loopback only, so serving without keys exposes nothing beyond this machine.
        url = f"http://127.0.0.1:{port}/datasets/{ds.id}"
        console.print(f"\n[bold]The web app[/bold]: open {url}  (Ctrl-C stops it; "
                      "--no-serve skips this)")
        serve_command(host="127.0.0.1", port=port, data=home, database_url=database_url,
                      no_auth=True, log_level="warning")
