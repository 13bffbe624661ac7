"""The assembled service, and how to open one from a folder or a database URL."""

from __future__ import annotations

import os
from pathlib import Path

from ocula.core.services.analyses import AnalysisService
from ocula.core.services.annotations import AnnotationService
from ocula.core.services.comparison import ComparisonService
from ocula.core.services.datasets import DatasetService
from ocula.core.services.dedup import DedupService
from ocula.core.services.edits import EditService
from ocula.core.services.insights import InsightsService
from ocula.core.services.items import ItemService
from ocula.core.services.jobs import JobService
from ocula.core.services.keys import KeyService
from ocula.core.services.models import ModelService
from ocula.core.services.query import QueryService
from ocula.core.services.scenarios import ScenarioService
from ocula.core.services.scenes import SceneService
from ocula.core.services.slices import SliceService
from ocula.core.services.tags import TagService
from ocula.core.services.taxonomies import TaxonomyService
from ocula.core.store.engine import Database, sqlite_url
from ocula.core.store.media import Fetcher, MediaStore


def default_home() -> Path:
    return Path(os.environ.get("OCULA_HOME", Path.home() / ".ocula")).expanduser()


def make_private_home(root: Path) -> None:
    """Create the home (0700), or tighten one an earlier version left open to others:
    it holds the catalog, the server's signing secret and staged uploads."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = root.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        root.chmod(0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only, or make it so."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o600)


class Service(DatasetService, ItemService, EditService, AnnotationService, SliceService,
              ModelService, AnalysisService, ComparisonService, JobService, KeyService,
              DedupService, QueryService, InsightsService, TaxonomyService, TagService,
              ScenarioService, SceneService):
    """Every operation of Ocula over one catalog and one media folder.

    Both the embedded client and the REST API call these methods; arguments are domain
    objects or plain values, results plain JSON-able dicts and lists.
    """

    @classmethod
    def open(cls, home: str | Path | None = None, database_url: str | None = None,
             local_roots: list[Path] | None = None, *,
             allow_private_urls: bool = True, tune_runtime: bool = True,
             fetcher: Fetcher | None = None) -> Service:
        """Open (creating and migrating if needed) the catalog under ``home``.

        The database is ``home/catalog.db`` (SQLite) unless ``database_url`` names
        another, e.g. ``postgresql+psycopg://user@host/db``; media always live under
        ``home``. ``fetcher`` downloads image URLs (``ocula.fetch.fetch_url``);
        ``tune_runtime=False`` keeps bulk operations from changing the
        process's garbage collector and thread switch interval (see
        :class:`~ocula.core.services.base.ServiceBase`).
        """
        root = Path(home).expanduser() if home is not None else default_home()
        make_private_home(root)
        if database_url is None:
            # SQLite gives its -wal and -shm files the database file's mode.
            _private_file(root / "catalog.db")
        db = Database(database_url or sqlite_url(root / "catalog.db"))
        return cls(db, MediaStore(root), local_roots=local_roots,
                   allow_private_urls=allow_private_urls, tune_runtime=tune_runtime,
                   fetcher=fetcher)

    def close(self) -> None:
        self.db.dispose()
