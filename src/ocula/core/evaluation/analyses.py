"""Analyses of a run by name: Config -> method -> Results.

Each analysis is a frozen ``Config`` dataclass (its parameters, validated on
construction), a method ``(gt, dt, config, *, categories, pair_iou) -> Results`` on the
engine's columns, and a ``Results`` object with ``to_dict()``, whose lists keep the ids
behind every number (so an app can open the boxes behind each one). The service and the
REST API look analyses up here by name; a new one is one :func:`register_analysis`
call.

Registered: ``"tide"`` (:mod:`ocula.core.evaluation.tide`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ocula.core.evaluation.inputs import Detections, GroundTruth
from ocula.core.evaluation.tide import TideConfig, evaluate_tide
from ocula.errors import ValidationError

__all__ = ["Analysis", "AnalysisResult", "analysis_names", "config_from", "get_analysis",
           "register_analysis", "run_analysis"]


class AnalysisResult(Protocol):
    """What every analysis returns."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Analysis:
    """One registered analysis."""

    name: str
    config_type: type
    method: Callable[..., Any]
    summary: str

    def config(self, values: Any = None) -> Any:
        """A config from ``None`` (defaults), a config instance, or a mapping of its
        fields; unknown fields and bad values are a :class:`ValidationError`."""
        return config_from(self.config_type, values, self.name)

    def run(self, gt: GroundTruth, dt: Detections, config: Any = None, *,
            categories: Sequence[Any] | np.ndarray | None = None,
            pair_iou: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            **options: Any) -> Any:
        """Run the analysis on the two sides (``options``: what its method also takes,
        e.g. TIDE's ``match``)."""
        return self.method(gt, dt, self.config(config), categories=categories,
                           pair_iou=pair_iou, **options)


def config_from(config_type: type, values: Any, name: str, *,
                unknown_error: type[ValidationError] = ValidationError) -> Any:
    """A frozen config dataclass from ``None`` (defaults), an instance, or a mapping of
    its fields (Config -> method -> Results): a non-mapping or a bad value is a
    :class:`ValidationError`, an unknown field an ``unknown_error``."""
    if values is None:
        return config_type()
    if isinstance(values, config_type):
        return values
    if not isinstance(values, Mapping):
        raise ValidationError(f"{name} config must be a mapping of parameters")
    known = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise unknown_error(
            f"unknown {name} parameter(s) {unknown}; expected some of {sorted(known)}")
    try:
        return config_type(**values)
    except TypeError as exc:  # a value of the wrong type deep in a check
        raise ValidationError(f"bad {name} parameters: {exc}") from exc


_REGISTRY: dict[str, Analysis] = {}


def register_analysis(analysis: Analysis) -> Analysis:
    """Add an analysis under its name (a name is registered once)."""
    if analysis.name in _REGISTRY:
        raise ValueError(f"analysis {analysis.name!r} is already registered")
    _REGISTRY[analysis.name] = analysis
    return analysis


def get_analysis(name: str) -> Analysis:
    """The analysis registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValidationError(
            f"unknown analysis {name!r}; expected one of {analysis_names()}") from None


def analysis_names() -> list[str]:
    """Names of the registered analyses, sorted."""
    return sorted(_REGISTRY)


def run_analysis(name: str, gt: GroundTruth, dt: Detections, config: Any = None,
                 **inputs: Any) -> Any:
    """``get_analysis(name).run(gt, dt, config, **inputs)``."""
    return get_analysis(name).run(gt, dt, config, **inputs)


register_analysis(Analysis(
    name="tide", config_type=TideConfig, method=evaluate_tide,
    summary="TIDE error breakdown: the AP gained by fixing each kind of error"))
