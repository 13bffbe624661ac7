"""Shared dependencies of the routers: the service, the job runner, authentication.

The app keeps its collaborators on ``app.state`` (set by :func:`ocula.server.create_app`);
routers reach them only through these functions, so tests can swap any of them with
``app.dependency_overrides``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import Depends, Request

from ocula.errors import AuthError
from ocula.server.jobs import JobRunner
from ocula.server.signing import Signer
from ocula.server.web.sessions import SESSION_COOKIE, cookie_session
from ocula.server.wire import UploadArea


# These four only read app.state: as coroutines they run on the event loop, where a
# plain function would cost a hop to the thread pool and back on every request.
async def get_service(request: Request) -> Any:
    """The :class:`~ocula.core.services.Service` every route calls."""
    return request.app.state.service


async def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


async def get_signer(request: Request) -> Signer:
    return request.app.state.signer


async def get_uploads(request: Request) -> UploadArea:
    return request.app.state.uploads


def api_key_of(request: Request) -> str | None:
    """The key a request carries: HTTP Basic username (Nucleus style, empty password),
    ``Authorization: Bearer``, or Nucleus' ``x-limited-access-key`` header."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError("malformed HTTP Basic credentials") from exc
        return decoded.partition(":")[0] or None
    return request.headers.get("x-limited-access-key") or None


def require_key(request: Request) -> str | None:
    """Refuse the request (401) unless it carries a live API key or, without a key, the
    web app's session cookie (writes then need its CSRF token, ``web/sessions.py``);
    returns the caller's name, or None on a server started with ``--no-auth``."""
    if not request.app.state.settings.auth:
        return None
    key = api_key_of(request)
    if key is None and SESSION_COOKIE in request.cookies:
        return cookie_session(request)
    return request.app.state.service.verify_key(key)


def public_origin(request: Request) -> str:
    """``scheme://host[:port]`` clients reach this server at: ``--public-url`` (behind a
    proxy), else what the request was addressed to."""
    configured = request.app.state.settings.public_url
    return (configured or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")


def public_base(request: Request) -> str:
    """The public URL of this app's root (origin plus any ASGI root path)."""
    return public_origin(request) + request.scope.get("root_path", "").rstrip("/")


ServiceDep = Annotated[Any, Depends(get_service)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
SignerDep = Annotated[Signer, Depends(get_signer)]
UploadsDep = Annotated[UploadArea, Depends(get_uploads)]
