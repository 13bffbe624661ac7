"""The web app's pages: login, datasets, a dataset's grid, one item (a dataset's runs
and one run's metrics: ``run_pages.py``).

Pages are rendered on the server (Jinja2, autoescaped, so every user-supplied string is
text) and completed by ES modules under ``/static`` that call the REST API with the
session cookie. No page holds inline script: the ``Content-Security-Policy`` below
allows scripts from this origin's files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from ocula.errors import AmbiguousNameError, AuthError, NotFoundError
from ocula.server.web.sessions import (
    SESSION_COOKIE,
    Session,
    clear_session_cookie,
    cookie_session,
    csrf_token,
    new_session,
    read_session,
    set_session_cookie,
)

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined))


class LoginIn(BaseModel):
    key: Annotated[str, Field(min_length=1, max_length=1024)]


class _LoginNeeded(Exception):
    """A page was asked for without a live session."""


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/``: a login link must not send
    the person to another origin (``//evil``, ``/\\evil``, ``https://…``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _session(request: Request) -> Session | None:
    state = request.app.state
    return read_session(state.signer, state.service, request.cookies.get(SESSION_COOKIE))


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a page for a logged-in person (or any person on a ``--no-auth`` server)."""
    auth = request.app.state.settings.auth
    session = _session(request) if auth else None
    if auth and session is None:
        raise _LoginNeeded
    context.update(auth=auth, csrf=csrf_token(session) if session else "")
    return templates.TemplateResponse(request, name, context, status_code=status_code,
                                      headers=PAGE_HEADERS)


# What a page shows as its "not found" page: a missing dataset, item or run (404), or a
# dataset named by a name several share (409, with a link to each of them).
MISSING = (NotFoundError, AmbiguousNameError)


def missing_page(request: Request, exc: NotFoundError | AmbiguousNameError) -> Response:
    """The page for a :data:`MISSING` error."""
    if isinstance(exc, AmbiguousNameError):
        return _page(request, "missing.html", exc.http_status, message=exc.message,
                     title="Several datasets have this name", ids=exc.ids)
    return _page(request, "missing.html", 404, message=exc.message, title="Not found",
                 ids=[])


def _counts(service: Any, dataset_id: str) -> dict[str, Any]:
    info = service.dataset_info(dataset_id)
    return {"id": info["dataset_id"], "name": info["name"], "items": info["length"],
            "annotations": info["annotation_count"], "labels": info["labels"],
            "slices": info["slices"], "runs": info["model_runs"],
            "created_at": info["created_at"]}


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    if not request.app.state.settings.auth:
        return RedirectResponse(_safe_next(next), status_code=303)
    return templates.TemplateResponse(request, "login.html",
                                      {"next": _safe_next(next), "auth": True, "csrf": ""},
                                      headers=PAGE_HEADERS)


@router.post("/login")
def login(request: Request, body: LoginIn) -> Response:
    """Trade an API key for a session cookie. JSON only (the request guard refuses a
    form post), so no other site can log a browser in with its own key."""
    kid = request.app.state.service.key_id(body.key)  # AuthError (401) if not live
    response = JSONResponse({"ok": True})
    set_session_cookie(response, request, new_session(request.app.state.signer, kid))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session in this browser (checked like any cookie write: CSRF token)."""
    if request.app.state.settings.auth and SESSION_COOKIE in request.cookies:
        try:
            cookie_session(request)
        except AuthError:
            if _session(request) is not None:  # a live session without its token
                raise
    response = JSONResponse({"ok": True})
    clear_session_cookie(response, request)
    return response


@router.get("/")
def datasets_page(request: Request) -> Response:
    service = request.app.state.service
    rows = [_counts(service, d["id"]) for d in service.list_datasets()]
    return _page(request, "datasets.html", datasets=rows)


@router.get("/datasets/{dataset}")
def dataset_page(request: Request, dataset: str) -> Response:
    try:
        ds = _counts(request.app.state.service, dataset)
    except MISSING as exc:
        return missing_page(request, exc)
    return _page(request, "dataset.html", ds=ds, **_scopes(request.app.state.service, ds["id"]))


@router.get("/datasets/{dataset}/items/{ref:path}")
def item_page(request: Request, dataset: str, ref: str) -> Response:
    """One item, by item id (``di_…``, what the grid links to) or reference id."""
    service = request.app.state.service
    try:
        ds = service.get_dataset(dataset)
        item = _find_item(service, ds["id"], ref)
    except MISSING as exc:
        return missing_page(request, exc)
    return _page(request, "item.html", ds=ds, item=item, **_scopes(service, ds["id"]))


def _scopes(service: Any, dataset_id: str) -> dict[str, Any]:
    """The sidebar's runs (committed or not: an uncommitted run's predictions are drawn
    without match colours) and slices with their sizes."""
    runs = [{"name": r["name"], "committed": r["committed"], "predictions": r["prediction_count"]}
            for r in service.list_runs(dataset_id)]
    slices = [{"id": s["id"], "name": s["name"], "kind": s["kind"], "length": s["length"]}
              for s in service.list_slices(dataset_id)]
    return {"runs": runs, "slices": slices}


def _find_item(service: Any, dataset_id: str, ref: str) -> dict[str, Any]:
    if ref.startswith("di_"):
        try:
            return service.get_item(dataset_id, item_id=ref)["item"]
        except NotFoundError:
            pass  # a reference id that happens to start with di_
    return service.get_item(dataset_id, reference_id=ref)["item"]


def install(app: FastAPI) -> None:
    """Serve the web app from ``app``: pages at ``/``, files at ``/static``."""
    # Imported here: the compare and run pages' modules use this one's page helpers.
    from ocula.server.web.compare import router as compare_router
    from ocula.server.web.run_pages import router as run_router

    app.include_router(router)
    app.include_router(compare_router)
    app.include_router(run_router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(_LoginNeeded)
    def _to_login(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
