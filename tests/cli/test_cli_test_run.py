"""``ocula test-run``: a table of each criterion, exit 0 when every scenario test passes,
1 when one fails, 2 on an error; on a local catalog (both databases) and a server."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import ocula
from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.cli.main import app
from tests.conftest import make_images

runner = CliRunner()


def _text(result) -> str:
    """The output as words (rich wraps lines and draws cell borders)."""
    return " ".join(result.output.replace("│", " ").replace("┃", " ").split())


def _catalog(client: ocula.Client, tmp_path: Path) -> ocula.ModelRun:
    paths = make_images(tmp_path / "imgs", 2, size=(100, 100))
    ds = client.create_dataset("cli-ci")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("car", 10, 10, 40, 40, reference_id=f"r{i}") for i in range(2)])
    slc = ds.create_slice("all", ["r0", "r1"])
    # r0 found, r1 missed: recall 0.5.
    run = client.add_model("m", "m").create_run("v1", ds, [
        BoxPrediction("car", 10, 10, 40, 40, reference_id="r0", confidence=0.9),
        BoxPrediction("car", 60, 60, 30, 30, reference_id="r1", confidence=0.9)])
    client.create_scenario_test("recall-gate", slc, [
        {"function": "bbox_recall", "threshold": 0.5}])
    client.create_scenario_test("precision-report", slc, ["bbox_precision"])
    return run


def test_exit_codes_follow_pass_and_fail(database_url: str, tmp_path: Path) -> None:
    common = ["--home", str(tmp_path / "home"), "--database-url", database_url]
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        run = _catalog(client, tmp_path)
    result = runner.invoke(app, ["test-run", run.id, *common])
    text = _text(result)
    assert result.exit_code == 0, result.output
    assert "recall-gate bbox_recall 0.5000 >= 0.5000 pass" in text
    assert "(report only)" in text and "all 2 scenario test(s) passed" in text
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        client.get_scenario_test("recall-gate").set_threshold("bbox_recall", 0.5, ">")
    result = runner.invoke(app, ["test-run", "v1", "--dataset", "cli-ci", "--test",
                                 "recall-gate", *common])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "1 of 1 scenario test(s) failed" in _text(result)
    result = runner.invoke(app, ["test-run", run.id, "-t", "precision-report", "--json",
                                 *common])
    assert result.exit_code == 0
    (ev,) = json.loads(result.output)
    assert ev["results"][0]["value"] == 0.5
    # errors: an unknown run, an unknown test
    assert runner.invoke(app, ["test-run", "run_nope", *common]).exit_code == 2
    result = runner.invoke(app, ["test-run", run.id, "-t", "nope", *common])
    assert result.exit_code == 2 and "nope" in result.output


def test_against_a_server(tmp_path: Path) -> None:
    from ocula.core.services import Service
    from ocula.server.app import create_app
    from ocula.server.background import serve_in_background

    service = Service.open(tmp_path / "server", local_roots=None)
    with serve_in_background(create_app(service, auth=False)) as url:
        with ocula.Client(url) as client:
            run = _catalog(client, tmp_path)
        result = runner.invoke(app, ["test-run", run.id, "--server", url])
        assert result.exit_code == 0, result.output
        assert "all 2 scenario test(s) passed" in _text(result)
    service.close()
