"""JSON bodies to domain objects, and staged uploads.

Everything that crosses HTTP is in the Nucleus JSON form of ``ocula.core.types``
(``to_payload`` on the client, ``from_payload``/``payload_to_annotation`` here), so the
service receives the very objects the embedded client would pass.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ocula.core.types import DatasetItem, payload_to_annotation
from ocula.errors import BatchError, ImageError, OculaError, ValidationError

UPLOAD_ID = re.compile(r"^[0-9a-f]{64}$")
# Staged files nobody appended within a day are abandoned uploads.
STALE_UPLOAD_S = 24 * 3600


def items_from_json(rows: Sequence[Any]) -> list[Any]:
    """Dataset items from their JSON form. An entry that is not an object becomes the
    same kind of wrong value the service reports per entry (so the whole batch gets one
    :class:`BatchError`, as in embedded use)."""
    out: list[Any] = []
    for row in rows:
        if isinstance(row, dict):
            item = DatasetItem.from_payload(row)
            item.item_id = None
            out.append(item)
        else:
            out.append(row)
    return out


def objects_from_json(rows: Sequence[Any], *, prediction: bool) -> list[Any]:
    """Annotations (or predictions) from JSON; malformed entries are collected into one
    :class:`BatchError` naming each. An entry marked ``"is_prediction": false`` stays an
    annotation, so the service rejects it where a prediction is required."""
    out: list[Any] = []
    errors: list[OculaError] = []
    for i, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise ValidationError(f"entry #{i} is not a JSON object")
            as_prediction = prediction and row.get("is_prediction", True) is not False
            out.append(payload_to_annotation(row, prediction=as_prediction))
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise BatchError(errors)
    return out


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
