"""`ocula demo` end to end: real frames, labels, both detectors, commits, the report."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ocula
from ocula.cli.main import app
from tests.conftest import DemoBuild


@pytest.mark.slow
def test_demo_builds_runs_and_reports(demo_build: DemoBuild, tmp_path: Path) -> None:
    # The fixture runs `ocula demo --no-serve` (by default the command ends by serving
    # the app until Ctrl-C), once per test run: the web walkthrough reuses the catalog,
    # maybe in another worker at the same time, so this test (it re-commits) takes a copy.
    home = tmp_path / "home"
    shutil.copytree(demo_build.home, home)
    text = " ".join(demo_build.output.split())
    for name in ("hog-people", "ssdlite-people"):
        assert f"Where {name} fails" in text
    assert "boxes off a real person" in text and "missed people:" in text
    with ocula.Client(home=home) as client:
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


def test_demo_serves_the_app_on_loopback_unless_told_not_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Serving is the default, without keys on 127.0.0.1, and the URL is printed; the
    build and the server are stand-ins (the real build is the slow test above)."""
    import ocula.demo.build
    import ocula.server.cli

    def build(client: Any) -> dict[str, Any]:
        return {"dataset_id": client.create_dataset("ocula-demo").id}

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(ocula.demo.build, "build_demo", build)
    monkeypatch.setattr(ocula.server.cli, "serve_command", lambda **kw: served.append(kw))
    home = str(tmp_path / "home")
    result = CliRunner().invoke(app, ["demo", "--home", home, "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    assert served[0]["host"] == "127.0.0.1" and served[0]["port"] == 8123
    assert served[0]["no_auth"] is True
    with ocula.Client(home=home) as client:
        ds_id = client.get_dataset("ocula-demo").id
    assert f"http://127.0.0.1:8123/datasets/{ds_id}" in "".join(result.output.split())
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--home", str(tmp_path / "two")])
    assert result.exit_code == 0, result.output
    assert len(served) == 1
