"""Helpers for the io tests: real image files and small label sets built in tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_image(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """Write a real image (format from the suffix) of ``size`` = (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def comparable(objs: list[Any], *, drop_location: bool = False) -> list[Any]:
    """Objects as payload dicts, for equality checks with readable diffs."""
    out = []
    for obj in objs:
        body = obj.to_payload()
        if drop_location:
            body.pop("image_url", None)
        out.append(body)
    return out
