"""Shared fixtures: a real catalog on SQLite and on PostgreSQL, real image files.

PostgreSQL tests use ``OCULA_TEST_PG_URL`` (default: the local server at
127.0.0.1:5432, database ``test``). Each test gets its own schema, dropped afterwards.
Where no PostgreSQL answers, those tests are skipped with the reason; set
``OCULA_REQUIRE_PG=1`` (CI does) to make that a failure instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from ocula.client.client import Client
from ocula.core.services import Service
from ocula.fetch import fetch_url

PG_URL = os.environ.get("OCULA_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"


_PG_PROBLEM = _pg_available()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty catalog database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    if _PG_PROBLEM is not None:
        if os.environ.get("OCULA_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required but not reachable at {PG_URL}: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {_PG_PROBLEM}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    svc = Service.open(tmp_path / "home", database_url, fetcher=fetch_url)
    yield svc
    svc.close()


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[Client]:
    c = Client(home=tmp_path / "home", database_url=database_url)
    yield c
    c.close()


def make_images(folder: Path, n: int, size: tuple[int, int] = (64, 48),
                fmt: str = "JPEG") -> list[Path]:
    """Write ``n`` small distinct real images and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    paths = []
    for i in range(n):
        p = folder / f"img_{i:04d}.{ext}"
        Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)).save(p, fmt)
        paths.append(p)
    return paths


def nested_metadata(depth: int) -> dict[str, Any]:
    """A metadata object ``depth`` levels deep (itself level 1)."""
    md: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        md = {"a": md}
    return md


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    return make_images(tmp_path / "images", 6)


@dataclass
class DemoBuild:
    """The catalog ``ocula demo --no-serve`` built, and what the command printed."""

    home: Path
    output: str


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    """``ocula demo --no-serve`` once per test run (it runs both detectors for real); a
    test that changes the catalog works on a copy (:func:`shutil.copytree` of ``home``).

    Under pytest-xdist every worker has its own session: the first to ask builds the
    catalog in the folder the workers share, the others wait on a file lock and reuse it.
    """
    from filelock import FileLock
    from typer.testing import CliRunner

    from ocula.cli.main import app

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    folder, output = root / "demo", root / "demo" / "output.txt"
    with FileLock(str(root / "demo.lock")):
        if not output.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            result = CliRunner().invoke(app, ["demo", "--no-serve", "--home",
                                              str(folder / "home")])
            assert result.exit_code == 0, result.output
            output.write_text(result.output)
    return DemoBuild(folder / "home", output.read_text())
