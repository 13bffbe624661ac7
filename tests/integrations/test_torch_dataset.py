"""``Dataset.to_torch``: items and labels in, tensors equal to the stored geometry out,
embedded and from a live server, on SQLite and PostgreSQL; DataLoader workers; split."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ocula import BoxAnnotation, DatasetItem  # noqa: E402
from ocula.client.client import Client  # noqa: E402
from ocula.core.types import MaskAnnotation, PolygonAnnotation  # noqa: E402
from ocula.integrations.pytorch import collate_fn  # noqa: E402
from tests.conftest import make_images  # noqa: E402

W, H = 64, 48


def _mask(x: int, y: int, w: int, h: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y:y + h, x:x + w] = True
    return m


def _build(client: Client, tmp_path: Path, n: int = 6):
    paths = make_images(tmp_path / "imgs", n, size=(W, H))
    ds = client.create_dataset("torch")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    anns: list = []
    for i in range(n):
        ref = f"r{i}"
        anns.append(BoxAnnotation("person", 2 + i, 3, 10.5, 20, reference_id=ref,
                                  annotation_id=f"{ref}-p"))
        if i % 2 == 0:
            anns.append(BoxAnnotation("car", 30, 10 + i, 12, 8, reference_id=ref,
                                      annotation_id=f"{ref}-c"))
    # One object with a box and a mask (parts of one record), one with a mask only.
    anns.append(MaskAnnotation("person", _mask(2, 3, 10, 20), reference_id="r0",
                               annotation_id="r0-p/mask"))
    anns.append(MaskAnnotation("dog", _mask(40, 30, 6, 5), reference_id="r1",
                               annotation_id="r1-d/mask"))
    ds.annotate(anns)
    return ds, anns


def test_round_trip_tensors_equal_stored_geometry(any_client: Client, tmp_path: Path) -> None:
    ds, _ = _build(any_client, tmp_path)
    tds = ds.to_torch()
    assert len(tds) == 6 and tds.labels == ["__background__", "car", "dog", "person"]
    assert tds.label_map == {"car": 1, "dog": 2, "person": 3} and tds.with_masks
    image, target = tds[0]
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, H, W)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert target["reference_id"] == "r0" and target["image_id"] == 0
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    assert target["boxes"].tolist() == [[2.0, 3.0, 12.5, 23.0], [30.0, 10.0, 42.0, 18.0]]
    assert target["labels"].tolist() == [3, 1]
    masks = target["masks"]
    assert masks.dtype == torch.uint8 and tuple(masks.shape) == (2, H, W)
    assert np.array_equal(masks[0].numpy(), _mask(2, 3, 10, 20))   # the stored mask
    assert np.array_equal(masks[1].numpy(), _mask(30, 10, 12, 8))  # box only: filled
    _, t1 = tds[1]   # a mask-only object: its box comes from the mask
    assert t1["boxes"].tolist() == [[3.0, 3.0, 13.5, 23.0], [40.0, 30.0, 46.0, 35.0]]
    assert t1["labels"].tolist() == [3, 2]
    assert np.array_equal(t1["masks"][1].numpy(), _mask(40, 30, 6, 5))
    boxes_only = ds.to_torch(with_masks=False)   # a mask-only object keeps its box
    assert "masks" not in boxes_only.target(1)
    assert boxes_only.target(1)["boxes"].tolist() == t1["boxes"].tolist()
    # The pixels are the file's.
    from PIL import Image

    pixels = np.asarray(Image.open(tmp_path / "imgs" / "img_0000.jpg").convert("RGB"))
    assert np.allclose(image.permute(1, 2, 0).numpy() * 255, pixels, atol=1e-3)


def test_slice_query_version_and_fixed_labels(any_client: Client, tmp_path: Path) -> None:
    ds, _ = _build(any_client, tmp_path)
    ds.tag_version("before-fix")
    ds.annotate([BoxAnnotation("truck", 30, 10, 12, 8, reference_id="r0",
                               annotation_id="r0-c")], update=True)
    ds.create_slice("evens", reference_ids=["r0", "r2", "r4"])
    now = ds.to_torch(slice="evens")
    before = ds.to_torch(slice="evens", annotation_version="before-fix")
    assert now.reference_ids == ["r0", "r2", "r4"]
    via_slice = ds.get_slice("evens").to_torch(annotation_version="before-fix")
    assert via_slice.reference_ids == now.reference_ids
    assert via_slice.target(0)["boxes"].tolist() == before.target(0)["boxes"].tolist()
    assert now.labels == ["__background__", "car", "dog", "person", "truck"]
    assert [now.labels[i] for i in now.target(0)["labels"].tolist()] == ["person", "truck"]
    assert [before.labels[i] for i in before.target(0)["labels"].tolist()] == ["person", "car"]
    hit = ds.to_torch(query='count(label = "car") > 0', labels=["car", "person"])
    assert hit.reference_ids == ["r2", "r4"] and hit.label_map == {"car": 1, "person": 2}
    assert not hit.target(0)["masks"].any() if hit.with_masks else True
    assert ds.to_torch(query='has(label = "dog")', slice="evens").reference_ids == []
    with pytest.raises(ValueError, match="distinct"):
        ds.to_torch(labels=["car", "car"])
    # Crowd boxes are left out for training unless asked for.
    ds.annotate([BoxAnnotation("person", 0, 0, 30, 30, reference_id="r2", iscrowd=True)])
    assert len(ds.to_torch(slice="evens").target(1)["boxes"]) == 2
    crowd = ds.to_torch(slice="evens", include_crowd=True).target(1)
    assert crowd["iscrowd"].tolist() == [0, 0, 1]


def test_polygons_rasterise_and_boxless_images(client: Client, tmp_path: Path) -> None:
    from ocula.core.types import Point

    ds = client.create_dataset("poly")
    paths = make_images(tmp_path / "imgs", 2, size=(W, H))
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    square = [Point(10, 10), Point(20, 10), Point(20, 20), Point(10, 20)]
    ds.annotate([PolygonAnnotation("tile", square, reference_id="r0")])
    tds = ds.to_torch()
    t0, t1 = tds.target(0), tds.target(1)
    assert t0["boxes"].tolist() == [[10.0, 10.0, 20.0, 20.0]]
    assert int(t0["masks"].sum()) == 100
    assert tuple(t1["boxes"].shape) == (0, 4) and tuple(t1["masks"].shape) == (0, H, W)


def test_dataloader_with_two_workers(any_client: Client, tmp_path: Path) -> None:
    ds, _ = _build(any_client, tmp_path)
    tds = ds.to_torch()
    first_image, _ = tds[0]  # the parent reads first: forked workers must not share its client
    # Plain data only: no database handle or socket travels to the workers.
    clone = pickle.loads(pickle.dumps(tds))
    assert clone.target(3)["boxes"].tolist() == tds.target(3)["boxes"].tolist()
    loader = torch.utils.data.DataLoader(tds, batch_size=2, num_workers=2,
                                         collate_fn=tds.collate_fn)
    seen = []
    for images, targets in loader:
        assert len(images) == len(targets) == 2
        assert all(tuple(im.shape) == (3, H, W) for im in images)
        seen += [t["reference_id"] for t in targets]
        if targets[0]["reference_id"] == "r0":
            assert torch.equal(images[0], first_image)
    assert seen == [f"r{i}" for i in range(6)]


def test_collate_and_transform(client: Client, tmp_path: Path) -> None:
    ds, _ = _build(client, tmp_path, n=2)

    def flip(image, target):
        boxes = target["boxes"].clone()
        boxes[:, [0, 2]] = W - target["boxes"][:, [2, 0]]
        return image.flip(-1), {**target, "boxes": boxes}

    tds = ds.to_torch(transform=flip)
    _, target = tds[0]
    assert target["boxes"].tolist()[0] == [W - 12.5, 3.0, W - 2.0, 23.0]
    images, targets = collate_fn([tds[0], tds[1]])
    assert len(images) == 2 and targets[1]["reference_id"] == "r1"
    with pytest.raises(IndexError):
        tds[2]


def test_split_is_reproducible_disjoint_and_stratified(any_client: Client,
                                                       tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 20, size=(W, H))
    ds = any_client.create_dataset("split")
    ds.append([DatasetItem(str(p), f"r{i:02d}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("car" if i < 5 else "person", 1, 1, 5, 5,
                               reference_id=f"r{i:02d}") for i in range(20)])
    first = ds.split({"training_set": 0.7, "test_set": 0.3}, seed=1)
    train, test = (set(first[k].reference_ids) for k in ("training_set", "test_set"))
    assert len(train) == 14 and len(test) == 6 and not train & test
    assert train | test == {f"r{i:02d}" for i in range(20)}
    again = ds.split({"a": 0.7, "b": 0.3}, seed=1)
    assert set(again["a"].reference_ids) == train
    other = ds.split({"c": 0.7, "d": 0.3}, seed=2)
    assert set(other["c"].reference_ids) != train
    strat = ds.split({"s_train": 0.6, "s_test": 0.4}, seed=3, stratify=True)
    cars = {f"r{i:02d}" for i in range(5)}
    assert len(set(strat["s_test"].reference_ids) & cars) == 2
    assert len(strat["s_test"].reference_ids) == 8
    within = ds.split({"w": 0.5}, seed=0, slice="s_test")
    assert set(within["w"].reference_ids) < set(strat["s_test"].reference_ids)
    assert len(within["w"].reference_ids) == 4
    with pytest.raises(ValueError, match="more than 1"):
        ds.split({"x": 0.8, "y": 0.3})


def test_rows_are_read_in_pages_not_per_item(client: Client, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from ocula.integrations import rows

    ds, _ = _build(client, tmp_path)
    monkeypatch.setattr(rows, "PAGE_SIZE", 4)
    monkeypatch.setattr(rows, "QUERY_PAGE_SIZE", 4)
    monkeypatch.setattr(rows, "REFS_PER_CALL", 2)
    calls: list[str] = []
    backend = ds._backend
    for name in ("list_items", "query_items", "list_annotations", "get_item",
                 "slice_items"):
        real = getattr(backend, name)
        monkeypatch.setattr(backend, name, lambda *a, _n=name, _r=real, **k: (
            calls.append(_n), _r(*a, **k))[1])
    whole = ds.to_torch(labels=["car", "dog", "person"])
    assert calls == ["list_items", "list_items", "list_annotations"]
    assert whole.reference_ids == [f"r{i}" for i in range(6)]
    calls.clear()
    queried = ds.to_torch(query='has(label = "person")', labels=["car", "dog", "person"])
    assert calls == ["query_items", "query_items"] + ["list_annotations"] * 3
    assert [len(queried.target(i)["boxes"]) for i in range(6)] == [
        len(whole.target(i)["boxes"]) for i in range(6)]


def test_an_image_gone_from_the_server_is_a_typed_error(any_client: Client,
                                                        tmp_path: Path) -> None:
    from ocula.errors import NotFoundError

    ds, _ = _build(any_client, tmp_path, n=2)
    tds = ds.to_torch()
    ds.delete_item("r1")
    assert tds.target(1)["reference_id"] == "r1"   # rows were read when it was made
    if hasattr(ds._backend, "url"):   # remote: the image route answers 404
        with pytest.raises(NotFoundError):
            tds[1]
    else:   # embedded: the file is still on disk
        assert tuple(tds[1][0].shape) == (3, H, W)
