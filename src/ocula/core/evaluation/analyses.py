"""Analyses by name: Config -> method -> Results.

Each analysis is a frozen ``Config`` dataclass (its parameters, validated on
construction), a method, and a ``Results`` object with ``to_dict()``, whose lists keep
the ids behind every number (so an app can open the boxes or images behind each one).
An analysis has a ``subject``, the inputs its method takes:

- ``"run"``: ``(gt, dt, config, *, categories, pair_iou)`` on the engine's columns of a
  model run's two sides (:meth:`Analysis.run`);
- ``"images"``: ``(hashes, keys, config)`` on the images' 64-bit perceptual hashes and
  their tie-break keys (:meth:`Analysis.apply`).

The service and the REST API look analyses up here by name; a new one is one
:func:`register_analysis` call.

Registered: ``"tide"`` (run: :mod:`ocula.core.evaluation.tide`), ``"dedup"`` (images:
:mod:`ocula.core.dedup`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ocula.core.dedup.analysis import DedupConfig, deduplicate
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
    subject: str = "run"

    def config(self, values: Any = None) -> Any:
        """A config from ``None`` (defaults), a config instance, or a mapping of its
        fields; unknown fields and bad values are a :class:`ValidationError`."""
        return config_from(self.config_type, values, self.name)

    def run(self, gt: GroundTruth, dt: Detections, config: Any = None, *,
            categories: Sequence[Any] | np.ndarray | None = None,
            pair_iou: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            **options: Any) -> Any:
        """Run the analysis on the two sides of a run (subject ``"run"``; ``options``:
        what its method also takes, e.g. TIDE's ``match``)."""
        self._require("run")
        return self.method(gt, dt, self.config(config), categories=categories,
                           pair_iou=pair_iou, **options)

    def apply(self, *inputs: Any, config: Any = None) -> Any:
        """Run the analysis on the inputs its subject names, e.g. ``(hashes, keys)``
        for ``"images"``."""
        return self.method(*inputs, self.config(config))

    def _require(self, subject: str) -> None:
        if self.subject != subject:
            raise ValidationError(f"analysis {self.name!r} is about {self.subject}, "
                                  f"not a {subject}")


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


def get_analysis(name: str, subject: str | None = None) -> Analysis:
    """The analysis registered as ``name`` (of that ``subject``, if given)."""
    found = _REGISTRY.get(name)
    if found is None or (subject is not None and found.subject != subject):
        raise ValidationError(
            f"unknown analysis {name!r}; expected one of {analysis_names(subject)}")
    return found


def analysis_names(subject: str | None = None) -> list[str]:
    """Names of the registered analyses (of one ``subject``), sorted."""
    return sorted(n for n, a in _REGISTRY.items() if subject in (None, a.subject))


def run_analysis(name: str, gt: GroundTruth, dt: Detections, config: Any = None,
                 **inputs: Any) -> Any:
    """``get_analysis(name).run(gt, dt, config, **inputs)``."""
    return get_analysis(name).run(gt, dt, config, **inputs)


register_analysis(Analysis(
    name="tide", config_type=TideConfig, method=evaluate_tide,
    summary="TIDE error breakdown: the AP gained by fixing each kind of error"))
register_analysis(Analysis(
    name="dedup", config_type=DedupConfig, method=deduplicate, subject="images",
    summary="Near-duplicate images by pHash: the images kept, and each group of "
            "duplicates with the image it keeps"))
