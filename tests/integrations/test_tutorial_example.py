"""``examples/tutorial.py``, every step, on the demo data with a tiny stand-in for the
torchvision detector (CI has torch but not torchvision; the full run with a real
Faster R-CNN is in the issue note)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tutorial.py"


def _tutorial():
    spec = importlib.util.spec_from_file_location("ocula_tutorial", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TinyDetector(torch.nn.Module):
    """torchvision's detection interface with one learnable box: in training mode
    ``model(images, targets)`` returns a dict of losses, in eval mode one prediction
    per image."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.box = torch.nn.Parameter(torch.tensor([100.0, 100.0, 200.0, 300.0]))

    def forward(self, images, targets=None):
        if self.training:
            gt = torch.cat([t["boxes"] for t in targets])
            return {"loss_box": (self.box - gt).abs().mean() / 100}
        return [{"boxes": self.box.detach()[None], "labels": torch.tensor([1]),
                 "scores": torch.tensor([0.9])} for _ in images]


def test_the_tutorial_runs_every_step(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = _tutorial().main(["--home", str(tmp_path / "home"), "--iterations", "3",
                            "--workers", "0"], make_model=TinyDetector)
    printed = capsys.readouterr().out
    assert "loaded 60 items, 375 boxes" in printed
    assert "split: training_set 42 items, test_set 18 items" in printed
    assert len(out["losses"]) == 3
    assert len(out["report"]["false_positives"]) == 5
    assert all(fp["status"] == "fp" for fp in out["report"]["false_positives"])
    assert len(out["corrected"]) == 6
    original, corrected = out["versions"]
    assert original["version"] == "original" and corrected["version"] is None
    # The doubtful people in the test slice no longer count as misses.
    assert corrected["fn"] < original["fn"]
    assert corrected["tp"] + corrected["fn"] < original["tp"] + original["fn"]
