"""``create_app``: wires routers, error handlers and limits around one service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI

from ocula.server.api import ROUTERS, media
from ocula.server.api.schemas import SECURED, Health, errors, install_openapi, ok
from ocula.server.compat import nucleus
from ocula.server.deps import require_key
from ocula.server.errors import InternalErrorMiddleware, install_error_handlers
from ocula.server.guard import LoopbackHostMiddleware, RequestGuardMiddleware
from ocula.server.jobs import JobRunner
from ocula.server.limits import BodyLimitMiddleware
from ocula.server.signing import Signer
from ocula.server.web.pages import install as install_web
from ocula.server.wire import UploadArea

API_PREFIX = "/api/v1"
NUCLEUS_PREFIX = "/v1/nucleus"
MB = 1024 * 1024


@dataclass
class ServerSettings:
    """What an administrator configures (``ocula serve`` options)."""

    auth: bool = True
    max_upload_bytes: int = 512 * MB
    max_json_bytes: int = 64 * MB
    # scheme://host[:port] written into signed and image URLs (set it behind a proxy);
    # None: taken from each request.
    public_url: str | None = None
    job_workers: int = 2
    # Lifetime of signed image URLs (each bound to the key that asked for it).
    url_ttl_s: int = 24 * 3600
    # Lifetime of a signed upload URL, good for one PUT: the Nucleus client PUTs to it
    # as soon as it has it.
    upload_url_ttl_s: int = 10 * 60


def create_app(service: Any, *, auth: bool = True,
               settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app serving ``service``.

    Give the service ``local_roots`` (possibly empty) so remote clients cannot make the
    server read arbitrary server-side paths. ``auth=False`` serves without API keys; the
    CLI allows that only on a loopback address.
    """
    settings = settings or ServerSettings()
    settings.auth = auth and settings.auth
    jobs = JobRunner(service, workers=settings.job_workers)
    uploads = UploadArea(service.media.root)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Startup work runs when the server starts, not when the app is built: building
        # it (a test, a second app on the same catalog) must not write to the catalog.
        # Jobs run in this process's threads, so what a previous process left
        # unfinished will never finish.
        service.fail_unfinished_jobs()
        uploads.sweep()
        yield
        jobs.shutdown()

    app = FastAPI(title="Ocula", version="1", lifespan=lifespan,
                  description="Ocula's REST API (/api/v1) and the Scale Nucleus wire "
                              "protocol (/v1/nucleus). Authenticate with an API key as the "
                              "HTTP Basic username or as 'Authorization: Bearer <key>'.")
    app.state.service = service
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.signer = Signer.for_home(service.media.root)
    app.state.uploads = uploads

    install_error_handlers(app)
    # Outermost last: errors, then size limits, then content types and JSON text.
    app.add_middleware(RequestGuardMiddleware)
    if not settings.auth:
        app.add_middleware(LoopbackHostMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_json_bytes=settings.max_json_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(InternalErrorMiddleware)
    secured = [Depends(require_key)]
    # Image routes check a key or a signed URL themselves (for <img> tags). First,
    # because routing tries each route in turn (~4 µs each) and a grid page asks for
    # dozens of thumbnails: theirs is the hottest path, and no other route matches it.
    app.include_router(media.router, prefix=API_PREFIX, responses=errors(401, 404, 422, 500))
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, dependencies=secured, responses=SECURED)
    # The signed-upload route first: the Nucleus router ends in a catch-all.
    app.include_router(nucleus.public_router, prefix=NUCLEUS_PREFIX, include_in_schema=False)
    app.include_router(nucleus.router, prefix=NUCLEUS_PREFIX, dependencies=secured,
                       include_in_schema=False)

    # The web app: pages at /, its files at /static (ocula.server.web).
    install_web(app)

    @app.get(f"{API_PREFIX}/health", tags=["meta"], **ok(Health, 500))
    def health() -> dict[str, str]:
        """Liveness probe (no key needed; reveals nothing)."""
        return {"status": "ok"}

    install_openapi(app)
    return app
