"""``ocula dedup DATASET``: near-duplicate images by pHash. Prints each group (the image
kept and its duplicates, with their distances) as a rich table, or the whole answer as
JSON; exits 0, or 2 on an error."""

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
from ocula.errors import OculaError

console = Console()


def _table(result: dict[str, Any], shown: int) -> Table:
    table = Table("group", "kept", "duplicate", "bits apart",
                  title=f"near duplicates (threshold {result['threshold']} bits)")
    for n, group in enumerate(result["groups"][:shown], 1):
        for k, dup in enumerate(group["duplicates"]):
            table.add_row(str(n) if k == 0 else "", group["reference_id"] if k == 0 else "",
                          dup["reference_id"], str(dup["distance"]))
    return table


def dedup_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    threshold: Annotated[int, typer.Option(
        "--threshold", "-t", min=0, max=64,
        help="Most bits of the 64-bit pHash two duplicates may differ in (0: same "
             "hash).")] = 10,
    slice_name: Annotated[str | None, typer.Option(
        "--slice", help="Only the items of this slice (name or id).")] = None,
    query: Annotated[str | None, typer.Option(
        "--query", "-q", help="Only the items this item query selects.")] = None,
    groups: Annotated[int, typer.Option(
        "--groups", min=0, help="How many groups to print, biggest first.")] = 50,
    skip_unreadable: Annotated[bool, typer.Option(
        "--skip-unreadable", help="Leave out images that cannot be read instead of "
                                  "failing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
    home: HomeOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Find near-duplicate images in a dataset (perceptual hash, Hamming distance)."""
    try:
        client = open_client(server, api_key, home, database_url)
        with client:
            result = client.get_dataset(dataset).deduplicate(
                threshold, slice=slice_name, query=query,
                on_error="skip" if skip_unreadable else "raise")
    except OculaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        for sub in getattr(exc, "errors", [])[:20]:
            console.print(f"  - {sub.message}")
        raise typer.Exit(code=2) from exc
    if as_json:
        console.print_json(json.dumps(result))
        return
    stats = result["stats"]
    if result["groups"]:
        console.print(_table(result, groups))
        if len(result["groups"]) > groups:
            console.print(f"({len(result['groups']) - groups} more group(s); --groups N "
                          "or --json shows them)")
    console.print(f"{stats['original_count']} image(s): {stats['deduplicated_count']} kept, "
                  f"{stats['duplicate_count']} duplicate(s) in {stats['group_count']} "
                  f"group(s) at threshold {stats['threshold']}")
    for err in result["errors"]:
        console.print(f"[yellow]skipped:[/yellow] {err.get('detail')}")
