"""``ocula import``: a failed import leaves no trace; real-world layouts end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ocula
from ocula.cli.main import app
from tests.cli.test_cli import _coco, _text
from tests.io.test_io_yolo_pose import PEOPLE, make_pose

runner = CliRunner()


def _import(tmp_path: Path, database_url: str, *args: str):
    return runner.invoke(app, ["import", *args, "--home", str(tmp_path / "home"),
                               "--database-url", database_url])


def _state(tmp_path: Path, database_url: str) -> tuple[list[tuple], list[str]]:
    """Every dataset with its counts, and every model, as the catalog holds them."""
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        datasets = []
        for ds in client.datasets:
            info = ds.info()
            datasets.append((ds.name, info["length"], info["annotation_count"],
                             [r["name"] for r in info["model_runs"]]))
        return datasets, [m.name for m in client.models]


def _break(path: Path, edit) -> Path:
    """A copy of a JSON file with ``edit`` applied to its parsed content."""
    body = json.loads(path.read_text())
    edit(body)
    out = path.with_name("broken-" + path.name)
    out.write_text(json.dumps(body))
    return out


def _box_outside(body) -> None:  # the store refuses it; the importer does not look
    body["annotations"][-1]["bbox"] = [90, 70, 50, 50]


def _image_gone(body) -> None:  # the labels give the size, so only the store opens it
    body["images"][-1]["file_name"] = "gone.jpg"


@pytest.mark.parametrize("edit", [_box_outside, _image_gone])
def test_failed_import_removes_the_dataset_it_created(database_url, tmp_path, edit):
    gt_path, _, images = _coco(tmp_path)
    broken = _break(gt_path, edit)
    result = _import(tmp_path, database_url, "coco", str(broken), "--images", str(images),
                     "--dataset", "fresh")
    assert result.exit_code == 2, result.output
    assert "error:" in _text(result) and "removed dataset 'fresh'" in _text(result)
    assert _state(tmp_path, database_url) == ([], [])


def test_failed_import_keeps_an_existing_dataset(database_url, tmp_path):
    gt_path, _, images = _coco(tmp_path)
    first = _import(tmp_path, database_url, "coco", str(gt_path), "--images", str(images),
                    "--dataset", "kept")
    assert first.exit_code == 0, first.output
    before = _state(tmp_path, database_url)
    assert before == ([("kept", 3, 3, [])], [])
    broken = _break(gt_path, _box_outside)
    result = _import(tmp_path, database_url, "coco", str(broken), "--images", str(images),
                     "--dataset", "kept")
    assert result.exit_code == 2 and "removed" not in _text(result)
    assert _state(tmp_path, database_url) == before


def test_failed_run_removes_the_model_it_created(database_url, tmp_path):
    gt_path, pred_path, images = _coco(tmp_path)
    broken = _break(pred_path, lambda body: body[0].update(bbox=[90, 70, 50, 50]))
    result = _import(tmp_path, database_url, "coco", str(gt_path), "--images", str(images),
                     "--dataset", "cli", "--predictions", str(broken), "--model", "frcnn")
    assert result.exit_code == 2, result.output
    assert "removed model 'frcnn'" in _text(result)
    assert _state(tmp_path, database_url) == ([], [])


@pytest.mark.parametrize(("body", "message"), [
    ('[{"image_id": 1, "category_id": 1, "bbox": [1, 1, 2], "score": 1}]', "bbox must be"),
    # Every result on an image the ground truth does not list: nothing to make a run of.
    ('[{"image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 1}]',
     "none of the 1 results"),
])
def test_bad_predictions_file_writes_nothing(database_url, tmp_path, body, message):
    gt_path, _, images = _coco(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(body)
    result = _import(tmp_path, database_url, "coco", str(gt_path), "--images", str(images),
                     "--dataset", "cli", "--predictions", str(bad))
    assert result.exit_code == 2, result.output
    assert message in _text(result)
    assert _state(tmp_path, database_url) == ([], [])


def test_yolo_pose_import_writes_boxes_and_keypoints(database_url, tmp_path):
    root = make_pose(tmp_path / "pose")
    result = _import(tmp_path, database_url, "yolo", str(root), "--dataset", "pose")
    assert result.exit_code == 0, result.output
    assert "2 new items" in _text(result)
    assert f"{2 * len(PEOPLE)} annotations written" in _text(result)
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        stored = client.get_dataset("pose").annotations()
    assert sorted(a.type for a in stored) == ["box"] * len(PEOPLE) + ["keypoints"] * len(PEOPLE)
