"""The fast header reader agrees with Pillow on every format variant it accepts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocula.core.store.media import _fast_size, probe_bytes, probe_file
from ocula.demo.paths import images_dir
from ocula.errors import ImageError

rng = np.random.default_rng(0)


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _variants() -> list[tuple[str, bytes]]:
    rgb = Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored size is still the pixel grid's
    return [
        ("baseline", _encode(rgb, "JPEG")),
        ("progressive", _encode(rgb, "JPEG", progressive=True)),
        ("exif", _encode(rgb, "JPEG", exif=exif)),
        ("gray", _encode(rgb.convert("L"), "JPEG")),
        ("cmyk", _encode(rgb.convert("CMYK"), "JPEG")),
        ("icc+optimize", _encode(rgb, "JPEG", optimize=True, quality=30)),
        ("png-rgb", _encode(rgb, "PNG")),
        ("png-palette", _encode(rgb.convert("P"), "PNG")),
        ("png-16bit", _encode(Image.fromarray(
            rng.integers(0, 65535, (9, 11), dtype=np.uint16)), "PNG")),
    ]


@pytest.mark.parametrize(("name", "data"), _variants())
def test_fast_reader_equals_pillow(name: str, data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        expected = (img.size[0], img.size[1], img.format)
    assert _fast_size(data) == expected, name
    info = probe_bytes(data, name)
    assert (info.width, info.height, info.format) == expected


def test_demo_frames_and_other_formats() -> None:
    for path in sorted(Path(images_dir()).glob("*.jpg"))[:10]:
        with Image.open(path) as img:
            assert probe_file(path).width == img.size[0]
    gif = _encode(Image.new("RGB", (7, 5)), "GIF")
    assert _fast_size(gif) is None  # other formats go through Pillow
    assert (probe_bytes(gif, "x.gif").width, probe_bytes(gif, "x.gif").format) == (7, "GIF")


def test_header_cut_short_falls_back_and_fails_clearly() -> None:
    data = _variants()[0][1]
    with pytest.raises(ImageError):
        probe_bytes(data[:40], "short.jpg")
