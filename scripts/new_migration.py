"""Generate an Alembic migration from the schema: `python scripts/new_migration.py "msg" ID`.

Autogenerate compares ``ocula.core.store.schema`` with a scratch SQLite database brought
to the current head, so the new revision holds exactly the difference.
"""

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from ocula.core.store.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parents[1] / "src/ocula/core/store/migrations"


def main(message: str, rev_id: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.db")
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            script = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
    # Alembic renders JSONB's default text type unqualified; qualify it so it imports.
    path = Path(script.path)  # type: ignore[union-attr]
    path.write_text(path.read_text().replace("astext_type=Text()", "astext_type=sa.Text()"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
