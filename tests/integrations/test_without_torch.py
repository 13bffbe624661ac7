"""Without PyTorch, Ocula works and ``to_torch`` names the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.modules["torch"] = None          # as if PyTorch were not installed
from pathlib import Path
from PIL import Image
import ocula
from ocula.integrations.torchvision import to_predictions

home = Path(sys.argv[1])
Image.new("RGB", (8, 8)).save(home / "a.jpg")
client = ocula.Client(home / "home")
ds = client.create_dataset("d")
ds.append([ocula.DatasetItem(str(home / "a.jpg"), "a")])
ds.annotate([ocula.BoxAnnotation("cat", 1, 1, 3, 3, reference_id="a")])
print(sorted(s.name for s in ds.split({"x": 0.5, "y": 0.5}, seed=0).values()))
# numpy outputs need no torch either
import numpy as np
preds = to_predictions([{"boxes": np.array([[1, 1, 4, 4]]), "labels": np.array([1]),
                         "scores": np.array([0.9])}], ["a"], ["__background__", "cat"])
print(len(preds), preds[0].label)
try:
    ds.to_torch()
except ImportError as exc:
    print("ERR", exc)
"""


def test_ocula_works_and_to_torch_says_what_to_install(tmp_path: Path) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "['x', 'y']" and lines[1] == "1 cat"
    assert lines[2].startswith("ERR PyTorch is not installed")
    assert 'pip install "ocula[torch]"' in lines[2]
