"""The server's URL filter: which addresses it may fetch from, and that the fetch goes
to the address that was checked (DNS rebinding). No test resolves a real name or sends
traffic anywhere but loopback: resolvers are fakes, non-loopback "connections" go to
httpx.MockTransport, and the real servers here listen on 127.0.0.1."""

from __future__ import annotations

import io
import ipaddress
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ocula import fetch as media
from ocula.errors import ImageError

PUBLIC = [
    "8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0",
    "2606:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",                 # IPv4-mapped: judged by its IPv4 address
    "64:ff9b::808:808",               # well-known NAT64 of 8.8.8.8 (what DNS64 answers)
]
NOT_PUBLIC = [
    # IPv4 special ranges
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.100.100.200", "100.127.255.255",
    "0.0.0.0", "0.1.2.3", "192.0.0.8", "192.0.0.9", "192.0.2.1", "198.18.0.1",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
    # IPv6 special ranges
    "::", "::1", "fe80::1", "fe80::1%1", "fc00::1", "fd12:3456::1", "fec0::1",
    "fef0::1", "ff02::1", "ff0e::1", "2001:db8::1", "3fff::1", "100::1", "::8.8.8.8",
    # IPv4 inside IPv6
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:100.100.100.200",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::6464:64c8",
    "64:ff9b:1::808:808", "64:ff9b:1::7f00:1",           # local-use NAT64
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:808:808::1",  # 6to4, any IPv4
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:7f00:1::1",  # Teredo
    "2001::1", "2001:2::1", "2001:10::1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert media.is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_other_addresses_are_refused(address: str) -> None:
    assert not media.is_public_address(ipaddress.ip_address(address))


class FakeResolver:
    """Answers from a list, one answer per call (the last one repeats), counting calls."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_every_answer_is_checked() -> None:
    resolver = FakeResolver(["8.8.8.8", "10.1.2.3"])
    with pytest.raises(ImageError, match=r"10\.1\.2\.3, which is not a public address"):
        media.resolve_public("http://mixed.example/x.jpg", resolver)
    assert resolver.calls == [("mixed.example", 80)]


def test_resolve_public_rules() -> None:
    assert media.resolve_public("https://img.example/a.png",
                                FakeResolver(["2606:4700::1111", "1.1.1.1", "1.1.1.1"])) \
        == [ipaddress.ip_address("2606:4700::1111"), ipaddress.ip_address("1.1.1.1")]
    with pytest.raises(ImageError, match="no address"):
        media.resolve_public("http://img.example/a.png", FakeResolver([]))
    with pytest.raises(ImageError, match="only http and https"):
        media.resolve_public("ftp://img.example/a.png", FakeResolver(["8.8.8.8"]))
    with pytest.raises(ImageError, match="cannot resolve"):
        media.resolve_public("http://img.example/a.png", FakeResolver(["not-an-ip"]))
    # A literal address in the URL is checked the same way (the resolver echoes it).
    with pytest.raises(ImageError, match="not a public address"):
        media.resolve_public("http://[::ffff:127.0.0.1]/a.png", FakeResolver(["::ffff:127.0.0.1"]))


class Recorder:
    """An httpx transport that opens no socket: it records each request and answers."""

    def __init__(self, response: httpx.Response):
        self.requests: list[httpx.Request] = []
        self.response = response

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


def test_fetch_connects_to_the_checked_address_despite_rebinding() -> None:
    # The first answer is public, every later one loopback: a second lookup at connect
    # time would reach 127.0.0.1. The fetch must resolve once and use the first answer.
    resolver = FakeResolver(["93.184.215.14"], ["127.0.0.1"])
    recorder = Recorder(httpx.Response(200, content=_png()))
    data = media.fetch_url("https://rebind.example:8443/img.png?v=1", allow_private=False,
                           resolver=resolver, transport=httpx.MockTransport(recorder))
    assert data == _png()
    assert resolver.calls == [("rebind.example", 8443)]
    [sent] = recorder.requests
    assert sent.url.host == "93.184.215.14" and sent.url.port == 8443
    assert sent.url.raw_path == b"/img.png?v=1"
    assert sent.headers["Host"] == "rebind.example:8443"
    assert sent.extensions["sni_hostname"] == "rebind.example"


def test_fetch_pins_ipv6_and_refuses_a_rebound_private_first_answer() -> None:
    recorder = Recorder(httpx.Response(200, content=_png()))
    media.fetch_url("http://v6.example/a.png", allow_private=False,
                    resolver=FakeResolver(["2606:4700::1111"]),
                    transport=httpx.MockTransport(recorder))
    assert recorder.requests[0].url.host == "2606:4700::1111"
    assert recorder.requests[0].headers["Host"] == "v6.example"
    # Private on the first (the checked) answer: refused before any request.
    with pytest.raises(ImageError, match="not a public address"):
        media.fetch_url("http://v6.example/b.png", allow_private=False,
                        resolver=FakeResolver(["100.100.100.200"], ["8.8.8.8"]),
                        transport=httpx.MockTransport(recorder))
    assert len(recorder.requests) == 1


def test_a_failed_connect_moves_on_to_the_next_checked_address() -> None:
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        if request.url.host != "1.1.1.1":
            raise httpx.ConnectError("no route", request=request)
        return httpx.Response(200, content=_png())

    resolver = FakeResolver(["2606:4700::1111", "1.1.1.1"])
    assert media.fetch_url("http://dual.example/a.png", allow_private=False,
                           resolver=resolver, transport=httpx.MockTransport(handler)) == _png()
    assert tried == ["2606:4700::1111", "1.1.1.1"] and len(resolver.calls) == 1
    with pytest.raises(ImageError, match="ConnectError"):
        media.fetch_url("http://dual.example/a.png", allow_private=False,
                        resolver=FakeResolver(["2606:4700::1111", "8.8.8.8"]),
                        transport=httpx.MockTransport(handler))
    assert tried[2:] == ["2606:4700::1111", "8.8.8.8"]


def test_redirects_are_not_followed() -> None:
    recorder = Recorder(httpx.Response(302, headers={"Location": "http://127.0.0.1/x.png"}))
    with pytest.raises(ImageError, match="HTTP 302"):
        media.fetch_url("http://redirect.example/x.png", allow_private=False,
                        resolver=FakeResolver(["8.8.8.8"]),
                        transport=httpx.MockTransport(recorder))
    assert [r.url.host for r in recorder.requests] == ["8.8.8.8"]


# --- real loopback servers -------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    hosts: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).hosts.append(self.headers["Host"])
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/img.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = _png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client refusing the certificate hangs up on purpose


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"hosts": []})
    server = _QuietServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def loopback() -> Iterator[tuple[int, type[_Handler]]]:
    yield from _serve()


def test_local_use_fetches_loopback_and_follows_redirects(loopback) -> None:
    port, handler = loopback
    assert media.fetch_url(f"http://127.0.0.1:{port}/moved", allow_private=True) == _png()
    assert handler.hosts == [f"127.0.0.1:{port}"] * 2


def test_server_mode_refuses_loopback_before_connecting(loopback) -> None:
    port, handler = loopback
    with pytest.raises(ImageError, match="not a public address"):
        media.fetch_url(f"http://127.0.0.1:{port}/img.png", allow_private=False)
    assert handler.hosts == []


def test_pinned_request_reaches_the_ip_with_the_original_host(loopback) -> None:
    port, handler = loopback
    url = f"http://images.test:{port}/img.png"  # never resolved: the IP is given
    with httpx.Client() as client:
        resp = client.send(media.pinned_request(client, url, ipaddress.ip_address("127.0.0.1")))
    assert resp.status_code == 200 and resp.content == _png()
    assert handler.hosts == [f"images.test:{port}"]


@pytest.fixture
def tls_loopback(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext, list[str]]]:
    """An https server on 127.0.0.1 with a self-signed certificate for images.test,
    recording the SNI names clients send."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=images.test", "-addext", "subjectAltName=DNS:images.test",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    names: list[str] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    for port, _ in _serve(server_ctx):
        yield port, client_ctx, names


def test_pinned_https_sends_sni_and_verifies_the_certificate_for_the_name(
        tls_loopback) -> None:
    port, client_ctx, names = tls_loopback
    loop = ipaddress.ip_address("127.0.0.1")
    with httpx.Client(verify=client_ctx) as client:
        resp = client.send(media.pinned_request(client, f"https://images.test:{port}/a.png", loop))
        assert resp.status_code == 200 and resp.content == _png()
        assert names == ["images.test"]
        # The certificate is checked against the URL's name, not the IP connected to.
        with pytest.raises(httpx.ConnectError, match="certificate|hostname"):
            client.send(media.pinned_request(client, f"https://other.test:{port}/a.png", loop))
