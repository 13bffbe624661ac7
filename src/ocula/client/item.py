"""``Item``: one dataset item's labels, edited one action at a time, with history.

Every edit goes through one backend call (``edit_annotations``), embedded or over HTTP,
and answers with what each operation did and its ``inverse``; :meth:`Item.undo` sends
the inverses back, and undoing an undo redoes. See ``docs/editing.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocula.client.dataset import Dataset


class Item:
    """The labels of one item (``dataset.item(reference_id)``); holds only the item's
    reference id, every call asks the backend."""

    def __init__(self, dataset: Dataset, reference_id: str):
        self._backend = dataset._backend
        self.dataset_id = dataset.id
        self.reference_id = reference_id
        # The newest version token of each annotation this handle's own edits wrote:
        # an undo several steps back names these, not the older tokens in its inverse.
        self._tokens: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Item(dataset_id={self.dataset_id!r}, reference_id={self.reference_id!r})"

    def labels(self) -> list[dict[str, Any]]:
        """The current annotations as JSON, each with its ``id`` and ``version`` token
        (what an edit of it names as ``expected``)."""
        body = self._backend.get_item(self.dataset_id, reference_id=self.reference_id)
        return [a for anns in body["annotations"].values() for a in anns]

    def edit(self, edits: Sequence[Mapping[str, Any]], *, message: str | None = None,
             author: str | None = None) -> dict[str, Any]:
        """Apply operations (``add``, ``update``, ``delete``, ``restore``,
        ``accept_prediction``) as one new label version; raises
        :class:`~ocula.errors.ConflictError` if an annotation changed since its
        ``expected`` token, writing nothing. ``author`` defaults to the local user (a
        server with API keys records the key's name)."""
        result = self._backend.edit_annotations(self.dataset_id, self.reference_id, edits,
                                                author=author, message=message)
        for outcome in result["edits"]:
            self._tokens[outcome["id"]] = outcome["version"]
        return result

    def add(self, annotation: Any, *, message: str | None = None) -> dict[str, Any]:
        """Draw a new annotation (an annotation object or its JSON form)."""
        body = annotation.to_payload() if hasattr(annotation, "to_payload") else dict(annotation)
        body.pop("reference_id", None)
        return self.edit([{"op": "add", "annotation": body}], message=message)

    def update(self, annotation_id: str, expected: int, *, label: str | None = None,
               geometry: Mapping[str, Any] | None = None,
               metadata: Mapping[str, Any] | None = None,
               message: str | None = None) -> dict[str, Any]:
        """Move/resize (``geometry``), relabel and/or change the metadata of the
        annotation with id ``annotation_id`` (``ann_…``) last seen at ``expected``."""
        op: dict[str, Any] = {"op": "update", "id": annotation_id, "expected": expected}
        for key, value in (("label", label), ("geometry", geometry), ("metadata", metadata)):
            if value is not None:
                op[key] = dict(value) if isinstance(value, Mapping) else value
        return self.edit([op], message=message)

    def delete(self, annotation_id: str, expected: int, *,
               message: str | None = None) -> dict[str, Any]:
        return self.edit([{"op": "delete", "id": annotation_id, "expected": expected}],
                         message=message)

    def accept_prediction(self, prediction_id: str, *, label: str | None = None,
                          message: str | None = None) -> dict[str, Any]:
        """Make a prediction of this item ground truth (its label, or ``label``, and its
        geometry), e.g. a false positive that is really an unlabelled object."""
        op: dict[str, Any] = {"op": "accept_prediction", "prediction_id": prediction_id}
        if label is not None:
            op["label"] = label
        return self.edit([op], message=message)

    def undo(self, result: Mapping[str, Any], *, message: str | None = None
             ) -> dict[str, Any]:
        """Undo an edit (the result an edit call of this handle returned) by applying its
        inverse operations, last first; ``undo`` of that result redoes. Each inverse
        names the newest token this handle's own edits gave its annotation, so edits
        undo one after another, newest first; a change by anyone else since is a
        :class:`~ocula.errors.ConflictError`."""
        return self.edit([{**e["inverse"], "expected": self._tokens.get(
            e["id"], e["inverse"]["expected"])} for e in reversed(result["edits"])],
            message=message)

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The edits of this item's labels, newest first: ``version``, ``op``, ``id``,
        ``author``, ``created_at``, ``message``, ``before`` and ``after``."""
        return self._backend.item_history(self.dataset_id, self.reference_id, limit=limit)
