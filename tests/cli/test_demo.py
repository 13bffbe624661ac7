"""`ocula demo` end to end: real frames, labels, both detectors, commits, the report."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import ocula
from ocula.cli.main import app


@pytest.mark.slow
def test_demo_builds_runs_and_reports(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path / "home")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for name in ("hog-people", "ssdlite-people"):
        assert f"Where {name} fails" in text
    assert "boxes off a real person" in text and "missed people:" in text
    with ocula.Client(home=tmp_path / "home") as client:
        ds = client.get_dataset("ocula-demo")
        info = ds.info()
        assert info["length"] == 60 and info["annotation_count"] == 375
        runs = {r.name: r for r in ds.model_runs}
        assert set(runs) == {"hog-people", "ssdlite-people"}
        for run in runs.values():
            assert run.info()["committed"]
            summary = run.failure_summary()
            assert sum(summary["false_negatives"].values()) == run.commit()["fn"]
        # The stronger-on-paper model is worse on these tight labels; the report must
        # reflect the stored metrics, whichever way they go.
        hog = runs["hog-people"].metrics(slice="test")["stats"]["AP50"]
        ssd = runs["ssdlite-people"].metrics(slice="test")["stats"]["AP50"]
        assert f"{hog:.3f}" in text and f"{ssd:.3f}" in text
