"""Image files: header probing, the content-addressed media folder, URL fetching, thumbnails.

Images are either referenced in place (a local path the catalog points at) or stored
under ``<root>/media/ab/<sha256>.<ext>`` — uploads and fetched URLs always are, local
files when asked to copy. Only headers are read at ingest (width, height, format) plus a
cheap check that the file is not truncated; pixels are decoded only for thumbnails.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import socket
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, UnidentifiedImageError

from ocula.errors import ImageError

# Formats whose end marker lets us spot a truncated file without decoding it.
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"
MAX_FETCH_BYTES = 200 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0


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


def probe_bytes(data: bytes, name: str) -> ImageInfo:
    if not data:
        raise ImageError(f"empty image file: {name}")
    return _probe(io.BytesIO(data), name)


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the host resolves to (strings, as getaddrinfo gives them).
Resolver = Callable[[str, int], Iterable[str]]

# Ranges refused whatever this Python's ``is_global`` says: its answer for them changed
# between Python releases (CPython followed the IANA special-purpose registries late),
# and the verdict must not depend on the interpreter.
_NOT_PUBLIC = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24",      # this network, CGNAT, IETF protocol
    "fec0::/10",                                        # deprecated site-local
    "2001::/23",                                        # IETF protocol (Teredo, ORCHID, ...)
    "2001:db8::/32", "3fff::/20",                       # documentation
    "2002::/16",                                        # 6to4: deprecated (RFC 7526)
    "64:ff9b:1::/48",                                   # local-use NAT64 (RFC 8215)
    "100::/64", "fc00::/7", "fe80::/10",                # discard-only, unique local, link
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")          # well-known NAT64 prefix (RFC 6052)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host an IPv4-mapped (``::ffff:a.b.c.d``) or well-known NAT64
    (``64:ff9b::a.b.c.d``, what DNS64 answers on IPv6-only networks) address reaches."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(ip.packed[-4:])
    return None


def is_public_address(ip: IPAddress) -> bool:
    """Whether a server may fetch from ``ip``: only globally routable unicast addresses.

    An address that reaches an IPv4 host (IPv4-mapped, NAT64) is judged by that IPv4
    address. 6to4 (``2002::/16``) and Teredo (``2001::/32``) are refused whatever IPv4
    address they carry; so are multicast, reserved, unspecified, site-local and the
    ranges in ``_NOT_PUBLIC``."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return is_public_address(inner)
        if ip.sixtofour is not None or ip.teredo is not None or ip.is_site_local:
            return False
    if any(ip in net for net in _NOT_PUBLIC if net.version == ip.version):
        return False
    return ip.is_global and not (ip.is_private or ip.is_multicast or ip.is_reserved
                                 or ip.is_unspecified or ip.is_loopback or ip.is_link_local)


def _system_resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def resolve_public(url: str, resolver: Resolver | None = None) -> list[IPAddress]:
    """Resolve the host of ``url`` once and return the addresses to connect to, in the
    resolver's order, after checking that every one is public: a server must not be a
    proxy into its own network (SSRF). Raises ImageError otherwise."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise ImageError(f"only http and https URLs can be fetched: {url}")
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded; an IPv6 literal has no brackets
    if not host:
        raise ImageError(f"URL has no host: {url}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        answers = list(dict.fromkeys(
            ipaddress.ip_address(a) for a in (resolver or _system_resolve)(host, port)))
    except (OSError, UnicodeError, ValueError) as exc:
        raise ImageError(f"cannot resolve the host of {url}: {exc}") from exc
    if not answers:
        raise ImageError(f"cannot resolve the host of {url}: no address")
    for ip in answers:
        if not is_public_address(ip):
            raise ImageError(f"refusing to fetch {url}: {host} resolves to {ip}, which is not "
                             "a public address; a server admin can allow private addresses "
                             "with --allow-private-urls")
    return answers


def pinned_request(client: httpx.Client, url: str, ip: IPAddress) -> httpx.Request:
    """A GET of ``url`` that connects to ``ip``, the address that was checked.

    Checking a name and then letting the HTTP library resolve it again would let a DNS
    answer that changes in between (DNS rebinding) reach a private address. So the URL
    sent is rewritten to the IP itself, while the ``Host`` header keeps the original
    name (and port) and, for https, the ``sni_hostname`` request extension (httpx's
    documented way) makes httpcore send that name as TLS SNI and verify the server's
    certificate against it, not against the IP. No second lookup happens; through a
    configured proxy, the proxy is asked for the checked IP too."""
    original = httpx.URL(url)
    name = original.raw_host.decode("ascii")
    return client.build_request(
        "GET", original.copy_with(host=str(ip)),
        headers={"Host": original.netloc.decode("ascii")}, extensions={"sni_hostname": name})


def fetch_url(url: str, *, timeout: float = FETCH_TIMEOUT_S, allow_private: bool = True,
              resolver: Resolver | None = None,
              transport: httpx.BaseTransport | None = None) -> bytes:
    """Download an image, bounded in time and size.

    With ``allow_private=False`` (a server) the host is resolved once, every address
    it resolves to must be public (``is_public_address``), the request goes to the
    checked addresses (``pinned_request``; the next one only when connecting to one
    fails, as a plain connect would) and redirects are not followed (one could point
    into the private network). ``allow_private=True`` (embedded, local use)
    fetches any URL and follows redirects. ``resolver`` and ``transport`` replace the
    system resolver and httpx's network transport (tests)."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=allow_private,
                          transport=transport) as client:
            resp = _send_pinned(client, url, None if allow_private
                                else resolve_public(url, resolver))
            try:
                return _read_body(url, resp)
            finally:
                resp.close()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ImageError(f"cannot fetch {url}: {exc.__class__.__name__}: {exc}") from exc


def _send_pinned(client: httpx.Client, url: str,
                 addresses: list[IPAddress] | None) -> httpx.Response:
    """Send the GET of ``url`` (to these addresses in turn, if given) and stream it."""
    if addresses is None:
        return client.send(client.build_request("GET", url), stream=True)
    for ip in addresses[:-1]:
        try:
            return client.send(pinned_request(client, url, ip), stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            continue  # e.g. an IPv6 answer on a host without an IPv6 route
    return client.send(pinned_request(client, url, addresses[-1]), stream=True)


def _read_body(url: str, resp: httpx.Response) -> bytes:
    if resp.status_code != 200:
        raise ImageError(f"fetching {url} gave HTTP {resp.status_code}")
    chunks, total = [], 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > MAX_FETCH_BYTES:
            raise ImageError(f"image at {url} is larger than {MAX_FETCH_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
        image ``source`` and cached."""
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
