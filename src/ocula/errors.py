"""Typed errors raised by Ocula.

Every error a user can cause derives from :class:`OculaError` and carries a short
``code`` and, where one item or annotation is at fault, its ``reference_id``::

    OculaError
    ├── NotFoundError            an id or name that does not exist (HTTP 404)
    ├── ConflictError            a name already taken, a state that forbids the call, an
    │                            edit made against a state that has changed (409)
    ├── ValidationError          bad input (422)
    │   ├── DuplicateIdError         the same id twice in one batch
    │   ├── GeometryError            negative size, outside the image, NaN
    │   ├── ImageError               unreadable, truncated, missing or too large image
    │   ├── MetadataError            metadata that is not JSON-serialisable
    │   └── AnnotationTypeError      a type the dataset does not allow
    ├── QueryError               a query that does not parse or type-check (400)
    ├── AuthError                missing or wrong API key (401)
    └── RemoteError              the server answered with an error the client cannot map

A batch call that fails on some items raises :class:`BatchError`, a
``ValidationError`` listing every per-item error; nothing of the batch is written.
"""

from __future__ import annotations

from typing import Any


class OculaError(Exception):
    """Base of every error Ocula raises on purpose."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, *, reference_id: str | None = None, **detail: Any):
        super().__init__(message)
        self.message = message
        self.reference_id = reference_id
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by the REST API: ``{error, detail, reference_id?}``."""
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.reference_id is not None:
            body["reference_id"] = self.reference_id
        if self.detail:
            body["info"] = self.detail
        return body


class NotFoundError(OculaError):
    code = "not_found"
    http_status = 404


class ConflictError(OculaError):
    code = "conflict"
    http_status = 409


class AmbiguousNameError(ConflictError):
    """A name that more than one dataset has: dataset names are labels (as in Nucleus),
    so a look-up by one must name the dataset by id. ``ids`` lists the candidates."""

    code = "ambiguous_name"

    def __init__(self, what: str, name: str, ids: list[str]):
        super().__init__(f"{len(ids)} {what}s are named {name!r} ({', '.join(ids)}): "
                         f"name the {what} by its id", ids=list(ids))

    @property
    def ids(self) -> list[str]:
        return list(self.detail.get("ids") or [])


class NotSupportedError(OculaError):
    """A request Ocula understands but does not support (a Nucleus route or feature it
    has no counterpart for): 501, naming what is not supported."""

    code = "not_supported"
    http_status = 501


class ValidationError(OculaError):
    code = "invalid"
    http_status = 422


class ParameterError(ValidationError):
    """Parameters each valid alone but not together: a relation no request schema
    can state (TIDE's background threshold must be below its foreground one)."""

    code = "conflicting_parameters"


class DuplicateIdError(ValidationError):
    code = "duplicate_id"


class GeometryError(ValidationError):
    code = "bad_geometry"


class ImageError(ValidationError):
    code = "bad_image"


class MetadataError(ValidationError):
    code = "bad_metadata"


class AnnotationTypeError(ValidationError):
    code = "type_not_allowed"


class QueryError(OculaError):
    """A query that cannot run; ``line``/``column`` point at the offending text."""

    code = "bad_query"
    http_status = 400

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        where = f"line {line}, col {column}: " if line is not None else ""
        super().__init__(where + message, line=line, column=column)
        self.line = line
        self.column = column


class AuthError(OculaError):
    code = "unauthorized"
    http_status = 401


class RemoteError(OculaError):
    code = "remote_error"


class BatchError(ValidationError):
    """Several items of one batch were rejected; ``errors`` lists each one."""

    code = "batch_rejected"

    def __init__(self, errors: list[OculaError]):
        self.errors = errors
        first = errors[0].message if errors else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(
            f"{len(errors)} item(s) rejected, nothing written: {first}{more}",
            errors=[e.to_dict() for e in errors],
        )


__all__ = [
    "AnnotationTypeError",
    "AuthError",
    "BatchError",
    "ConflictError",
    "DuplicateIdError",
    "GeometryError",
    "ImageError",
    "MetadataError",
    "NotFoundError",
    "NotSupportedError",
    "OculaError",
    "ParameterError",
    "QueryError",
    "RemoteError",
    "ValidationError",
]
