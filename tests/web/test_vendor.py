"""The vendored browser libraries are exactly what ``scripts/vendor.py`` lists."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _vendor_script():
    spec = importlib.util.spec_from_file_location("ocula_vendor_script", ROOT / "scripts/vendor.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ocula_vendor_script", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_every_vendored_file_is_listed_with_its_licence() -> None:
    vendor = _vendor_script()
    listed = {dst for pkg in vendor.PACKAGES for dst in pkg.targets().values()}
    present = {p.name for p in vendor.VENDOR.iterdir()}
    assert vendor.missing() == []
    assert present == listed, "a file in static/vendor that scripts/vendor.py does not make"
    for pkg in vendor.PACKAGES:
        names = pkg.targets().values()
        assert any(n.startswith(f"{pkg.name}-{pkg.version}.LICENSE") for n in names)
        assert all(f"-{pkg.version}." in n for n in names), "version in every file name"
