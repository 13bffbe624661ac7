"""The HTTP server: Ocula's REST API (``/api/v1``) and the Scale Nucleus wire protocol
(``/v1/nucleus``), both thin layers over :class:`ocula.core.services.Service`."""

from ocula.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
