"""The service layer: every operation Ocula offers, over a catalog database and a media
folder. The embedded client calls it directly; the REST API calls the same methods."""

from ocula.core.services.service import Service

__all__ = ["Service"]
