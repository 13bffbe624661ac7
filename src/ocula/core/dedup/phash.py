"""pHash: a 64-bit perceptual hash of an image's pixels.

The image is made grey, shrunk to 32×32 (Lanczos), and transformed by a 2-D DCT-II
(unnormalised, as ``scipy.fftpack.dct`` computes it, so the hash is the one the
``imagehash`` library's ``phash`` gives); of the 8×8 lowest frequencies, each bit says
whether its coefficient is above their median. Bit 63 is the top-left coefficient, the
order Nucleus' 64-character ``"0"/"1"`` strings read. Resizing, recompressing or a
small change of brightness moves few bits; different pictures differ in about half.
Like every pHash it sees structure, not colour: plain images of any colour hash alike.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ocula.errors import ImageError

__all__ = ["HASH_BITS", "hash_bits", "hash_from_bits", "phash_file", "phash_image",
           "to_signed", "to_unsigned"]

HASH_BITS = 64
_SIDE = 32   # the image is shrunk to this before the DCT
_LOW = 8     # and its lowest 8×8 frequencies make the hash

# DCT-II matrix, unnormalised: X_k = 2 * sum_n x_n cos(pi k (2n + 1) / 2N).
_n = np.arange(_SIDE)
_DCT = 2.0 * np.cos(np.pi * np.outer(np.arange(_LOW), 2 * _n + 1) / (2 * _SIDE))
_WEIGHTS = (np.uint64(1) << np.arange(HASH_BITS - 1, -1, -1, dtype=np.uint64))


def phash_image(image: Image.Image) -> int:
    """The pHash of a Pillow image, as an unsigned 64-bit int."""
    # Transparent pixels count as what they are drawn over: white.
    if image.mode not in ("L", "RGB") and ("A" in image.getbands() or image.mode == "P"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    grey = image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    # Only the 8 lowest frequencies of each axis. Rounded: a plain image's other
    # coefficients are 0, and float noise must not decide their bits.
    low = np.round(_DCT @ pixels @ _DCT.T, 6)
    bits = (low > np.median(low)).ravel()
    return int((_WEIGHTS * bits.astype(np.uint64)).sum(dtype=np.uint64))


def phash_file(fp: io.BufferedIOBase, name: str) -> int:
    """The pHash of the image in an open file; :class:`ImageError` naming ``name`` for
    a file Pillow cannot read as an image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                # A JPEG decodes straight to 1/2..1/8 scale (several times faster);
                # kept at 4× the 32×32 the hash looks at, so Lanczos still has the
                # detail it averages. The same file always gives the same hash.
                img.draft("RGB", (4 * _SIDE, 4 * _SIDE))
                return phash_image(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError,
            ValueError) as exc:
        raise ImageError(f"the file of {name} is not a readable image") from exc


def hash_bits(value: int) -> str:
    """Nucleus' form of a hash: 64 characters of ``"0"``/``"1"``, bit 63 first."""
    return format(to_unsigned(value), "064b")


def hash_from_bits(bits: str) -> int:
    """The unsigned hash a 64-character ``"0"``/``"1"`` string stands for."""
    if len(bits) != HASH_BITS or set(bits) - {"0", "1"}:
        raise ValueError("a pHash is 64 characters of 0 and 1")
    return int(bits, 2)


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as the signed integer a BIGINT column holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    """A stored (signed) hash back as the unsigned 64-bit value."""
    return value + (1 << 64) if value < 0 else value
