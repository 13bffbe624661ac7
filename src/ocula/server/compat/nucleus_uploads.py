"""Nucleus' signed NDJSON uploads: where an upload for a request id is kept until the
append, annotate or predict that names it reads it (once)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ocula.errors import NotFoundError, ValidationError
from ocula.server.wire import loads_json

REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _drop_folder(service: Any) -> Path:
    folder = Path(service.media.root) / "nucleus_uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def drop_path(service: Any, dataset_id: str, request_id: str) -> Path:
    if not REQUEST_ID.match(request_id) or not dataset_id.startswith("ds_") or \
            not REQUEST_ID.match(dataset_id):
        raise ValidationError(f"malformed upload request id {request_id!r}")
    return _drop_folder(service) / f"{dataset_id}-{request_id}.ndjson"


def read_drop(service: Any, dataset_id: str, request_id: str) -> list[Any]:
    path = drop_path(service, dataset_id, request_id)
    if not path.exists():
        raise NotFoundError(f"nothing was uploaded for request {request_id!r}; PUT the NDJSON "
                            "to the signed URL first")
    try:
        rows = [loads_json(line, f"uploaded NDJSON line {n}")
                for n, line in enumerate(path.read_bytes().splitlines(), 1) if line.strip()]
    finally:
        path.unlink(missing_ok=True)
    return rows
