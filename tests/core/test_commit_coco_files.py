"""Real-shaped COCO files through the path a user takes: ``import_coco`` → append →
``import_coco_results`` → ``create_run`` → ``commit`` → ``metrics``, on SQLite and
PostgreSQL, against pycocotools itself (all 12 numbers, or 10 for keypoints: COCO's
person sigmas, 17 keypoints).

The files come from :mod:`tests.evaluation.coco_files_synth` (crowd RLE, multi-part
polygons, unsorted images, stale result areas, box+mask and mask-only results, string
ids, ...). The same files go through ``ocula eval`` in
``tests/evaluation/test_eval_coco_files.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import ocula
from ocula import io
from tests.evaluation.coco_files_synth import coco_pair, pycocotools_stats

# (form of the results, iou types to score, seeds): a few files per form on both
# databases; the randomized breadth runs in tests/evaluation on the CLI path.
CASES = [
    ("box", ("bbox",), (0, 7)),
    ("box+segm", ("bbox", "segm"), (1, 8)),
    ("segm", ("bbox", "segm"), (2, 9)),
    ("segm-then-box", ("bbox", "segm"), (3,)),
    ("keypoints", ("bbox", "keypoints"), (4, 10)),
    ("keypoints+box", ("bbox", "keypoints"), (5, 11)),
]


def write_pair(folder: Path, gt: dict[str, Any], results: list[dict[str, Any]]
               ) -> tuple[Path, Path]:
    """The two JSON files and real images of the sizes the ground truth states."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for k, img in enumerate(gt["images"]):
        Image.new("RGB", (img["width"], img["height"]), (k * 37 % 255, 90, 160)).save(
            images / img["file_name"])
    gt_path, res_path = folder / "gt.json", folder / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path


def catalog_stats(client: ocula.Client, gt_path: Path, res_path: Path, name: str,
                  iou_types: tuple[str, ...]) -> dict[str, np.ndarray]:
    data = io.import_coco(gt_path, gt_path.parent / "images")
    # As `ocula import coco` does: the categories (their id order) stay with the dataset.
    ds = client.create_dataset(name, metadata=data.info)
    ds.append(data.items)
    ds.annotate(data.annotations)
    preds = io.import_coco_results(res_path, data)
    run = client.add_model(name, name).create_run(name, ds, preds)
    out = {}
    for iou_type in iou_types:
        run.commit(iou_type=iou_type)
        out[iou_type] = np.array(list(run.metrics(iou_type=iou_type)["stats"].values()))
    return out


@pytest.mark.parametrize(("form", "iou_types", "seeds"), CASES,
                         ids=[c[0] for c in CASES])
def test_imported_files_commit_to_pycocotools_numbers(client: ocula.Client, tmp_path: Path,
                                                      form, iou_types, seeds) -> None:
    for seed in seeds:
        gt, results = coco_pair(seed, form=form, string_ids=seed % 2 == 1)
        gt_path, res_path = write_pair(tmp_path / f"s{seed}", gt, results)
        got = catalog_stats(client, gt_path, res_path, f"{form}-{seed}", iou_types)
        for iou_type in iou_types:
            expected = pycocotools_stats(gt, results, iou_type)
            assert got[iou_type].tolist() == expected.tolist(), (seed, iou_type)
