"""Tags (Nucleus ``add_tags``/``remove_tags``): short labels a user pins on a dataset
or a model, kept in the order they were first added. Adding a tag already there and
removing one that is not are no-ops; the answers say what changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.engine import Connection

from ocula.core.services.base import ServiceBase, now
from ocula.core.store import schema as t
from ocula.core.validation import require_name
from ocula.errors import ValidationError

MAX_TAGS = 1_000  # per dataset or model
MAX_TAG_CHARS = 255


def tag_list(tags: Any) -> list[str]:
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise ValidationError("tags must be a list of strings")
    out = list(dict.fromkeys(require_name(tag, "a tag") for tag in tags))
    if len(out) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags each")
    if any(len(tag) > MAX_TAG_CHARS for tag in out):
        raise ValidationError(f"a tag has at most {MAX_TAG_CHARS} characters")
    return out


def _locked(conn: Connection, table: Table, pk: int) -> None:
    """Row lock on the owner (PostgreSQL), so concurrent adds of one tag queue up;
    SQLite already holds its database-wide write lock."""
    conn.execute(select(table.c.pk).where(table.c.pk == pk).with_for_update())


def _current(conn: Connection, table: Table, owner: str, pk: int) -> list[str]:
    return list(conn.scalars(select(table.c.tag).where(table.c[owner] == pk)
                             .order_by(table.c.pk)))


def _add(conn: Connection, table: Table, owner: str, pk: int, tags: list[str]) -> list[str]:
    # The owner's table is the one the owner column refers to.
    _locked(conn, next(iter(table.c[owner].foreign_keys)).column.table, pk)
    have = _current(conn, table, owner, pk)
    new = [tag for tag in tags if tag not in have]
    if len(have) + len(new) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags each")
    if new:
        stamp = now()
        conn.execute(insert(table), [{owner: pk, "tag": tag, "created_at": stamp}
                                     for tag in new])
    return have + new


def _remove(conn: Connection, table: Table, owner: str, pk: int, tags: list[str]
            ) -> dict[str, Any]:
    hit = conn.execute(delete(table).where(table.c[owner] == pk, table.c.tag.in_(tags))
                       ) if tags else None
    return {"removed": hit.rowcount if hit is not None else 0,
            "tags": _current(conn, table, owner, pk)}


class TagService(ServiceBase):
    def _owner(self, conn: Connection, kind: str, name: str) -> tuple[Table, str, int]:
        """(tag table, its owner column, the owner's pk) of a dataset or model."""
        if kind == "dataset":
            return t.dataset_tags, "dataset_pk", self._dataset_row(conn, name).pk
        return t.model_tags, "model_pk", self._model_row(conn, name).pk

    def _read_tags(self, kind: str, name: str) -> list[str]:
        with self.db.read() as conn:
            return _current(conn, *self._owner(conn, kind, name))

    def _add_tags(self, kind: str, name: str, tags: Sequence[str]) -> list[str]:
        wanted = tag_list(tags)
        with self.db.write() as conn:
            return _add(conn, *self._owner(conn, kind, name), wanted)

    def _remove_tags(self, kind: str, name: str, tags: Sequence[str]) -> dict[str, Any]:
        wanted = tag_list(tags)
        with self.db.write() as conn:
            return _remove(conn, *self._owner(conn, kind, name), wanted)

    def dataset_tags(self, dataset: str) -> list[str]:
        return self._read_tags("dataset", dataset)

    def add_dataset_tags(self, dataset: str, tags: Sequence[str]) -> list[str]:
        """Add tags to a dataset; answers all its tags."""
        return self._add_tags("dataset", dataset, tags)

    def remove_dataset_tags(self, dataset: str, tags: Sequence[str]) -> dict[str, Any]:
        """Remove tags from a dataset: ``{removed: count, tags: those left}``."""
        return self._remove_tags("dataset", dataset, tags)

    def model_tags(self, model: str) -> list[str]:
        return self._read_tags("model", model)

    def add_model_tags(self, model: str, tags: Sequence[str]) -> list[str]:
        """Add tags to a model; answers all its tags."""
        return self._add_tags("model", model, tags)

    def remove_model_tags(self, model: str, tags: Sequence[str]) -> dict[str, Any]:
        """Remove tags from a model: ``{removed: count, tags: those left}``."""
        return self._remove_tags("model", model, tags)
