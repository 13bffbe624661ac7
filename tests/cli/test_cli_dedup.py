"""``ocula dedup`` on a real catalog, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ocula.cli.main import app
from ocula.client.client import Client
from tests.server.test_dedup_api import _items


def test_cli_prints_groups(database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Client(home=home, database_url=database_url) as c:
        c.create_dataset("cli").append(_items(tmp_path / "imgs"))
    runner = CliRunner()
    args = ["dedup", "cli", "--home", str(home), "--database-url", database_url]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "p1_small" in text and "p1_jpeg" in text
    assert "4 image(s): 2 kept, 2 duplicate(s) in 1 group(s) at threshold 10" in text
    exact = runner.invoke(app, [*args, "--threshold", "0", "--json"])
    assert exact.exit_code == 0 and json.loads(exact.output)["stats"]["group_count"] == 0
    assert runner.invoke(app, [*args, "-t", "65"]).exit_code == 2  # typer's usage error
    missing = runner.invoke(app, ["dedup", "nope", "--home", str(home), "--database-url",
                                  database_url])
    assert missing.exit_code == 2 and "nope" in missing.output
