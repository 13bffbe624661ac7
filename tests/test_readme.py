"""The README's quick start runs as written (on a real image, in a fresh catalog)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    quick_start = blocks[0]
    (tmp_path / "img").mkdir()
    Image.new("RGB", (120, 100), (80, 90, 100)).save(tmp_path / "img" / "0001.jpg")
    env = {**os.environ, "OCULA_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", quick_start], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'AP'" in out.stdout and "'AR100'" in out.stdout
