"""Embedded use (and so the importers): lone surrogates and deep or big metadata are
refused with a typed error on both backends, nothing written, the dataset still
readable (docs/limits.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ocula
from ocula import BoxAnnotation, BoxPrediction, DatasetItem
from ocula.core.validation import (
    MAX_CATALOG_METADATA_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
)
from ocula.errors import BatchError, MetadataError, OculaError, ValidationError
from tests.conftest import nested_metadata

BOX = dict(x=1, y=1, width=2, height=2)
LONE = "\ud800"


@pytest.fixture
def ds(client: ocula.Client, images: list[Path]) -> ocula.Dataset:
    ds = client.create_dataset("limits")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(images[:2])])
    ds.annotate([BoxAnnotation("car", reference_id="r0", annotation_id="a0", **BOX)])
    return ds


def _readable(client: ocula.Client, ds: ocula.Dataset) -> tuple[Any, ...]:
    """Reads that must keep working, and what they show."""
    items = client._backend.list_items(ds.id)["items"]
    json.dumps(items, allow_nan=False).encode()  # the way a server answers
    objects = list(ds.query_objects('label = "car"'))
    return (json.dumps(items), len(ds.annotations()), len(objects),
            len(client.list_datasets()), len(client._backend.list_models()))


def _errors(exc: OculaError) -> list[OculaError]:
    return exc.errors if isinstance(exc, BatchError) else [exc]


def test_lone_surrogates_are_refused(client: ocula.Client, ds: ocula.Dataset,
                                     images: list[Path]) -> None:
    model = client.add_model("m", "m")
    before = _readable(client, ds)
    attempts = [
        lambda: ds.append([DatasetItem(str(images[2]), "r" + LONE)]),
        lambda: ds.append([DatasetItem(str(images[2]) + LONE, "r2")]),
        lambda: ds.append([DatasetItem(str(images[2]), "r2", {"k": [LONE]})]),
        lambda: ds.append([DatasetItem(str(images[2]), "r2", {LONE: 1})]),
        lambda: ds.annotate([BoxAnnotation("c" + LONE, reference_id="r1", **BOX)]),
        lambda: ds.annotate([BoxAnnotation("car", reference_id="r1", annotation_id=LONE,
                                           **BOX)]),
        lambda: ds.annotate([BoxAnnotation("car", reference_id="r1", metadata={"k": LONE},
                                           **BOX)]),
        # Column-wise: a batch of good boxes and one bad.
        lambda: ds.annotate([BoxAnnotation("car", reference_id="r0", **BOX),
                             BoxAnnotation("ca" + LONE, reference_id="r1", **BOX)]),
        lambda: ds.annotate([BoxAnnotation("car", reference_id=LONE, **BOX)]),
        lambda: model.create_run("run", ds, [BoxPrediction("c" + LONE, reference_id="r1",
                                                           confidence=0.5, **BOX)]),
        lambda: ds.update_item_metadata({"r0": {"k": LONE}}),
        lambda: client.create_dataset("d" + LONE),
        lambda: client.create_dataset("d2", metadata={"k": LONE}),
        lambda: client.add_model("m" + LONE, "m2"),
        lambda: ds.create_slice("s" + LONE, ["r0"]),
        lambda: model.create_run("run" + LONE, ds, []),
    ]
    for i, attempt in enumerate(attempts):
        with pytest.raises(ValidationError) as err:
            attempt()
        assert any("surrogate" in e.message or "unknown reference_id" in e.message
                   for e in _errors(err.value)), (i, err.value)
    assert _readable(client, ds) == before
    # An astral character is text: kept.
    ds.append([DatasetItem(str(images[2]), "r\U0001f600", {"k": "\U0001f600"})])
    assert ds.refloc("r\U0001f600")["item"].metadata == {"k": "\U0001f600"}


@pytest.mark.parametrize("how", ["deep", "very deep", "big"])
def test_deep_or_big_metadata_is_refused(client: ocula.Client, ds: ocula.Dataset,
                                         images: list[Path], how: str) -> None:
    md = {"deep": nested_metadata(MAX_METADATA_DEPTH + 1), "very deep": nested_metadata(5000),
          "big": {"pad": "é" * (MAX_METADATA_BYTES // 2)}}[how]
    catalog_md = {"pad": "x" * MAX_CATALOG_METADATA_BYTES} if how == "big" else md
    model = client.add_model("m", "m")
    run = model.create_run("run", ds, [])
    before = _readable(client, ds)
    attempts = [
        lambda: ds.append([DatasetItem(str(images[2]), "r2", md)]),
        lambda: ds.append([DatasetItem(str(images[0]), "r0", md)], update=True),
        lambda: ds.annotate([BoxAnnotation("car", reference_id="r1", metadata=md, **BOX)]),
        # Column-wise: plain boxes, the bad one among good ones.
        lambda: ds.annotate([BoxAnnotation("car", reference_id="r1", annotation_id=f"b{i}",
                                           metadata={"ok": i} if i else md, **BOX)
                             for i in range(3)]),
        lambda: run.predict([BoxPrediction("car", reference_id="r1", confidence=0.5,
                                           metadata=md, **BOX)]),
        lambda: ds.update_item_metadata({"r0": md}),
        lambda: client.create_dataset("d2", metadata=catalog_md),
        lambda: client.add_model("m2", "m2", metadata=catalog_md),
        lambda: model.create_run("run2", ds, [], metadata=catalog_md),
    ]
    for i, attempt in enumerate(attempts):
        with pytest.raises(ValidationError) as err:
            attempt()
        assert all(isinstance(e, MetadataError) for e in _errors(err.value)), (i, err.value)
    assert _readable(client, ds) == before
    assert run.info()["prediction_count"] == 0


def test_metadata_at_the_limits_is_kept(client: ocula.Client, ds: ocula.Dataset) -> None:
    deepest = nested_metadata(MAX_METADATA_DEPTH)
    biggest = {"pad": "x" * (MAX_METADATA_BYTES - len('{"pad":""}'))}
    for md in (deepest, biggest):
        ds.update_item_metadata({"r0": md}, replace=True)
        assert ds.refloc("r0")["item"].metadata == md
    ds.annotate([BoxAnnotation("car", reference_id="r1", metadata=biggest, **BOX)])
    # Each update within the limit, the merge past it: refused, the old metadata kept.
    with pytest.raises(BatchError):
        ds.update_item_metadata({"r0": {"more": "y"}})
    assert ds.refloc("r0")["item"].metadata == biggest
