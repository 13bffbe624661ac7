"""``ocula test-run RUN``: model CI. Evaluates a run on scenario tests, prints a table of
each criterion's value, threshold and pass, and exits 1 when any test fails (0 when all
pass, 2 on an error), so a CI job can gate a model on it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ocula.cli.options import (
    ApiKeyOption,
    DatabaseUrlOption,
    HomeOption,
    ServerOption,
    open_client,
)
from ocula.errors import OculaError, ValidationError

console = Console()

_SYMBOL = {"greater_than": ">", "greater_than_equal_to": ">=", "less_than": "<",
           "less_than_equal_to": "<="}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(evaluations: list[dict[str, Any]]) -> Table:
    table = Table("test", "function", "value", "criterion", "result", title="scenario tests")
    for ev in evaluations:
        for r in ev["results"]:
            criterion = ("(report only)" if r["threshold"] is None
                         else f"{_SYMBOL[r['comparison']]} {_fmt(r['threshold'])}")
            table.add_row(ev["scenario_test_name"], r["function"], _fmt(r["value"]),
                          criterion, "[green]pass[/green]" if r["passed"]
                          else "[red]FAIL[/red]")
    return table


def testrun_command(
    run: Annotated[str, typer.Argument(help="Run id (run_…), or its name with --dataset.")],
    tests: Annotated[list[str] | None, typer.Option(
        "--test", "-t", help="A scenario test (name or id); repeat for more. Default: "
                             "every test of the run's dataset.")] = None,
    dataset: Annotated[str | None, typer.Option(
        "--dataset", "-d", help="The run's dataset, when RUN is a name.")] = None,
    version: Annotated[str | None, typer.Option(
        help="Label version to score against (number or name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    home: HomeOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Evaluate a model run on scenario tests (model CI); exit 1 if any fails."""
    v: int | str | None = int(version) if version and version.isdecimal() else version
    try:
        client = open_client(server, api_key, home, database_url)
        with client:
            handle = (client.get_dataset(dataset).get_run(run) if dataset
                      else client.get_model_run(run))
            chosen = ([client.get_scenario_test(name) for name in tests] if tests else
                      [t for t in client.scenario_tests if t.dataset_id == handle.dataset_id])
            if not chosen:
                raise ValidationError(f"the run's dataset has no scenario tests "
                                      f"(run {handle.name!r}); create one first")
            evaluations = [t.evaluate(handle, annotation_version=v) for t in chosen]
    except OculaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(code=2) from exc
    failed = [ev["scenario_test_name"] for ev in evaluations if not ev["passed"]]
    if as_json:
        console.print_json(json.dumps(evaluations))
    else:
        console.print(_table(evaluations))
        console.print(f"[red]{len(failed)} of {len(evaluations)} scenario test(s) failed: "
                      f"{', '.join(failed)}[/red]" if failed else
                      f"[green]all {len(evaluations)} scenario test(s) passed[/green]")
    if failed:
        raise typer.Exit(code=1)
