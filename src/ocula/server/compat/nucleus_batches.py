"""Nucleus' batch semantics on its annotate and predict routes.

Partial batches: a batch whose only faults are entries naming unknown reference ids
writes the rest and reports those entries (as Nucleus does). Ocula's own API stays
all-or-nothing; any other fault still refuses the whole batch.

Category keys: Nucleus keeps one category (and one multicategory) annotation per item and
taxonomy, so a second one sent without an id is ignored, or replaces the first with
``update``. Ocula keys
annotations by ``annotation_id``; a category sent without one gets the key of its
taxonomy, and Ocula's ignore/update rules then do the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ocula.errors import BatchError, NotFoundError, OculaError


def _unknown_reference(err: OculaError) -> bool:
    return isinstance(err, NotFoundError) and err.reference_id is not None


def write_known(write: Callable[[list[Any]], dict[str, Any]], objs: Sequence[Any],
                empty: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``write(objs)``, or, when it refuses only entries whose reference id names no
    item, ``write`` of the others (``empty`` when none is left); with one line per
    refused entry."""
    try:
        return write(list(objs)), []
    except BatchError as exc:
        if not exc.errors or not all(map(_unknown_reference, exc.errors)):
            raise
        unknown = {e.reference_id for e in exc.errors}
        lines = [f"{e.reference_id}: {e.message}" for e in exc.errors]
    rest = [o for o in objs if getattr(o, "reference_id", None) not in unknown]
    return (write(rest) if rest else dict(empty)), lines


def nucleus_keys(objs: Sequence[Any]) -> list[Any]:
    """Each category or multicategory without an ``annotation_id`` keyed by its
    taxonomy (see above)."""
    return [replace(o, annotation_id=f"{o.type}:{o.taxonomy_name or ''}")
            if o.type in ("category", "multicategory") and not o.annotation_id else o
            for o in objs]
