"""Where the bundled demo data lives (found with :mod:`importlib.resources`).

``ocula/demo/data/`` holds ``images/vtest_XXXX.jpg`` (60 frames of OpenCV's
``vtest.avi``, see ``LICENSE-vtest.txt``), ``annotations.json`` (COCO instances, person
boxes made by the Ocula project) and ``LABELS.md`` (how the labels were made).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

IMAGES_DIRNAME = "images"
ANNOTATIONS_FILENAME = "annotations.json"
LABELS_DOC_FILENAME = "LABELS.md"
LICENSE_FILENAME = "LICENSE-vtest.txt"


def data_dir() -> Path:
    """The demo data folder inside the installed ``ocula.demo`` package.

    Ocula is installed as plain files (setuptools' default), so the resource path is a
    real directory.
    """
    path = Path(str(resources.files("ocula.demo") / "data"))
    if not path.is_dir():
        raise FileNotFoundError(f"Ocula's demo data folder is missing: {path}")
    return path


def images_dir() -> Path:
    """Folder with the 60 demo JPEG frames."""
    return data_dir() / IMAGES_DIRNAME


def image_paths() -> list[Path]:
    """The demo frames, sorted by frame number."""
    return sorted(images_dir().glob("vtest_*.jpg"))


def annotations_path() -> Path:
    """The COCO instances JSON with the demo's ground-truth person boxes."""
    return data_dir() / ANNOTATIONS_FILENAME


def load_annotations() -> dict[str, Any]:
    """Parse ``annotations.json`` (COCO: ``images``, ``annotations``, ``categories``)."""
    with annotations_path().open(encoding="utf-8") as fh:
        return json.load(fh)
