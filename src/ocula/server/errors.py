"""Exception handlers: every error leaves the server as JSON ``{error, detail}``.

Ocula's own errors keep their code and HTTP status (``OculaError.http_status``); request
validation becomes 422; anything unexpected is logged here with its traceback and
answered with a bare ``{"error": "internal"}`` (500), never a stack trace, on a
connection that stays open (:class:`InternalErrorMiddleware`).

A 401 challenges with ``Bearer``, never ``Basic``: a ``Basic`` challenge makes a browser
ask for credentials and then send them with every request to this origin, a page's
cross-site form posts included. Clients send their key unasked (``scale-nucleus`` as
HTTP Basic, Ocula's as Bearer), so no client needs the challenge.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ocula.errors import AuthError, OculaError

log = logging.getLogger("ocula.server")

# Error codes for plain HTTP statuses (routing misses, wrong methods, size limits).
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found",
                 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                 422: "invalid"}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


class ErrorResponse(JSONResponse):
    """JSON written as ASCII: an error may quote text the client sent that has no UTF-8
    form (a lone surrogate), and must still be answered."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def _ocula_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OculaError)
    headers = {"WWW-Authenticate": 'Bearer realm="ocula"'} if isinstance(exc, AuthError) else None
    return ErrorResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)


def _unicode_error(_: Request, exc: Exception) -> JSONResponse:
    # Text with no UTF-8 form (a lone surrogate) that got past the checks at the edge
    # (guard.py, validation.py): the client's input, not a server fault.
    log.info("text with no UTF-8 form: %s", exc)
    return ErrorResponse(error_body("invalid", "a text contains a lone surrogate "
                                               "(U+D800..U+DFFF), which cannot be stored"),
                         status_code=422)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only loc/msg/type: pydantic's "input" and "ctx" may hold values that are not JSON.
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return JSONResponse(error_body("invalid", f"{where}: {first['msg']}{more}",
                                   info={"errors": errors}), status_code=422)


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return JSONResponse(error_body(code, detail), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


def _data_error(_: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (too long, out of range, NUL byte on PostgreSQL):
    # bad input that slipped past validation, not a server fault.
    log.info("database rejected a value: %s", exc)
    return JSONResponse(error_body("invalid", "a value is out of range or not storable"),
                        status_code=422)


class InternalErrorMiddleware:
    """Answers an unexpected exception with a bare 500 JSON and keeps the connection.

    Starlette's own last-resort handler re-raises after answering, and the server then
    drops the connection: a client's next request on it fails with "connection reset".
    Added last, so it is the outermost of the app's middleware.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for an answer of our own
                raise
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"),
                      exc_info=exc)
            response = ErrorResponse(error_body("internal", "internal server error"),
                                     status_code=500)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OculaError, _ocula_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OverflowError, _data_error)
    app.add_exception_handler(UnicodeEncodeError, _unicode_error)
