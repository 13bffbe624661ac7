"""A live server (uvicorn in a thread, loopback, free port) on a fresh SQLite catalog,
configured as ``ocula serve`` does: API keys on, no server-side paths for clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocula.core.services import Service
from ocula.fetch import fetch_url
from ocula.server import ServerSettings, create_app
from ocula.server.background import serve_in_background


@dataclass
class Live:
    url: str
    key: str
    service: Any
    app: Any


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    yield from _serve(Service.open(tmp_path / "server-home", local_roots=[],
                                   fetcher=fetch_url))



def _serve(service: Service) -> Iterator[Live]:
    key = service.create_key("tests")["key"]
    app = create_app(service, settings=ServerSettings(job_workers=2))
    with serve_in_background(app) as url:
        yield Live(url, key, service, app)
    service.close()


@pytest.fixture
def live_db(tmp_path: Path, database_url: str) -> Iterator[Live]:
    """:func:`live` on each backend (SQLite and PostgreSQL)."""
    yield from _serve(Service.open(tmp_path / "server-home", database_url, local_roots=[],
                                   fetcher=fetch_url))


@pytest.fixture
def nc(live_db: Live, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The pinned ``scale-nucleus`` client on :func:`live_db` (each backend); modules
    that want it on SQLite only define their own."""
    nucleus = pytest.importorskip(
        "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")
    # The client sleeps 5 s between job polls; our jobs take milliseconds.
    monkeypatch.setattr(nucleus.async_job, "JOB_POLLING_INTERVAL", 0.05)
    return nucleus.NucleusClient(live_db.key, endpoint=f"{live_db.url}/v1/nucleus")
