"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import pytest
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


def test_rebuilding_a_table_keeps_the_rows_that_refer_to_it(service: Service) -> None:
    """0006 rebuilds ``datasets`` on SQLite (copy, drop, rename): with foreign keys on,
    the drop cascaded and emptied the catalog of items, labels, slices and runs. Down to
    0005 and up again, over a populated catalog, must keep every row."""
    from PIL import Image
    from sqlalchemy import func, select

    from ocula.core.store import schema as t
    from ocula.core.store.engine import migrate
    from ocula.core.types import BoxAnnotation, BoxPrediction, DatasetItem

    path = service.media.root / "m.jpg"
    Image.new("RGB", (64, 48)).save(path)
    ds = service.create_dataset("street")["id"]
    service.append(ds, [DatasetItem(image_location=str(path), reference_id="r1")])
    service.annotate(ds, [BoxAnnotation("person", 1, 2, 30, 20, reference_id="r1")])
    service.create_slice(ds, "test", reference_ids=["r1"])
    model = service.add_model("m", reference_id="m1")["id"]
    run = service.create_run(model, ds, "run1", [
        BoxPrediction("person", 2, 2, 30, 20, reference_id="r1", confidence=0.9)])["id"]
    service.commit_run(run)
    tables = [t.datasets, t.items, t.annotations, t.slices, t.model_runs]

    def counts() -> list[int]:
        with service.db.read() as conn:
            return [conn.execute(select(func.count()).select_from(x)).scalar_one()
                    for x in tables]

    before = counts()
    assert all(before), before
    migrate(service.db.engine, "0005", down=True)
    migrate(service.db.engine)
    assert counts() == before
    assert service.run_metrics(run)["stats"]["AP50"] == pytest.approx(1.0)
    if service.db.dialect == "sqlite":  # the pooled connections check references again
        with service.db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
