"""Image files: header probing, the content-addressed media folder, URL fetching, thumbnails.

Images are either referenced in place (a local path the catalog points at) or stored
under ``<root>/media/ab/<sha256>.<ext>`` — uploads and fetched URLs always are, local
files when asked to copy. Only headers are read at ingest (width, height, format) plus a
cheap check that the file is not truncated; pixels are decoded only for thumbnails.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from ocula.errors import ImageError

# Formats whose end marker lets us spot a truncated file without decoding it.
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def _check_tail(fmt: str, tail: bytes, name: str) -> None:
    # JPEG writers may pad after EOI, so look for the marker near the end, not at it.
    if fmt == "JPEG" and _JPEG_END not in tail:
        raise ImageError(f"truncated JPEG file (no end-of-image marker): {name}")
    if fmt == "PNG" and _PNG_END not in tail:
        raise ImageError(f"truncated PNG file (no IEND chunk): {name}")


# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                       0xCF))
_HEAD_BYTES = 64 * 1024


def _fast_size(head: bytes) -> tuple[int, int, str] | None:
    """Width, height and format of a PNG or JPEG from its first bytes, or None.

    Pillow's open costs ~40 µs a file in Python; walking a JPEG's few marker segments
    here costs a tenth of that, which is most of ingest time at 100k items. Anything
    unusual returns None and goes through Pillow.
    """
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), "PNG"
    if head[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(head)
    while i + 9 < n:
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            h = int.from_bytes(head[i + 5:i + 7], "big")
            w = int.from_bytes(head[i + 7:i + 9], "big")
            return w, h, "JPEG"
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end or scan data before any frame header
            return None
        i += 2 + int.from_bytes(head[i + 2:i + 4], "big")
    return None


def _probe(fp: io.BufferedIOBase | io.BytesIO, name: str) -> ImageInfo:
    head = fp.read(_HEAD_BYTES)
    fast = _fast_size(head)
    if fast is not None:
        width, height, fmt = fast
        if width * height > (Image.MAX_IMAGE_PIXELS or width * height):
            raise ImageError(f"not a readable image (DecompressionBombWarning: {width}×"
                             f"{height} px is over Pillow's limit): {name}")
    else:
        fp.seek(0)
        width, height, fmt = _probe_with_pillow(fp, name)
    fp.seek(-min(64, _size(fp)), os.SEEK_END)
    _check_tail(fmt, fp.read(), name)
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels: {name}")
    return ImageInfo(width, height, fmt)


def _probe_with_pillow(fp: io.BufferedIOBase | io.BytesIO, name: str) -> tuple[int, int, str]:
    try:
        with warnings.catch_warnings():
            # Pillow's decompression-bomb guard stays on; its warning tier is an error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                return img.size[0], img.size[1], img.format or "UNKNOWN"
    except (UnidentifiedImageError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise ImageError(f"not a readable image ({exc.__class__.__name__}): {name}") from exc
    except OSError as exc:
        raise ImageError(f"cannot read image {name}: {exc}") from exc


def _size(fp: io.BufferedIOBase | io.BytesIO) -> int:
    here = fp.tell()
    fp.seek(0, os.SEEK_END)
    end = fp.tell()
    fp.seek(here)
    return end


def probe_file(path: str | Path) -> ImageInfo:
    """Read an image's size and format from its header; raise ImageError if unusable."""
    with open_image(str(path), None, str(path)) as fp:
        return probe_open(fp, str(path))


def probe_open(fp: io.BufferedIOBase, name: str) -> ImageInfo:
    """:func:`probe_file` of a file opened with :func:`open_image`."""
    try:
        return _probe(fp, name)
    except ImageError:
        raise
    except OSError as exc:  # EIO, or a file cut short while being read
        raise ImageError(f"cannot read image ({os.strerror(exc.errno or 0)}): {name}") from exc


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _under(real: str, roots: Sequence[str]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _outside(name: str) -> ImageError:
    return ImageError(f"{name} is outside the configured media roots; upload the file "
                      "instead")


def open_image(path: str, roots: Sequence[str] | None, name: str) -> io.BufferedReader:
    """Open a local image file for reading, or raise :class:`ImageError` naming ``name``.

    Anything but a regular file is refused before it is opened: opening a FIFO blocks
    until a writer comes, and opening a device can have effects. With ``roots`` (real
    paths, see :func:`real_roots`) the file must also lie under one of them when it is
    read, not only when the catalog stored its path: a link on the way may have been
    swapped since. The path is resolved, its last component opened without following a
    link, and the opened file itself checked (its inode against the resolved path's,
    and on Linux its real path), so a swap between the checks and the open is caught too.
    """
    try:
        real = path
        if roots is not None:
            # Not strict: whether a path outside the roots exists is none of a client's
            # business, so the root is checked first (a loop fails at the stat below).
            real = os.path.realpath(path)
            if not _under(real, roots):
                raise _outside(name)
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"image path is not a regular file ({_kind(st.st_mode)}): {name}")
        # O_NONBLOCK: should a FIFO replace the file after the stat, opening it returns
        # at once instead of blocking (the inode check below then refuses it).
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(real, flags | os.O_NOFOLLOW if roots is not None else flags)
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"image file does not exist: {name}") from exc
    except PermissionError as exc:
        raise ImageError(f"image file is not readable: {name}") from exc
    except (OSError, ValueError) as exc:  # too long, a loop, a path through a file...
        reason = os.strerror(exc.errno) if getattr(exc, "errno", None) else "bad path"
        raise ImageError(f"cannot open image ({reason}): {name}") from exc
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise ImageError(f"image file changed while being opened: {name}")
        if roots is not None and not _under(_fd_path(fd, real), roots):
            raise _outside(name)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _fd_path(fd: int, fallback: str) -> str:
    """Where the open file ``fd`` really is (Linux), else ``fallback``."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return fallback


def real_roots(roots: Sequence[str | Path]) -> list[str]:
    """Media roots as :func:`open_image` compares them: absolute, links resolved."""
    return [os.path.realpath(os.path.expanduser(r)) for r in roots]


def image_mime(fp: io.BufferedIOBase, name: str) -> str:
    """The MIME type of an open image, from its header (never from its file name);
    raise ImageError for a file that is not an image Pillow reads."""
    head = fp.read(_HEAD_BYTES)
    fast = _fast_size(head)
    if fast is not None:
        fmt = fast[2]
    else:
        fp.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(fp) as img:
                    fmt = img.format or ""
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
            raise ImageError(f"the file of {name} is not a readable image") from exc
    fp.seek(0)
    return Image.MIME.get(fmt, "application/octet-stream")


def content_tag(fp: io.BufferedReader, media_key: str | None) -> str:
    """A tag that changes whenever the bytes of an open image can have: a stored copy's
    content hash (its media key's stem), or for a file referenced in place, a hash of
    its identity and version (device, inode, size, change times), read from the open
    file, so a file swapped or rewritten in place gets a new tag."""
    if media_key:
        return content_tag_of_key(media_key)
    st = os.fstat(fp.fileno())
    version = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    return "f" + hashlib.sha256(version.encode()).hexdigest()[:40]


def content_tag_of_key(media_key: str) -> str:
    """The content tag of a stored copy, from its media key alone (its content hash)."""
    return media_key.split(".")[0]


def probe_bytes(data: bytes, name: str) -> ImageInfo:
    if not data:
        raise ImageError(f"empty image file: {name}")
    return _probe(io.BytesIO(data), name)


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


class Fetcher(Protocol):
    """Downloads an image URL (only from public addresses unless ``allow_private``).
    The core holds no HTTP client; the adapters give the service one
    (:func:`ocula.fetch.fetch_url`)."""

    def __call__(self, url: str, *, allow_private: bool) -> bytes: ...


class MediaStore:
    """The media folder: content-addressed originals and cached thumbnails."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "media").mkdir(parents=True, exist_ok=True)
        (self.root / "thumbs").mkdir(parents=True, exist_ok=True)
        # Stored originals are read only from here (see open_image).
        self.roots = real_roots([self.root / "media"])

    def path_for_key(self, key: str) -> Path:
        return self.root / "media" / key[:2] / key

    def put_bytes(self, data: bytes, fmt: str) -> str:
        """Store bytes under their hash; storing the same bytes twice is a no-op."""
        key = f"{hashlib.sha256(data).hexdigest()}.{fmt.lower()}"
        target = self.path_for_key(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a half file under a real key.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        return key

    def thumbnail(self, source: io.BufferedIOBase, cache_key: str, name: str,
                  size: int = 256) -> Path:
        """A JPEG no larger than ``size`` px on its long side, made once from the open
        image ``source`` and cached under ``cache_key`` (its :func:`content_tag`: a new
        image gets a new thumbnail, the same bytes share one)."""
        target = self.root / "thumbs" / str(size) / f"{cache_key}.jpg"
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with Image.open(source) as img:
                img.draft("RGB", (size, size))  # lets JPEG decode at reduced scale
                img = img.convert("RGB")
                img.thumbnail((size, size))
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                with os.fdopen(fd, "wb") as out:
                    img.save(out, "JPEG", quality=85)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise ImageError(f"cannot make a thumbnail of {name}: "
                             f"{exc.__class__.__name__}") from exc
        os.replace(tmp, target)
        return target
