"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ocula.core.services import Service
from ocula.core.store.schema import metadata


def test_migrations_match_schema(service: Service) -> None:
    with service.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    if service.db.dialect == "sqlite":
        # PostgreSQL-only indexes (GIN on JSONB) are declared but never built on SQLite.
        diff = [d for d in diff if not (d[0] == "add_index" and
                                        d[1].dialect_options["postgresql"].get("using"))]
    assert diff == []
