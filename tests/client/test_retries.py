"""The HTTP backend's retries, against a real HTTP server on 127.0.0.1 that fails its
first requests (503, or hanging up without an answer): idempotent requests and read-only
POSTs are tried again, a bounded number of times; other POSTs are sent once."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ocula import errors as E
from ocula.client import http as client_http
from ocula.client.http import HttpBackend


class Script:
    """How the server answers: the first ``failures`` requests fail (``mode`` "503" or
    "hangup"), later ones answer 200 with ``{"n": <request number>}``."""

    def __init__(self) -> None:
        self.failures = 0
        self.mode = "503"
        self.retry_after: str | None = None
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.script.lock:
            self.script.seen.append((self.command, self.path))
            n = len(self.script.seen)
        if n <= self.script.failures and self.script.mode == "hangup":
            self.close_connection = True  # no status line: the client sees a broken answer
            return
        status = 503 if n <= self.script.failures else 200
        body = json.dumps({"n": n} if status == 200 else {"detail": "busy"}).encode()
        self.send_response(status)
        if status == 503 and self.script.retry_after is not None:
            self.send_header("Retry-After", self.script.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's naming


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()
    handler = type("Handler", (_Handler,), {"script": script})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def _backend(url: str, **kwargs: object) -> Iterator[HttpBackend]:
    kwargs.setdefault("retry_backoff_s", 0.01)
    http = HttpBackend(url, timeout=5.0, **kwargs)  # type: ignore[arg-type]
    try:
        yield http
    finally:
        http.close()


@pytest.mark.parametrize("mode", ["503", "hangup"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_requests_are_retried(server, mode: str, method: str) -> None:
    url, script = server
    script.failures, script.mode = 2, mode
    with _backend(url) as http:
        assert http._call(method, "/datasets/ds_1") == {"n": 3}
    assert script.seen == [(method, "/api/v1/datasets/ds_1")] * 3


@pytest.mark.parametrize(("options", "retry_after", "tries"), [
    ({"max_tries": 4}, None, 4),                         # bounded number of tries
    ({"max_tries": 10, "retry_total_s": 0.0}, None, 1),  # no try starts after the bound
    ({"retry_total_s": 5.0}, "30", 1),  # Retry-After (capped at 8 s) would pass the bound
], ids=["tries", "total-time", "retry-after"])
def test_retries_are_bounded(server, options: dict, retry_after: str | None,
                             tries: int) -> None:
    url, script = server
    script.failures, script.retry_after = 100, retry_after
    with _backend(url, **options) as http, pytest.raises(E.RemoteError, match="HTTP 503"):
        http.list_datasets()
    assert len(script.seen) == tries


@pytest.mark.parametrize("mode", ["503", "hangup"])
def test_writing_posts_are_sent_once(server, mode: str) -> None:
    url, script = server
    script.failures, script.mode = 2, mode
    with _backend(url) as http:
        with pytest.raises(E.RemoteError):
            http.create_dataset("d")
        with pytest.raises(E.RemoteError):  # an append is not retried either (see _send)
            http._call("POST", "/datasets/ds_1/items", body={"items": []})
    assert [m for m, _ in script.seen] == ["POST", "POST"]
    assert script.seen[1][1] == "/api/v1/datasets/ds_1/items"


@pytest.mark.parametrize("mode", ["503", "hangup"])
def test_read_only_posts_are_retried(server, mode: str) -> None:
    url, script = server
    script.failures, script.mode = 2, mode
    with _backend(url) as http:
        assert http.query_items("ds_1", "label = 'a'") == {"n": 3}
    assert script.seen == [("POST", "/api/v1/datasets/ds_1/query/items")] * 3


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.tries += 1
        return super().handle_request(request)


def test_a_post_that_could_not_connect_is_retried() -> None:
    # A loopback port with no listener: every connection is refused, nothing is sent.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = CountingTransport()
    url = f"http://127.0.0.1:{port}"
    with (_backend(url, transport=transport, max_tries=3) as http,
          pytest.raises(E.RemoteError, match="cannot reach")):
        http.create_dataset("d")
    assert transport.tries == 3


def test_a_refused_certificate_is_not_retried() -> None:
    refused = httpx.ConnectError("certificate verify failed")
    refused.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    assert not client_http._worth_retrying(refused, replayable=True)
    assert client_http._worth_retrying(httpx.ConnectError("refused"), replayable=False)
    assert not client_http._worth_retrying(httpx.ReadError("reset"), replayable=False)
    assert client_http._worth_retrying(httpx.ReadError("reset"), replayable=True)
    assert not client_http._worth_retrying(httpx.UnsupportedProtocol("x"), replayable=True)
