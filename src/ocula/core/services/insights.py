"""Insights: distributions of a dataset, slice or query result, computed in SQL."""

from __future__ import annotations

from ocula.core.services.base import ServiceBase


class InsightsService(ServiceBase):
    """Charts' data: label, size and metadata distributions and per-class run results."""
