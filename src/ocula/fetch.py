"""Fetching image URLs over HTTP(S), for the catalog's service (an adapter: the core
holds no HTTP client; :class:`ocula.Client` and ``ocula serve`` give the service
:func:`fetch_url`).

A server fetches only from public addresses, from the very address it checked, without
following redirects; embedded use fetches anything. Downloads are bounded in time and
size.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpx

from ocula.errors import ImageError

__all__ = ["FETCH_TIMEOUT_S", "MAX_FETCH_BYTES", "fetch_url", "is_public_address",
           "pinned_request", "resolve_public"]

MAX_FETCH_BYTES = 200 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0

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
