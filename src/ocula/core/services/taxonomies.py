"""Taxonomies (Nucleus' ``add_taxonomy``): a dataset's named label sets. A category
annotation or prediction that names a taxonomy must name one of the dataset's of type
``category``, and use one of its labels; a multicategory one a ``multicategory`` taxonomy,
all its labels from it. One that names none is not checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from ocula.core.services.base import ServiceBase, now
from ocula.core.store import schema as t
from ocula.core.validation import require_name
from ocula.errors import NotFoundError, OculaError, ValidationError

TAXONOMY_TYPES = ("category", "multicategory")
MAX_TAXONOMY_LABELS = 10_000


def _labels(labels: Any) -> list[str]:
    if not isinstance(labels, list) or not labels:
        raise ValidationError("a taxonomy's labels must be a non-empty list of strings")
    if len(labels) > MAX_TAXONOMY_LABELS:
        raise ValidationError(f"a taxonomy has at most {MAX_TAXONOMY_LABELS} labels")
    return list(dict.fromkeys(require_name(label, "a taxonomy label") for label in labels))


class TaxonomyService(ServiceBase):
    def add_taxonomy(self, dataset: str, name: str, taxonomy_type: str, labels: list[str],
                     *, update: bool = False) -> dict[str, Any]:
        """Create a taxonomy; one of that name already there is left as it is, or with
        ``update`` gains the new labels (labels are never removed). ``status`` says
        which: ``Taxonomy created``, ``Taxonomy already exists``, ``Taxonomy updated``."""
        name = require_name(name, "taxonomy name")
        if taxonomy_type not in TAXONOMY_TYPES:
            raise ValidationError(f"unknown taxonomy type {taxonomy_type!r}; expected one "
                                  f"of {list(TAXONOMY_TYPES)}")
        wanted = _labels(labels)
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            row = conn.execute(select(t.taxonomies).where(
                t.taxonomies.c.dataset_pk == ds.pk, t.taxonomies.c.name == name)).first()
            if row is None:
                conn.execute(t.taxonomies.insert().values(
                    dataset_pk=ds.pk, name=name, type=taxonomy_type, labels=wanted,
                    created_at=now()))
                status = "Taxonomy created"
            elif not update:
                status = "Taxonomy already exists"
            else:
                if row.type != taxonomy_type:
                    raise ValidationError(f"taxonomy {name!r} is of type {row.type!r}, not "
                                          f"{taxonomy_type!r}")
                merged = list(dict.fromkeys([*row.labels, *wanted]))
                conn.execute(t.taxonomies.update().where(t.taxonomies.c.pk == row.pk)
                             .values(labels=merged))
                status = "Taxonomy updated"
        return {"dataset_id": ds.id, "taxonomy_name": name, "status": status}

    def list_taxonomies(self, dataset: str) -> list[dict[str, Any]]:
        """The dataset's taxonomies, oldest first: ``{name, type, labels}``."""
        with self.db.read() as conn:
            ds = self._dataset_row(conn, dataset)
            rows = conn.execute(select(t.taxonomies).where(t.taxonomies.c.dataset_pk == ds.pk)
                                .order_by(t.taxonomies.c.pk)).all()
        return [{"name": r.name, "type": r.type, "labels": list(r.labels)} for r in rows]

    def delete_taxonomy(self, dataset: str, name: str) -> dict[str, Any]:
        """Delete a taxonomy (the annotations that named it stay, with its name)."""
        with self.db.write() as conn:
            ds = self._dataset_row(conn, dataset)
            gone = conn.execute(delete(t.taxonomies).where(
                t.taxonomies.c.dataset_pk == ds.pk, t.taxonomies.c.name == name)).rowcount
        if not gone:
            raise NotFoundError(f"no taxonomy {name!r} in dataset {ds.id}")
        return {"dataset_id": ds.id, "taxonomy_name": name,
                "status": "Taxonomy successfully deleted"}

    def _taxonomy_errors(self, conn: Connection, dataset_pk: int,
                         objs: Sequence[Any]) -> list[OculaError]:
        """One error per category or multicategory object naming a taxonomy the dataset
        lacks, a taxonomy of the other type (a category names a ``category`` taxonomy,
        a multicategory a ``multicategory`` one), or a label its taxonomy lacks."""
        named = [o for o in objs if getattr(o, "taxonomy_name", None) is not None]
        if not named:
            return []
        known = {r.name: (r.type, set(r.labels)) for r in conn.execute(
            select(t.taxonomies.c.name, t.taxonomies.c.type, t.taxonomies.c.labels)
            .where(t.taxonomies.c.dataset_pk == dataset_pk))}
        errors: list[OculaError] = []
        for obj in named:
            found = known.get(obj.taxonomy_name)
            if found is None:
                errors.append(ValidationError(
                    f"taxonomy {obj.taxonomy_name!r} does not exist in this dataset",
                    reference_id=obj.reference_id))
                continue
            kind, labels = found
            if kind != obj.type:
                errors.append(ValidationError(
                    f"taxonomy {obj.taxonomy_name!r} is of type {kind!r}: a {obj.type} "
                    f"annotation needs a taxonomy of type {obj.type!r}",
                    reference_id=obj.reference_id))
                continue
            wanted = obj.labels if obj.type == "multicategory" else [obj.label]
            missing = [label for label in wanted if label not in labels]
            if missing:
                errors.append(ValidationError(
                    f"label{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(map(repr, missing))} not in taxonomy "
                    f"{obj.taxonomy_name!r}", reference_id=obj.reference_id))
        return errors
