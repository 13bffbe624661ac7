"""JSON bodies to domain objects, and staged uploads.

Everything that crosses HTTP is in the Nucleus JSON form of ``ocula.core.types``
(``to_payload`` on the client, ``from_payload``/``payload_to_annotation`` here), so the
service receives the very objects the embedded client would pass.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ocula.core.types import DatasetItem, Scene, payload_to_annotation
from ocula.core.validation import SURROGATE as _SURROGATE
from ocula.errors import BatchError, ImageError, OculaError, ValidationError

UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
# Staged files nobody appended within a day are abandoned uploads.
STALE_UPLOAD_S = 24 * 3600


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (int, "a number"), (float, "a number"),
                       (str, "a string"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _objects(rows: Sequence[Any], what: str
             ) -> tuple[list[tuple[int, dict[str, Any]]], list[OculaError]]:
    """The entries of ``rows`` that are JSON objects, with their index; and an error
    naming each other one by its index."""
    objects = [(i, row) for i, row in enumerate(rows) if isinstance(row, dict)]
    errors: list[OculaError] = [
        ValidationError(f"{what} #{i} must be a JSON object, got {json_kind(row)}")
        for i, row in enumerate(rows) if not isinstance(row, dict)]
    return objects, errors


def items_from_json(rows: Sequence[Any]) -> list[DatasetItem]:
    """Dataset items from their JSON form; entries that are not objects, or whose
    ``reference_id`` is not text, are collected into one :class:`BatchError` naming each
    by its index, before anything is written (a Nucleus append, which skips bad items,
    too)."""
    objects, errors = _objects(rows, "item")
    # Checked here, by index: a reference id that is not text cannot name the item in
    # a message, and (an object, a list) cannot be compared with the others.
    errors += [ValidationError(f"item #{i}: reference_id must be text, got "
                               f"{json_kind(row['reference_id'])}")
               for i, row in objects
               if not isinstance(row.get("reference_id"), str | None)]
    if errors:
        raise BatchError(errors)
    items = [DatasetItem.from_payload(row) for _, row in objects]
    for item in items:
        item.item_id = None
    return items


def objects_from_json(rows: Sequence[Any], *, prediction: bool) -> list[Any]:
    """Annotations (or predictions) from JSON; malformed entries are collected into one
    :class:`BatchError` naming each by its index. An entry marked ``"is_prediction":
    false`` stays an annotation, so the service rejects it where a prediction is
    required."""
    objects, errors = _objects(rows, "entry")
    out: list[Any] = []
    for i, row in objects:
        try:
            as_prediction = prediction and row.get("is_prediction", True) is not False
            out.append(payload_to_annotation(row, prediction=as_prediction))
        except ValidationError as exc:
            errors.append(type(exc)(f"entry #{i}: {exc.message}", reference_id=exc.reference_id))
    if errors:
        raise BatchError(errors)
    return out


def json_rows(body: Mapping[str, Any], *keys: str) -> list[Any]:
    """The entries of the arrays ``body[key]`` (absent or null: none), one after the
    other, numbered as one list; a :class:`ValidationError` if one is not an array."""
    rows: list[Any] = []
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise ValidationError(f"{key} must be a JSON array, got {json_kind(value)}")
        rows += value
    return rows


def json_strings(body: Mapping[str, Any], key: str) -> list[str]:
    """``body[key]`` (absent or null: empty) as a list of strings; a :class:`BatchError`
    naming each entry that is not one."""
    values = json_rows(body, key)
    errors: list[OculaError] = [
        ValidationError(f"{key} #{i} must be a string, got {json_kind(v)}")
        for i, v in enumerate(values) if not isinstance(v, str)]
    if errors:
        raise BatchError(errors)
    return values


def lone_surrogate_paths(value: Any, limit: int = 100) -> list[str]:
    """Where JSON-able ``value`` holds a key or string with a lone surrogate (at most
    ``limit``), as paths such as ``items[0].reference_id``."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack and len(found) < limit:
        v, path = stack.pop()
        if isinstance(v, str):
            if not v.isascii() and _SURROGATE.search(v):
                found.append(path or "body")
        elif isinstance(v, dict):
            for k, child in reversed(v.items()):
                key = f"{path}.{k}" if path else str(k)
                if isinstance(k, str) and not k.isascii() and _SURROGATE.search(k):
                    found.append(f"{key} (its key)")
                stack.append((child, key))
        elif isinstance(v, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(v))))
    # A message quotes a path; one quoting a key with a surrogate must not carry it.
    return [p.encode("utf-8", "backslashreplace").decode() for p in found]


def loads_json(raw: bytes | str, what: str) -> Any:
    """JSON that a request carried outside its body (a multipart part, an uploaded NDJSON
    line): a :class:`ValidationError` if it is not JSON, not UTF-8, or spells a lone
    surrogate (see ``guard.py``)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"{what} is not JSON: {exc}") from exc
    if "\\u" in text and (paths := lone_surrogate_paths(value, 1)):
        raise ValidationError(f"{what}: {paths[0]}: a lone surrogate (U+D800..U+DFFF) is "
                              "not Unicode text and cannot be stored")
    return value


class StagedUploads(Mapping[str, bytes]):
    """reference_id -> bytes of a staged upload, read from disk only when asked for.

    An append of thousands of uploaded images would otherwise hold them all in memory.
    """

    def __init__(self, folder: Path, by_ref: Mapping[str, str]):
        self.folder = folder
        self.by_ref = dict(by_ref)

    def __getitem__(self, ref: str) -> bytes:
        return (self.folder / self.by_ref[ref]).read_bytes()

    def __contains__(self, ref: object) -> bool:
        return ref in self.by_ref

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_ref)

    def __len__(self) -> int:
        return len(self.by_ref)

    def discard(self) -> None:
        """Delete the staged files (their bytes are in the media store now)."""
        for name in set(self.by_ref.values()):
            (self.folder / name).unlink(missing_ok=True)


class UploadArea:
    """``<home>/uploads``: image bytes sent before the append that uses them."""

    def __init__(self, root: Path):
        self.folder = Path(root) / "uploads"
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, source: IO[bytes]) -> tuple[str, int]:
        """Store a stream; return (upload id, size). Ids are random, not content hashes:
        each append deletes its own staged files, which must not be another's."""
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(1 << 20):
                size += len(chunk)
                out.write(chunk)
        upload_id = secrets.token_hex(32)
        os.replace(tmp, self.folder / upload_id)
        return upload_id, size

    def resolve(self, by_ref: Mapping[str, Any]) -> StagedUploads:
        """Staged uploads for ``{reference_id: upload_id}``; unknown or malformed ids
        reject the batch, naming each item."""
        errors: list[OculaError] = []
        for ref, upload_id in by_ref.items():
            if not isinstance(upload_id, str) or not UPLOAD_ID.match(upload_id):
                errors.append(ValidationError(f"malformed upload id {upload_id!r}",
                                              reference_id=ref))
            elif not (self.folder / upload_id).exists():
                errors.append(ImageError("the uploaded image for this item is not on the "
                                         "server (expired or never sent); upload it again",
                                         reference_id=ref))
        if errors:
            raise BatchError(errors)
        return StagedUploads(self.folder, by_ref)

    def sweep(self) -> int:
        """Delete abandoned uploads older than a day."""
        cutoff = time.time() - STALE_UPLOAD_S
        gone = 0
        for path in self.folder.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                gone += 1
        return gone


def scenes_from_json(rows: Any) -> list[Scene]:
    """Scenes from their JSON forms; every malformed one named at once, by index, in
    one :class:`BatchError` (a 422), before anything is read or written."""
    if not isinstance(rows, list):
        raise ValidationError(f"scenes must be a list, got {json_kind(rows)}")
    out: list[Scene] = []
    errors: list[OculaError] = []
    for i, row in enumerate(rows):
        try:
            out.append(Scene.from_payload(row))
        except ValidationError as exc:
            exc.message = f"scene #{i}: {exc.message}"
            errors.append(exc)
    if errors:
        raise BatchError(errors)
    return out
