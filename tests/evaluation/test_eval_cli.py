"""``ocula eval`` as the CLI registers it: ``app.command("eval")(eval_command)``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from eval_synth import random_case, run_pycocotools
from typer.testing import CliRunner

from ocula.cli.eval_cmd import eval_command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.command("noop")
    def noop() -> None:  # a second command keeps "eval" a real sub-command
        """Placeholder."""

    return app


def test_eval_prints_the_12_numbers_and_per_class_ap(tmp_path: Path) -> None:
    dataset, results = random_case(12)
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(dataset))
    pred_path.write_text(json.dumps(results))
    out_path = tmp_path / "out.json"

    res = CliRunner().invoke(
        _app(), ["eval", str(gt_path), str(pred_path), "--json", str(out_path)],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    ref = run_pycocotools(dataset, results)
    assert "AP50" in res.output and "ARl" in res.output
    for value in ref.stats:
        text = "-1" if value == -1 else f"{value:.3f}"
        assert text in res.output
    for cat in dataset["categories"]:
        assert cat["name"] in res.output
    body = json.loads(out_path.read_text())
    assert [body["stats"][k] for k in body["stats"]] == [float(v) for v in ref.stats]
    assert {row["label"] for row in body["per_class"]} == {c["id"] for c in dataset["categories"]}


def test_eval_rejects_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "gt.json"
    good.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    bad = tmp_path / "pred.json"
    bad.write_text("{not json")
    res = CliRunner().invoke(_app(), ["eval", str(good), str(bad)])
    assert res.exit_code != 0
    assert "cannot read predictions" in res.output
    missing = CliRunner().invoke(_app(), ["eval", str(good), str(tmp_path / "nope.json")])
    assert missing.exit_code != 0


def test_eval_without_per_class_table(tmp_path: Path) -> None:
    dataset, results = random_case(0)
    (tmp_path / "gt.json").write_text(json.dumps(dataset))
    (tmp_path / "pred.json").write_text(json.dumps(results))
    res = CliRunner().invoke(
        _app(),
        ["eval", str(tmp_path / "gt.json"), str(tmp_path / "pred.json"), "--no-per-class"],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    assert "Per class" not in res.output
