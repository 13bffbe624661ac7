"""``ocula eval`` on real-shaped COCO files (see ``coco_files_synth``): every number equal
to pycocotools' own, for bbox, segm and keypoints, on every form results are written in."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ocula.cli.main import app
from ocula.core.evaluation.coco_files import evaluate_inputs, load_coco
from ocula.errors import OculaError, ValidationError
from tests.evaluation.coco_files_synth import RESULT_FORMS, coco_pair, pycocotools_stats

BOX_AND_MASK_FORMS = [f for f in RESULT_FORMS if not f.startswith("keypoints")]


CASES = ([(form, iou_type) for form in BOX_AND_MASK_FORMS for iou_type in ("bbox", "segm")]
         + [(form, iou_type) for form in ("keypoints", "keypoints+box")
            for iou_type in ("bbox", "keypoints")])


@pytest.mark.parametrize(("form", "iou_type"), CASES)
def test_generated_files_equal_pycocotools(form: str, iou_type: str) -> None:
    for seed in range(24):
        gt, results = coco_pair(seed, form=form, string_ids=seed % 4 == 1)
        expected = pycocotools_stats(gt, results, iou_type).tolist()
        inputs = load_coco(copy.deepcopy(gt), copy.deepcopy(results), iou_type)
        assert evaluate_inputs(inputs).stats.tolist() == expected, seed
        assert any("not in the ground truth" in w for w in inputs.warnings)


def test_the_generated_files_hold_what_real_files_hold() -> None:
    """A guard on the generator: the corner cases are really in the files."""
    seen = set()
    for seed in range(24):
        for form in BOX_AND_MASK_FORMS:
            gt, results = coco_pair(seed, form=form, string_ids=seed % 4 == 1)
            ids = [img["id"] for img in gt["images"]]
            seen.add("unsorted" if ids != sorted(ids) else "sorted")
            seen.add("string ids" if isinstance(ids[0], str) else "int ids")
            seen.add("huge ids" if max(map(str, ids), key=len) and any(
                isinstance(i, int) and i > 2**31 for i in ids) else "small ids")
            for ann in gt["annotations"]:
                seg = ann["segmentation"]
                if isinstance(seg, dict):
                    seen.add("compressed RLE" if isinstance(seg["counts"], str)
                             else "uncompressed RLE")
                elif len(seg) > 1:
                    seen.add("multi-part polygon")
            with_gt = {a["image_id"] for a in gt["annotations"]}
            if set(ids) - with_gt:
                seen.add("image without annotations")
            used = {a["category_id"] for a in gt["annotations"]}
            if {c["id"] for c in gt["categories"]} - used:
                seen.add("category without ground truth")
            if any(r.get("category_id") == 999 for r in results):
                seen.add("unknown category in results")
            if any("bbox" in r and "segmentation" in r for r in results):
                seen.add("bbox and segmentation")
            if any("bbox" not in r for r in results):
                seen.add("segmentation only")
            if any("area" in r for r in results):
                seen.add("stale area")
            scores = [r["score"] for r in results]
            if len(scores) != len(set(scores)):
                seen.add("equal scores")
    assert seen >= {"unsorted", "string ids", "int ids", "huge ids", "compressed RLE",
                    "uncompressed RLE", "multi-part polygon", "image without annotations",
                    "category without ground truth", "unknown category in results",
                    "bbox and segmentation", "segmentation only", "stale area",
                    "equal scores"}


def test_cli_iou_types(tmp_path: Path) -> None:
    gt, results = coco_pair(5, form="box+segm")
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    kp_gt, kp_results = coco_pair(4, form="keypoints")
    kp_gt_path, kp_res_path = tmp_path / "kp_gt.json", tmp_path / "kp_res.json"
    kp_gt_path.write_text(json.dumps(kp_gt))
    kp_res_path.write_text(json.dumps(kp_results))
    for iou_type in ("bbox", "segm", "keypoints"):
        if iou_type == "keypoints":
            gt, results, gt_path, res_path = kp_gt, kp_results, kp_gt_path, kp_res_path
        out = tmp_path / f"{iou_type}.json"
        result = CliRunner().invoke(app, ["eval", str(gt_path), str(res_path), "--iou-type",
                                          iou_type, "--json", str(out)])
        assert result.exit_code == 0, result.output
        assert f"COCO {iou_type} evaluation" in result.output
        assert "predictions refer to images not in" in result.output
        body = json.loads(out.read_text())
        assert list(body["stats"].values()) == pycocotools_stats(gt, results, iou_type).tolist()
    result = CliRunner().invoke(app, ["eval", str(gt_path), str(res_path), "--iou-type", "x"])
    assert result.exit_code == 2 and "--iou-type must be one of" in result.output


def test_ids_of_another_type_are_refused_by_the_cli(tmp_path: Path) -> None:
    gt, results = coco_pair(5, form="box")
    gt["images"][0]["id"] = str(gt["images"][0]["id"])
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    result = CliRunner().invoke(app, ["eval", str(gt_path), str(res_path)])
    assert result.exit_code == 2
    with pytest.raises(ValidationError, match="mix integers and strings"):
        load_coco(gt, results)


def test_a_mixed_results_file_is_read_record_by_record_where_pycocotools_crashes(
        tmp_path: Path) -> None:
    from tests.core.test_commit_coco_files import write_pair

    gt, results = coco_pair(2, form="box+segm")
    results[1].pop("bbox")  # the first result has a box; this one is mask-only
    expected = pycocotools_stats(gt, [results[1]], "bbox")  # alone: the segm branch
    alone = load_coco(copy.deepcopy(gt), [copy.deepcopy(results[1])], "bbox")
    mixed = load_coco(copy.deepcopy(gt), copy.deepcopy(results), "bbox")
    assert mixed.dt.area[1] == alone.dt.area[0] and (mixed.dt.bbox[1] == alone.dt.bbox[0]).all()
    assert evaluate_inputs(alone).stats.tolist() == expected.tolist()
    # The catalog reads it the same way: the mask's pixel count is the stored area.
    write_pair(tmp_path, gt, results)
    from ocula import io

    data = io.import_coco(tmp_path / "gt.json", tmp_path / "images")
    preds = io.import_coco_results(tmp_path / "results.json", data)
    [mask] = [p for p in preds if p.annotation_id == "2/mask"]
    assert mask.area == alone.dt.area[0]


def _columns(inputs: Any) -> list[list[Any]]:
    return [getattr(side, name).tolist() for side in (inputs.gt, inputs.dt)
            for name in ("image", "label", "bbox", "area", "id")] + [inputs.dt.score.tolist()]


@pytest.mark.parametrize("seed", range(8))
def test_whole_columns_read_as_record_by_record(seed: int) -> None:
    """Plain JSON (dicts, lists, ints and floats) is read by whole columns; the same file
    with other mappings and numpy numbers is read record by record: the same columns."""
    gt, results = coco_pair(seed, form="box", string_ids=seed % 2 == 1)
    fast = load_coco(copy.deepcopy(gt), copy.deepcopy(results), "bbox")
    odd_gt, odd_results = copy.deepcopy(gt), copy.deepcopy(results)
    odd_gt["annotations"] = [MappingProxyType(a) for a in odd_gt["annotations"]]
    odd_gt["annotations"][0]["bbox"][0] = np.float64(odd_gt["annotations"][0]["bbox"][0])
    odd_results = [MappingProxyType(r) for r in odd_results]
    odd_results[-1]["bbox"][1] = np.float64(odd_results[-1]["bbox"][1])
    slow = load_coco(odd_gt, odd_results, "bbox")
    assert _columns(slow) == _columns(fast)
    assert slow.warnings == fast.warnings


@pytest.mark.parametrize(("field", "value", "message"), [
    ("score", True, "'score' must be a number"),
    ("score", "0.5", "'score' must be a number"),
    ("bbox", [1, 2, 3], "'bbox' must be \\[x, y, width, height\\]"),
    ("bbox", [1, 2, "3", None], "'bbox' must hold numbers"),
])
def test_a_bad_result_is_named_as_before(field: str, value: Any, message: str) -> None:
    gt, results = coco_pair(3, form="box")
    known = {img["id"] for img in gt["images"]}
    k = next(i for i, r in enumerate(results) if r["image_id"] in known)
    results[k][field] = value
    with pytest.raises(OculaError, match=f"result #{k}: {message}"):
        load_coco(gt, results, "bbox")
