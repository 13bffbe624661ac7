"""Request body size limits, enforced before a handler reads the body.

Uploads (multipart forms, NDJSON, raw bytes) get a large limit; everything else is JSON
and gets a smaller one. A declared ``Content-Length`` over the limit is refused at once;
a body without one (chunked) is counted as it streams and cut off at the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_TYPES = ("multipart/", "application/x-ndjson", "application/octet-stream", "image/")


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes its limit."""


class BodyLimitMiddleware:
    """Pure ASGI middleware (no buffering) refusing oversize bodies with 413 JSON."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int):
        self.app = app
        self.max_json = max_json_bytes
        self.max_upload = max_upload_bytes

    def _limit(self, scope: Scope) -> int:
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        # The Nucleus signed-URL PUT sends NDJSON with whatever type requests picks.
        if ctype.startswith(UPLOAD_TYPES) or scope.get("method") == "PUT":
            return self.max_upload
        return self.max_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = {"error": "too_large",
                            "detail": f"request body larger than this server's limit of "
                                      f"{limit} bytes"}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
