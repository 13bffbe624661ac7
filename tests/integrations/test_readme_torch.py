"""The README's PyTorch section runs as written (a stand-in for the trained model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ocula import BoxAnnotation, DatasetItem  # noqa: E402
from ocula.client.client import Client  # noqa: E402
from tests.conftest import make_images  # noqa: E402
from tests.integrations.test_tutorial_example import TinyDetector  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_pytorch_section_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
                 if "to_torch(" in b)
    client = Client(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    ds = client.create_dataset("readme")
    paths = make_images(tmp_path / "imgs", 10, size=(320, 320))
    ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
    ds.annotate([BoxAnnotation("person", 100, 100, 100, 200, reference_id=f"r{i}")
                 for i in range(10)])
    exec(block, {"client": client, "ds": ds, "model": TinyDetector(2)})  # noqa: S102
    assert "'AP'" in capsys.readouterr().out
    run = ds.get_run("frcnn-v1")
    assert len(run.predictions()) == 3   # one per test_set item
    client.close()
