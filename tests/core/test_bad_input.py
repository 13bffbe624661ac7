"""Bad input gets a clear, typed error naming the offending item, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import ocula
from ocula import (
    BoxAnnotation,
    BoxPrediction,
    DatasetItem,
    KeypointsAnnotation,
    PolygonAnnotation,
)
from ocula.errors import (
    AnnotationTypeError,
    BatchError,
    ConflictError,
    DuplicateIdError,
    GeometryError,
    ImageError,
    MetadataError,
    NotFoundError,
    ValidationError,
)


@pytest.fixture
def ds(client: ocula.Client, images: list[Path]) -> ocula.Dataset:
    ds = client.create_dataset("bad", allowed_types=["box", "category"])
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(images[:3])])
    return ds


def _single(exc: BatchError) -> ocula.errors.OculaError:
    assert len(exc.errors) == 1, exc.errors
    return exc.errors[0]


def _assert_unchanged(ds: ocula.Dataset, items: int = 3, annotations: int = 0) -> None:
    info = ds.info()
    assert (info["length"], info["annotation_count"]) == (items, annotations)


def test_duplicate_reference_ids_in_one_batch(ds: ocula.Dataset, images: list[Path]) -> None:
    with pytest.raises(BatchError) as err:
        ds.append([DatasetItem(str(images[3]), "new"), DatasetItem(str(images[4]), "new")])
    e = _single(err.value)
    assert isinstance(e, DuplicateIdError) and e.reference_id == "new"
    _assert_unchanged(ds)


def test_missing_path_and_unreadable_and_truncated_images(ds: ocula.Dataset,
                                                          tmp_path: Path,
                                                          images: list[Path]) -> None:
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(images[0].read_bytes()[:-200])
    cut_png = tmp_path / "cut.png"
    Image.new("RGB", (20, 20)).save(cut_png)
    cut_png.write_bytes(cut_png.read_bytes()[:-12])
    items = [DatasetItem(str(images[3]), "good"),
             DatasetItem(str(tmp_path / "nope.jpg"), "missing"),
             DatasetItem(str(garbage), "garbage"),
             DatasetItem(str(truncated), "cut"),
             DatasetItem(str(cut_png), "cutpng")]
    with pytest.raises(BatchError) as err:
        ds.append(items)
    by_ref = {e.reference_id: e for e in err.value.errors}
    assert set(by_ref) == {"missing", "garbage", "cut", "cutpng"}
    assert all(isinstance(e, ImageError) for e in by_ref.values())
    assert "does not exist" in by_ref["missing"].message
    assert all("truncated" in by_ref[r].message.lower() for r in ("cut", "cutpng"))
    _assert_unchanged(ds)
    # The same batch in skip mode keeps the good item and reports the rest.
    out = ds.append(items, on_error="skip")
    assert out["new_items"] == 1 and len(out["errors"]) == 4
    assert {e["reference_id"] for e in out["errors"]} == set(by_ref)


def test_decompression_bomb_guard_stays_on(ds: ocula.Dataset, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    # A tiny file that claims more pixels than Pillow's guard allows.
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None
    Image.new("1", (20000, (limit // 20000) + 10)).save(bomb)
    with pytest.raises(BatchError) as err:
        ds.append([DatasetItem(str(bomb), "bomb")])
    assert isinstance(_single(err.value), ImageError)


def test_metadata_not_json(ds: ocula.Dataset, images: list[Path]) -> None:
    for bad in ({"when": object()}, {"x": float("nan")}, ["not", "a", "dict"]):
        with pytest.raises(BatchError) as err:
            ds.append([DatasetItem(str(images[3]), "m", bad)])  # type: ignore[arg-type]
        e = _single(err.value)
        assert isinstance(e, MetadataError) and e.reference_id == "m"
    _assert_unchanged(ds)


def test_missing_reference_id_and_location(ds: ocula.Dataset, images: list[Path]) -> None:
    with pytest.raises(BatchError) as err:
        ds.append([DatasetItem(str(images[3]), None), DatasetItem(None, "noloc")])
    messages = " | ".join(e.message for e in err.value.errors)
    assert "no reference_id" in messages and "no image_location" in messages


def test_annotation_errors_name_the_item_and_write_nothing(ds: ocula.Dataset) -> None:
    bad = {
        "unknown": (BoxAnnotation("p", 1, 1, 5, 5, reference_id="ghost"), NotFoundError),
        "negative": (BoxAnnotation("p", 1, 1, -5, 5, reference_id="r0"), GeometryError),
        "outside": (BoxAnnotation("p", 60, 1, 50, 5, reference_id="r1"), GeometryError),
        "nan": (BoxAnnotation("p", float("nan"), 1, 5, 5, reference_id="r2"), GeometryError),
        "nolabel": (BoxAnnotation("", 1, 1, 5, 5, reference_id="r0"), ValidationError),
        "type": (PolygonAnnotation("p", [(1, 1), (2, 2), (3, 1)], reference_id="r0"),
                 AnnotationTypeError),
    }
    good = BoxAnnotation("p", 1, 1, 5, 5, reference_id="r0", annotation_id="ok")
    for name, (ann, kind) in bad.items():
        with pytest.raises(BatchError) as err:
            ds.annotate([good, ann])
        e = _single(err.value)
        assert isinstance(e, kind), (name, e)
        assert e.reference_id == ann.reference_id
    _assert_unchanged(ds)


def test_duplicate_annotation_ids(ds: ocula.Dataset) -> None:
    with pytest.raises(BatchError) as err:
        ds.annotate([BoxAnnotation("p", 1, 1, 5, 5, reference_id="r0", annotation_id="a"),
                     BoxAnnotation("q", 2, 1, 5, 5, reference_id="r0", annotation_id="a")])
    assert isinstance(_single(err.value), DuplicateIdError)
    _assert_unchanged(ds)


def test_prediction_errors(client: ocula.Client, ds: ocula.Dataset) -> None:
    model = client.add_model("m", "m")
    for pred in (BoxPrediction("p", 1, 1, 5, 5, reference_id="r0", confidence=1.5),
                 BoxPrediction("p", 1, 1, 5, 5, reference_id="r0", confidence=float("nan")),
                 BoxPrediction("p", 1, 1, 5, 5, reference_id="ghost", confidence=0.5),
                 BoxPrediction("p", 1, 1, 5, 5, reference_id="r0", confidence=0.5,
                               metadata={"bad": {1, 2}})):
        with pytest.raises(BatchError):
            model.create_run("r", ds, [pred])
    assert ds.model_runs == []
    with pytest.raises(BatchError):
        model.create_run("r", ds, [BoxAnnotation("p", 1, 1, 5, 5, reference_id="r0")])


def test_not_found_and_conflicts(client: ocula.Client, ds: ocula.Dataset) -> None:
    with pytest.raises(NotFoundError):
        client.get_dataset("ds_doesnotexist")
    with pytest.raises(NotFoundError):
        ds.refloc("nope")
    with pytest.raises(NotFoundError):
        ds.delete_item("nope")
    assert client.create_dataset("bad").id != ds.id  # names are labels, not ids
    with pytest.raises(NotFoundError):
        ds.create_slice("s", ["r0", "ghost"])
    assert ds.slices == []
    ds.create_slice("s", ["r0"])
    with pytest.raises(ConflictError):
        ds.create_slice("s", ["r1"])
    with pytest.raises(ValidationError):
        client.create_dataset("", allowed_types=None)
    with pytest.raises(ValidationError):
        client.create_dataset("x", allowed_types=["hexagon"])


def test_metadata_update_errors(ds: ocula.Dataset, client: ocula.Client) -> None:
    backend = client._backend
    for bad in ([{"metadata": {"a": 1}}], [{"reference_id": None, "metadata": {}}],
                [{"reference_id": "r0", "metadata": [1]}],
                [{"reference_id": "r0", "metadata": {"a": 1}},
                 {"reference_id": "r0", "metadata": {"a": 2}}]):
        with pytest.raises(BatchError):
            backend.update_metadata(ds.id, bad)
    with pytest.raises(NotFoundError):
        ds.update_item_metadata({"ghost": {"a": 1}})
    assert ds.refloc("r0")["item"].metadata == {}


def test_nul_characters_are_refused_alike_on_every_backend(client: ocula.Client,
                                                           ds: ocula.Dataset,
                                                           images: list[Path]) -> None:
    """PostgreSQL stores no NUL character in text or JSON. Refused at the boundary on
    SQLite too, with an error naming the item, instead of a driver error (or, on
    SQLite, a dataset that could not move to PostgreSQL); a lone backslash-u0000
    written out as six characters is ordinary text."""
    bad_items = {
        "reference_id": DatasetItem(str(images[3]), "r\x00x"),
        "image_location": DatasetItem(str(images[3]) + "\x00", "r3"),
        "metadata": DatasetItem(str(images[3]), "r3", {"note": {"deep": ["a\x00"]}}),
        "metadata key": DatasetItem(str(images[3]), "r3", {"k\x00": 1}),
    }
    for what, item in bad_items.items():
        with pytest.raises(BatchError) as err:
            ds.append([DatasetItem(str(images[4]), "r4"), item])
        error = _single(err.value)
        assert "NUL" in str(error), what
        assert error.reference_id == item.reference_id
    _assert_unchanged(ds)

    box = dict(x=1, y=1, width=2, height=2)
    bad_annotations = [
        BoxAnnotation("car\x00", reference_id="r0", annotation_id="a", **box),
        BoxAnnotation("car", reference_id="r0", annotation_id="a\x00", **box),
        BoxAnnotation("car", reference_id="r0", annotation_id="a", metadata={"n": "\x00"},
                      **box),
    ]
    for bad in bad_annotations:
        good = [BoxAnnotation("car", reference_id=f"r{i}", annotation_id=f"g{i}", **box)
                for i in range(3)]
        for batch in (good + [bad], [bad]):  # column-wise, and with one box only
            with pytest.raises(BatchError) as err:
                ds.annotate(batch)
            error = _single(err.value)
            assert "NUL" in str(error) and error.reference_id == "r0"
    with pytest.raises(BatchError) as err:  # no item can have such a reference_id
        ds.annotate([BoxAnnotation("car", reference_id="r\x000", **box)])
    assert isinstance(_single(err.value), NotFoundError)
    _assert_unchanged(ds)

    model = client.add_model("m", "m")
    with pytest.raises(BatchError) as err:
        model.create_run("run", ds, [BoxPrediction("car\x00", reference_id="r1",
                                                   confidence=0.5, **box)])
    assert "NUL" in str(_single(err.value))
    for make in (lambda: client.create_dataset("a\x00b"),
                 lambda: ds.create_slice("s\x00", ["r0"]),
                 lambda: client.add_model("m\x00", "m2"),
                 lambda: model.create_run("run\x00", ds, [])):
        with pytest.raises(ValidationError, match="NUL"):
            make()

    literal = "\\u0000"  # six characters
    ds.append([DatasetItem(str(images[4]), "r4", {"note": literal})])
    ds.annotate([BoxAnnotation(literal, reference_id="r4", annotation_id=literal,
                               metadata={literal: literal}, **box)])
    (stored,) = ds.annotations(reference_ids=["r4"])
    assert (stored.label, stored.annotation_id, stored.metadata) == (
        literal, literal, {literal: literal})
    assert ds.refloc("r4")["item"].metadata == {"note": literal}


def test_nul_in_keypoint_names_and_class_pdf_classes(client: ocula.Client,
                                                     images: list[Path]) -> None:
    ds = client.create_dataset("texts")
    ds.append([DatasetItem(str(images[0]), "r0")])
    with pytest.raises(BatchError) as err:
        ds.annotate([KeypointsAnnotation("person", [(1, 1), (2, 2)], names=["nose", "ey\x00e"],
                                         reference_id="r0")])
    assert "keypoint name" in str(_single(err.value))
    model = client.add_model("m", "m")
    box = dict(x=1, y=1, width=2, height=2, reference_id="r0", confidence=0.5)
    for batch in ([BoxPrediction("car", class_pdf={"car": 0.5, "b\x00us": 0.5}, **box)],
                  [BoxPrediction("car", **box),
                   BoxPrediction("car", class_pdf={"c\x00": 1.0}, **box)]):
        with pytest.raises(BatchError) as err:
            model.create_run("run", ds, batch)
        assert "class_pdf class" in str(_single(err.value))
    run = model.create_run("run", ds, [BoxPrediction("car", class_pdf={"car": 1.0}, **box)])
    assert run.info()["prediction_count"] == 1
    assert ds.info()["annotation_count"] == 0
