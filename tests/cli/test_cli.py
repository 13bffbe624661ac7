"""The command line on a real catalog: import -> datasets -> export -> re-import."""

from __future__ import annotations

import json
from operator import attrgetter
from pathlib import Path

from typer.testing import CliRunner

import ocula
from ocula.cli.main import app
from ocula.io import import_cvat
from tests.conftest import make_images

runner = CliRunner()


def _text(result) -> str:  # rich wraps lines at the terminal width
    return " ".join(result.output.split())


def _coco(tmp_path: Path) -> tuple[Path, Path, Path]:
    images = make_images(tmp_path / "images", 3, size=(100, 80))
    gt = {
        "images": [{"id": i + 1, "file_name": p.name, "width": 100, "height": 80}
                   for i, p in enumerate(images)],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 40], "area": 800,
             "iscrowd": 0},
            {"id": 11, "image_id": 2, "category_id": 2, "bbox": [30, 10, 40, 20], "area": 800,
             "iscrowd": 0},
            {"id": 12, "image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500,
             "iscrowd": 1},
        ],
    }
    results = [{"image_id": 1, "category_id": 1, "bbox": [6, 5, 20, 39], "score": 0.9},
               {"image_id": 2, "category_id": 1, "bbox": [30, 10, 40, 20], "score": 0.4}]
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    pred_path = tmp_path / "results.json"
    pred_path.write_text(json.dumps(results))
    return gt_path, pred_path, tmp_path / "images"


def test_import_export_roundtrip(database_url: str, tmp_path: Path) -> None:
    gt_path, pred_path, images = _coco(tmp_path)
    common = ["--home", str(tmp_path / "home"), "--database-url", database_url]
    result = runner.invoke(app, ["import", "coco", str(gt_path), "--images", str(images),
                                 "--dataset", "cli", "--predictions", str(pred_path),
                                 "--model", "frcnn", *common])
    assert result.exit_code == 0, result.output
    assert "3 new items" in _text(result) and "3 annotations written" in _text(result)
    assert "2 predictions" in _text(result)

    result = runner.invoke(app, ["datasets", *common])
    assert result.exit_code == 0 and "cli" in result.output

    out = tmp_path / "export.json"
    result = runner.invoke(app, ["export", "cli", str(out), *common])
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text())
    assert len(exported["images"]) == 3 and len(exported["annotations"]) == 3
    assert sorted(a["iscrowd"] for a in exported["annotations"]) == [0, 0, 1]

    # Importing the same file again is a no-op (idempotent).
    result = runner.invoke(app, ["import", "coco", str(gt_path), "--images", str(images),
                                 "--dataset", "cli", *common])
    assert "0 new items, 3 already present" in _text(result)
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        run = client.get_dataset("cli").get_run("frcnn")
        summary = run.commit()
        assert (summary["tp"], summary["fp"], summary["fn"]) == (1, 1, 1)


def test_clear_errors_and_exit_codes(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    result = runner.invoke(app, ["import", "coco", str(tmp_path / "missing.json"),
                                 "--dataset", "x", *home])
    assert result.exit_code == 2 and "error:" in _text(result)
    result = runner.invoke(app, ["export", "nope", str(tmp_path / "o.json"), *home])
    assert result.exit_code == 2 and "no dataset 'nope'" in _text(result)
    result = runner.invoke(app, ["import", "tiff", str(tmp_path), "--dataset", "x", *home])
    assert result.exit_code != 0


def test_slice_commit_and_metrics_from_the_cli(database_url: str, tmp_path: Path) -> None:
    gt_path, pred_path, images = _coco(tmp_path)
    common = ["--home", str(tmp_path / "home"), "--database-url", database_url]
    runner.invoke(app, ["import", "coco", str(gt_path), "--images", str(images),
                        "--dataset", "cli", "--predictions", str(pred_path),
                        "--model", "frcnn", *common])
    result = runner.invoke(app, ["slices", "create", "cli", "test", "img_0000.jpg",
                                 "img_0001.jpg", *common])
    assert result.exit_code == 0 and "2 items" in _text(result), result.output
    result = runner.invoke(app, ["runs", "commit", "cli", "frcnn", *common])
    assert result.exit_code == 0 and "1 TP, 1 FP, 1 FN" in _text(result), result.output
    result = runner.invoke(app, ["runs", "metrics", "cli", "frcnn", "--slice", "test",
                                 "--json", *common])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["slice"] == "test" and set(metrics["stats"]) >= {"AP", "AP50", "AR100"}
    result = runner.invoke(app, ["runs", "metrics", "cli", "nope", *common])
    assert result.exit_code == 2 and "no model run" in _text(result)


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><labels>
    <label><name>car</name><attributes><attribute><name>parked</name>
      <input_type>checkbox</input_type><default_value>false</default_value>
      <values>false</values></attribute></attributes></label>
    <label><name>road</name><attributes/></label>
    <label><name>day</name><attributes/></label>
  </labels></task></meta>
  <image id="0" name="img_0000.jpg" width="100" height="80" subset="train">
    <box label="car" source="manual" occluded="1" xtl="5.5" ytl="5" xbr="25" ybr="45.25"
         rotation="30" z_order="1" group_id="2"><attribute name="parked">true</attribute></box>
    <polygon label="road" occluded="0" points="0,60;99.5,60;99.5,79;0,79" z_order="0"/>
    <points label="car" occluded="0" points="10,10;20.5,30"/>
    <polyline label="road" occluded="0" points="1,1;2,2"/>
    <ellipse label="car" occluded="0" cx="50" cy="40" rx="5" ry="4"/>
    <tag label="day" source="manual"/>
  </image>
  <image id="1" name="img_0001.jpg" width="100" height="80">
    <mask label="road" occluded="0" rle="3, 2, 1, 4" left="90" top="70" width="5" height="2"/>
  </image>
</annotations>
"""


def test_cvat_import_and_export_roundtrip(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "cvat"
    make_images(folder / "images", 2, size=(100, 80))
    (folder / "annotations.xml").write_text(CVAT)
    common = ["--home", str(tmp_path / "home"), "--database-url", database_url]
    result = runner.invoke(app, ["import", "cvat", str(folder), "--dataset", "cv", *common])
    assert result.exit_code == 0, result.output
    assert "2 new items" in _text(result) and "6 annotations written" in _text(result)
    assert "1 x <ellipse>: skipped" in _text(result)  # a polyline is a line now

    out = tmp_path / "export.xml"
    result = runner.invoke(app, ["export", "cv", str(out), "--format", "cvat", *common])
    assert result.exit_code == 0, result.output
    assert "2 images, 6 annotations, 3 categories" in _text(result)
    before, after = import_cvat(folder), import_cvat(out, folder / "images")
    assert [i.to_payload() for i in after.items] == [i.to_payload() for i in before.items]
    by_id = attrgetter("annotation_id")
    assert [a.to_payload() for a in sorted(after.annotations, key=by_id)] == \
        [a.to_payload() for a in sorted(before.annotations, key=by_id)]
    result = runner.invoke(app, ["export", "cv", str(out), "--format", "voc", *common])
    assert result.exit_code != 0 and "expected coco or cvat" in _text(result)


def test_a_name_two_datasets_share_is_refused_with_their_ids(database_url: str,
                                                             tmp_path: Path) -> None:
    """Dataset names are labels (as in Nucleus): where the command line looks a dataset
    up by name and two have it, it stops and lists the ids instead of guessing."""
    gt_path, _, images = _coco(tmp_path)
    common = ["--home", str(tmp_path / "home"), "--database-url", database_url]
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        ids = [client.create_dataset("twin").id, client.create_dataset("twin").id]
    result = runner.invoke(app, ["export", "twin", str(tmp_path / "o.json"), *common])
    assert result.exit_code != 0 and all(i in _text(result) for i in ids), result.output
    assert "by its id" in _text(result)
    result = runner.invoke(app, ["import", "coco", str(gt_path), "--images", str(images),
                                 "--dataset", "twin", *common])
    assert result.exit_code != 0 and all(i in _text(result) for i in ids), result.output
    with ocula.Client(home=tmp_path / "home", database_url=database_url) as client:
        assert [client.get_dataset(i).info()["length"] for i in ids] == [0, 0]
    result = runner.invoke(app, ["export", ids[1], str(tmp_path / "o.json"), *common])
    assert result.exit_code == 0, result.output
