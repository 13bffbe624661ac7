"""The HTTP server: Ocula's REST API (``/api/v1``) and the Scale Nucleus wire protocol
(``/v1/nucleus``), both thin layers over :class:`ocula.core.services.Service`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocula.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    """``ServerSettings`` and ``create_app`` load the server stack (FastAPI) on first use,
    so the command line registers ``ocula serve`` without it."""
    if name not in __all__:
        raise AttributeError(f"module 'ocula.server' has no attribute {name!r}")
    from ocula.server import app

    return getattr(app, name)
