"""torchvision-format outputs (plain dicts of tensors) → predictions → a committed run
with the expected TP / FP / FN; ``run_model`` over a dataset in batches."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ocula import BoxAnnotation, DatasetItem  # noqa: E402
from ocula.client.client import Client  # noqa: E402
from ocula.core.types import BoxPrediction, MaskPrediction  # noqa: E402
from ocula.integrations.torchvision import run_model, to_predictions  # noqa: E402
from tests.conftest import make_images  # noqa: E402

W, H = 64, 48


def _dataset(client: Client, tmp_path: Path, n: int = 3):
    paths = make_images(tmp_path / "imgs", n, size=(W, H))
    ds = client.create_dataset("tv")
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("person", 10, 10, 20, 20, reference_id=f"r{i}")
                 for i in range(n)]
                + [BoxAnnotation("car", 40, 5, 10, 10, reference_id="r0")])
    return ds


def test_outputs_to_predictions_to_a_committed_run(any_client: Client,
                                                   tmp_path: Path) -> None:
    ds = _dataset(any_client, tmp_path)
    tds = ds.to_torch()
    assert tds.labels == ["__background__", "car", "person"]
    outputs = [
        # r0: the person found (TP), the car missed (FN), a confident false car (FP),
        # a background detection (index 0, dropped) and one under the threshold.
        {"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0], [0.0, 30.0, 8.0, 40.0],
                                [1.0, 1.0, 5.0, 5.0], [2.0, 2.0, 9.0, 9.0]]),
         "labels": torch.tensor([2, 1, 0, 2]),
         "scores": torch.tensor([0.95, 0.9, 0.99, 0.01])},
        # r1: the person, slightly off (TP).
        {"boxes": torch.tensor([[11.0, 10.0, 31.0, 29.0]]), "labels": torch.tensor([2]),
         "scores": torch.tensor([0.8])},
        # r2: nothing (the person is a FN).
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64),
         "scores": torch.zeros(0)},
    ]
    preds = to_predictions(outputs, ["r0", "r1", "r2"], tds.labels, score_threshold=0.05)
    assert [(p.reference_id, p.label) for p in preds] == [
        ("r0", "person"), ("r0", "car"), ("r1", "person")]
    first = preds[0]
    assert isinstance(first, BoxPrediction)
    assert (first.x, first.y, first.width, first.height) == (10.0, 10.0, 20.0, 20.0)
    assert first.confidence == pytest.approx(0.95)
    model = any_client.add_model("toy", reference_id="toy")
    run = model.create_run("toy-v1", ds, preds)
    result = run.commit()
    assert (result["tp"], result["fp"], result["fn"]) == (2, 1, 2)
    # The label map works as name → index too, and numpy outputs as tensors do.
    again = to_predictions([{k: v.numpy() for k, v in outputs[1].items()}], ["r1"],
                           tds.label_map)
    assert [(p.label, p.x) for p in again] == [("person", 11.0)]
    with pytest.raises(ValueError, match="not in the label map"):
        to_predictions([{"boxes": [[0, 0, 1, 1]], "labels": [7], "scores": [1.0]}], ["r0"],
                       tds.labels)
    with pytest.raises(ValueError, match="2 outputs for 1"):
        to_predictions(outputs[:2], ["r0"], tds.labels)


def test_mask_outputs_become_mask_predictions(client: Client, tmp_path: Path) -> None:
    probs = torch.zeros((1, 1, H, W))
    probs[0, 0, 10:30, 10:30] = 0.9
    probs[0, 0, 30:32, 10:30] = 0.4  # under the mask threshold
    out = [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]), "labels": torch.tensor([1]),
            "scores": torch.tensor([0.7]), "masks": probs}]
    preds = to_predictions(out, ["r0"], ["__background__", "person"])
    box, mask = preds
    assert isinstance(mask, MaskPrediction) and mask.annotation_id == box.annotation_id + "/mask"
    assert mask.computed_area() == 400 and mask.confidence == pytest.approx(0.7)
    ds = _dataset(client, tmp_path, n=1)
    run = client.add_model("m", reference_id="m").create_run("m1", ds, preds)
    assert run.commit()["tp"] == 1
    assert len(to_predictions(out, ["r0"], ["__background__", "person"],
                              with_masks=False)) == 1


class _Fixed(torch.nn.Module):
    """A stand-in detector with torchvision's interface: one box per image, in the
    middle, labelled with class index 2."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.calls: list[int] = []

    def forward(self, images):
        self.calls.append(len(images))
        assert not torch.is_grad_enabled() and not self.training
        return [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]) * self.scale,
                 "labels": torch.tensor([2]), "scores": torch.tensor([0.9])}
                for _ in images]


def test_run_model_batches_uploads_and_commits(client: Client, tmp_path: Path) -> None:
    ds = _dataset(client, tmp_path)
    ds.create_slice("two", reference_ids=["r0", "r1"])
    net = _Fixed()
    train = ds.to_torch()
    model = client.add_model("fixed", reference_id="fixed")
    run = run_model(net, ds, model, "fixed-all", labels=train.labels, batch_size=2)
    assert net.calls == [2, 1] and net.training  # training mode restored
    assert run.info()["name"] == "fixed-all"
    stats = run.metrics()
    assert stats["operating_point"]["tp"] == 3 and stats["operating_point"]["fn"] == 1
    sliced = run_model(net, ds.get_slice("two"), model, "fixed-two", labels=train.labels)
    assert {p.reference_id for p in sliced.predictions()} == {"r0", "r1"}
    queried = run_model(net, ds, model, "fixed-q", query='reference_id = "r2"')
    assert {p.reference_id for p in queried.predictions()} == {"r2"}
    exact = run_model(net, ds.to_torch(query='reference_id != "r2"'), model, "fixed-t",
                      commit=False)
    assert {p.reference_id for p in exact.predictions()} == {"r0", "r1"}
    with pytest.raises(ValueError, match="__background__"):
        run_model(net, ds, model, "bad", labels=["car", "person"])
    with pytest.raises(ValueError, match="differ"):
        run_model(net, train, model, "bad", labels=["__background__", "person"])
    assert sliced.metrics(slice="two")["operating_point"]["tp"] == 2
