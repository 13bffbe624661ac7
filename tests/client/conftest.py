"""The client contract suite runs against every backend: embedded, and a live server
(uvicorn in a thread on a free loopback port) over HTTP, each on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocula.client.client import Client
from ocula.core.services import Service
from ocula.fetch import fetch_url
from ocula.server import create_app
from ocula.server.background import serve_in_background


@pytest.fixture(params=["embedded", "http"])
def any_client(request: pytest.FixtureRequest, database_url: str,
               tmp_path: Path) -> Iterator[Client]:
    """A client on a fresh catalog, embedded or through a live server."""
    if request.param == "embedded":
        c = Client(home=tmp_path / "home", database_url=database_url)
        yield c
        c.close()
        return
    # As `ocula serve` does: no server-side paths for remote clients (local_roots=[]).
    service = Service.open(tmp_path / "server-home", database_url, local_roots=[],
                           fetcher=fetch_url)
    key = service.create_key("tests")["key"]
    with serve_in_background(create_app(service)) as url:
        c = Client(url, api_key=key)
        yield c
        c.close()
    service.close()
