"""Bridges between Ocula and machine-learning libraries (optional extras).

- :mod:`ocula.integrations.pytorch`: a dataset or slice as a
  ``torch.utils.data.Dataset`` in torchvision's detection format
  (``Dataset.to_torch``); needs ``pip install "ocula[torch]"``.
- :mod:`ocula.integrations.torchvision`: a detector's raw outputs as Ocula
  predictions (:func:`~ocula.integrations.torchvision.to_predictions`) and a model run
  over a dataset in batches (:func:`~ocula.integrations.torchvision.run_model`).
- :mod:`ocula.integrations.rows`: the bulk read both stand on (no extra needed).

Nothing here is imported by ``import ocula``; the core never imports this package.
"""

from __future__ import annotations

from typing import Any

TORCH_MISSING = ('PyTorch is not installed; Ocula\'s PyTorch integration needs it: '
                 'pip install "ocula[torch]"')


def require_torch() -> Any:
    """The ``torch`` module, or an :class:`ImportError` saying what to install."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(TORCH_MISSING) from exc
    return torch
