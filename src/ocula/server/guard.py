"""Checks on a request before any route sees it: the content type of a write, and JSON
text that is not Unicode.

Content types: a web page can make a browser send a cross-site ``POST`` without asking
the server first only as ``text/plain``, ``application/x-www-form-urlencoded`` or
``multipart/form-data`` (or with no body at all). Every state-changing route therefore
takes ``application/json`` only, and ``multipart/form-data`` only where a client uploads
files (``/api/v1/uploads``, Nucleus' ``append``, which ``scale-nucleus`` sends as a
form with the images, and its ``annotate``, ``predict`` and ``uploadPredictions``, sent
as a form with local segmentation masks); anything else is a 415. API keys are never
cookies and the 401 challenge is not ``Basic`` (``errors.py``), so no browser holds
credentials a page could borrow for such a form.

JSON text: a JSON string may spell a lone surrogate (``"\\ud800"``), which no UTF-8
text, no PostgreSQL column and no JSON answer can hold. Such a body is refused with a
422 naming where each one is (``items[0].reference_id``); a body that is not UTF-8 at
all, likewise.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocula.server.wire import lone_surrogate_paths

JSON = "application/json"
MULTIPART = "multipart/form-data"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes that take uploads as a multipart form (path ends; any mount point before them).
_MULTIPART_ROUTES = re.compile(
    r"(/api/v1/uploads|/v1/nucleus/dataset/[^/]+/(append|annotate)"
    r"|/v1/nucleus/modelRun/[^/]+/predict|/v1/nucleus/dataset/[^/]+/model/[^/]+/uploadPredictions)$")
# Nucleus' signed upload URL: the client PUTs NDJSON with whatever type its HTTP library
# picks; the signature in the URL is the only credential, and no browser holds it.
_OPEN_ROUTES = re.compile(r"/v1/nucleus/upload/[^/]+/[^/]+$")
# "\ud800".."\udfff" escapes; a pair (an astral character, as json.dumps writes one)
# matches too, and is then told apart by parsing.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
MAX_REPORTED = 100


class RequestGuardMiddleware:
    """Pure ASGI middleware: 415 for a write in another content type, 422 for a JSON body
    that is not UTF-8 or holds a lone surrogate. Other requests pass untouched."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITES \
                or _OPEN_ROUTES.search(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        media = headers.get(b"content-type", b"").decode("latin-1").partition(";")[0]
        media = media.strip().lower()
        path = scope.get("path", "")
        if media == JSON:
            await self._json(scope, receive, send)
            return
        if media == MULTIPART and _MULTIPART_ROUTES.search(path):
            await self.app(scope, receive, send)
            return
        has_body = headers.get(b"content-length", b"0") not in (b"0", b"") \
            or b"transfer-encoding" in headers
        if not media and scope["method"] == "DELETE" and not has_body:
            await self.app(scope, receive, send)
            return
        await _drain(receive)  # so the connection stays usable for the next request
        accepted = JSON + (f" or {MULTIPART}" if _MULTIPART_ROUTES.search(path) else "")
        await _answer(send, 415, "unsupported_media_type",
                      f"{scope['method']} {path} takes {accepted}, not "
                      f"{media or 'a body without a Content-Type'}")

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = _json_problem(body)
        if problem is not None:
            await _answer(send, 422, "invalid", *problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _json_problem(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """(detail, info) if ``body`` is not UTF-8 or spells a lone surrogate; else None
    (including when it is not JSON: the route says so)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (f"the body is not UTF-8 text (byte {exc.start}: {exc.reason})", {})
    if b"\\u" not in body or _SURROGATE_ESCAPE.search(body) is None:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    paths = lone_surrogate_paths(value, MAX_REPORTED)
    if not paths:
        return None
    more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
    return (f"{paths[0]}: a lone surrogate (U+D800..U+DFFF) is not Unicode text and cannot "
            f"be stored{more}; nothing was written", {"paths": paths})


async def _answer(send: Send, status: int, code: str, detail: str,
                  info: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if info:
        body["info"] = info
    data = json.dumps(body, separators=(",", ":")).encode()  # ASCII, whatever it quotes
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def loopback_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine's loopback (``localhost``,
    ``127.x.y.z``, ``[::1]``, with or without a port)."""
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LoopbackHostMiddleware:
    """Without API keys (``ocula serve --no-auth``, ``ocula demo``, ``launch_app``), a
    server answers only requests addressed to a loopback name. Binding to 127.0.0.1 is
    not enough: a web page can point its own DNS name at 127.0.0.1 (DNS rebinding), and
    the browser would then send that page's requests, with its name in ``Host``, here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not loopback_host(host):
                await _answer(send, 400, "bad_host",
                              "a server without API keys answers only requests to a "
                              "loopback name (localhost, 127.0.0.1, [::1])")
                return
        await self.app(scope, receive, send)
